"""The tracking writer when its one-request write cannot decide: the two writes carry what it had decided."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from parcelhub.app.estimates import DeliveryEstimator
from parcelhub.app.tracking_state import TrackingWriter
from parcelhub.config import HubConfig
from parcelhub.domain.models import CHINA_TZ, Carrier, Provider, TrackingEvent
from parcelhub.domain.status import Status
from parcelhub.ports.store import ClaimFacts
from tests.fakes.store import InMemoryShipmentStore
from tests.unit.trackings.shipments import delivered_shipment

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class CancelledOnce(InMemoryShipmentStore):
    """The store as DynamoDB answers a fold transaction that collided with another one on the same items
    (cancelled, reason TransactionConflict): nothing written, the caller decides with two writes. Once."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = 0

    def record_and_apply_state(self, claim: Any, events: Any, state: Any, **write: Any) -> Any:
        if not self.cancelled:
            self.cancelled += 1
            return None
        return super().record_and_apply_state(claim, events, state, **write)


def pickup_scan() -> TrackingEvent:
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number="73100000000001",
        occurred_at=datetime(2024, 5, 1, 18, 30, tzinfo=CHINA_TZ),
        status=Status.PICKED_UP,
        raw_code="1",
        raw_text="【杭州市】杭州余杭区网点 已揽收",
        location="杭州市",
    )


def test_a_cancelled_one_request_write_falls_back_with_the_estimate_it_made_counted_once() -> None:
    # Given a parcel with its waybill, a pickup scan stored as an item, and the fold's transaction cancelled
    store = CancelledOnce()
    shipment = delivered_shipment(status=Status.WAYBILL_CREATED, status_key=None, last_event_at=None)
    store.create(shipment)
    store.claim_tracking(
        "ZTO", "73100000000001", shipment.shipment_id, shipment.order_id, facts=ClaimFacts.of(shipment)
    )
    claim = store.find_by_tracking("ZTO", "73100000000001")
    assert claim is not None
    metrics: Counter[str] = Counter()

    def metric(name: str, value: float, **_: Any) -> None:
        metrics[name] += int(value)

    config = HubConfig()
    estimator = DeliveryEstimator(store, config.estimates.settings, metric=metric)
    writer = TrackingWriter(store, config, metric=metric, log=lambda: None, estimator=estimator)
    scan = pickup_scan()
    store.put_events([(shipment.shipment_id, scan)])
    # When the writer folds it
    new, change = writer.apply(claim, [scan], NOW, force=False, stored=True)
    # Then the two writes recorded the scan once and wrote the pickup with its estimate
    assert store.cancelled == 1
    assert new == [scan]
    assert change is not None
    assert change.new_status is Status.PICKED_UP
    stored = store.get(shipment.shipment_id)
    assert stored.status is Status.PICKED_UP
    assert stored.estimated_delivery is not None
    # And the estimate was made, and counted, once
    assert metrics["DeliveryEstimated"] == 1
