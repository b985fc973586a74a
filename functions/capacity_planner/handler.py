"""Scheduled capacity planner: per carrier, the e-waybill balance (asked of the provider where its API has a
query, else as configured), the forecast, and one ``CarrierCapacityAlert`` per carrier, kind and local day,
staged through the outbox (``parcelhub.app.capacity``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from parcelhub import composition
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = composition.capacity_planner().run(datetime.now(UTC))
    return {
        "carriers": [look.carrier for look in run.outlooks],
        "alerts": [f"{carrier}:{kind}" for carrier, kind in run.alerts],
        "balances_set": run.balances_set,
    }
