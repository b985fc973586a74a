"""Scheduled recovery sweep: re-drives or fails shipments whose waybill workflow stopped, cancels carrier
orders that are not kept (``parcelhub.app.recovery``)."""

from __future__ import annotations

from typing import Any

from parcelhub import composition
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return composition.recovery_sweeper().sweep().as_dict()
