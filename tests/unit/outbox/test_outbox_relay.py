"""The outbox relay (parcelhub.app.outbox): committed changes -> events -> PutEvents, in stream order.

The records are the in-memory store's changes (its stream); the publisher is the in-memory fake, made to
fail where a test says so."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from parcelhub.app.outbox import OutboxRelay, Unannounceable, derive
from parcelhub.config import HubConfig
from parcelhub.domain.models import CHINA_TZ, Carrier, Item, Money, Parcel, Provider, Shipment, TrackingEvent, Waybill
from parcelhub.domain.status import Status, state_of
from parcelhub.events import (
    Event,
    FailedEvent,
    PublishFailed,
    ShipmentDelivered,
    ShipmentStatusChanged,
    WaybillCreated,
    parse_event,
)
from parcelhub.ports.changes import Change, OutboxImage
from tests.fakes.events import InMemoryPublisher
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 2, 2, 0, tzinfo=UTC)


def shipment(store: InMemoryShipmentStore, n: int, *, waybill: bool = True) -> str:
    shipment_id = f"shp-{n:04d}"
    store.create(
        Shipment(
            shipment_id=shipment_id,
            order_id=f"ORD-{n:04d}",
            declared_value=Money(amount=Decimal("10.00")),
            parcels=[Parcel(weight_kg=1)],
            items=[Item(name="杯子", quantity=1)],
            receiver_masked={"name": "李*"},
            origin_province="浙江省",
            origin_city="杭州市",
            destination_province="上海市",
            destination_city="上海市",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    if waybill:
        number = f"7310000000{n:04d}"
        store.save_waybill(
            shipment_id, Waybill(provider=Provider.KDNIAO, carrier=Carrier.ZTO, tracking_number=number), [], NOW
        )
    return shipment_id


def scan(n: int, status: Status, hours: int) -> TrackingEvent:
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number=f"7310000000{n:04d}",
        occurred_at=datetime(2024, 5, 1, 9, tzinfo=CHINA_TZ) + timedelta(hours=hours),
        status=status,
        raw_code=status.value,
        raw_text=f"{status.value} scan",
    )


def move(store: InMemoryShipmentStore, n: int, status: Status, hours: int) -> None:
    store.apply_tracking_state(
        f"shp-{n:04d}", state_of(scan(n, status, hours)), last_event_text="scan", stall=None, now=NOW, provider="kdniao"
    )


def records(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """Stream records carrying the fake's changes (the decoder below unwraps them)."""
    return [{"dynamodb": {"SequenceNumber": c.record_id}, "change": c} for c in changes]


class FailingPublisher(InMemoryPublisher):
    """Fails every event for which ``failing(event)`` is true (as a PutEvents entry failure)."""

    def __init__(self, failing: Any) -> None:
        super().__init__()
        self.failing = failing
        self.calls = 0

    def publish(self, events: Iterable[Event]) -> None:
        self.calls += 1
        batch = list(events)
        failed = [FailedEvent(e, "InternalFailure", "down") for e in batch if self.failing(e)]
        super().publish([e for e in batch if not self.failing(e)])
        if failed:
            raise PublishFailed(failed)


class Sink:
    def __init__(self, broken: bool = False) -> None:
        self.bodies: list[str] = []
        self.broken = broken

    def send(self, bodies: Sequence[str]) -> None:
        if self.broken:
            raise RuntimeError("queue unavailable")
        self.bodies.extend(bodies)


def relay(publisher: Any, sink: Sink | None = None, decode: Any = None) -> OutboxRelay:
    return OutboxRelay(
        publisher=publisher,
        decode=decode or (lambda record: record["change"]),
        quarantine=sink or Sink(),
        config=HubConfig,
        metric=lambda *args, **kwargs: None,
    )


def test_committed_status_changes_are_published_in_order_with_deterministic_ids() -> None:
    store = InMemoryShipmentStore()
    for n in range(3):
        shipment(store, n)
        move(store, n, Status.PICKED_UP, 0)
        move(store, n, Status.DELIVERED, 5)
    publisher = InMemoryPublisher()
    result = relay(publisher).relay(records(store.changes))
    assert result.failed_record is None
    changed = publisher.of_type(ShipmentStatusChanged)
    assert [(e.shipment_id, e.new_status) for e in changed] == [
        (f"shp-{n:04d}", status) for n in range(3) for status in (Status.PICKED_UP, Status.DELIVERED)
    ]
    assert len(publisher.of_type(ShipmentDelivered)) == 3
    # the same records relayed again give the same ids (consumers dedupe)
    again = InMemoryPublisher()
    relay(again).relay(records(store.changes))
    assert [e.event_id for e in again.events] == [e.event_id for e in publisher.events]


def test_a_failed_putevents_entry_reports_the_first_unannounced_record_and_publishes_nothing_after() -> None:
    store = InMemoryShipmentStore()
    for n in range(6):
        shipment(store, n)
        move(store, n, Status.PICKED_UP, 0)
    stream = records(store.changes)
    publisher = FailingPublisher(lambda e: getattr(e, "shipment_id", "") == "shp-0002")
    result = relay(publisher).relay(stream)
    # Then the record of shp-0002's change is reported (the stream retries from it), never dropped
    failing = next(
        r for r in stream
        if r["change"].new.shipment.shipment_id == "shp-0002" and r["change"].new.shipment.status is Status.PICKED_UP
    )  # fmt: skip
    assert result.failed_record == failing["dynamodb"]["SequenceNumber"]
    published = {e.shipment_id for e in publisher.of_type(ShipmentStatusChanged)}
    assert {"shp-0000", "shp-0001"} <= published
    # And when retried from that record (EventBridge back), everything is announced
    retry = [r for r in stream if int(r["dynamodb"]["SequenceNumber"]) >= int(result.failed_record)]
    healthy = InMemoryPublisher()
    assert relay(healthy).relay(retry).failed_record is None
    announced = published | {e.shipment_id for e in healthy.of_type(ShipmentStatusChanged)}
    assert announced == {f"shp-{n:04d}" for n in range(6)}


def test_a_record_that_cannot_become_events_is_set_aside_with_its_reason_and_the_rest_goes_on() -> None:
    store = InMemoryShipmentStore()
    shipment(store, 1)
    move(store, 1, Status.PICKED_UP, 0)
    stream = records(store.changes)
    poison = {"dynamodb": {"SequenceNumber": "0"}, "change": None}

    def decode(record: dict[str, Any]) -> Change | None:
        if record is poison:
            raise ValueError("an item nobody can read")
        return record["change"]  # type: ignore[no-any-return]

    sink, publisher = Sink(), InMemoryPublisher()
    result = relay(publisher, sink, decode).relay([poison, *stream])
    assert result.failed_record is None
    assert result.quarantined == 1
    assert "an item nobody can read" in sink.bodies[0]
    assert [e.shipment_id for e in publisher.of_type(ShipmentStatusChanged)] == ["shp-0001"]
    # and when even the dead-letter queue is down, the record is reported (retried), not skipped
    assert relay(InMemoryPublisher(), Sink(broken=True), decode).relay([poison, *stream]).failed_record == "0"


def test_writes_that_change_no_status_announce_nothing_and_a_change_without_a_waybill_is_unannounceable() -> None:
    store = InMemoryShipmentStore()
    shipment(store, 1)
    move(store, 1, Status.DELIVERED, 5)
    store.changes.clear()
    move(store, 1, Status.IN_TRANSIT, 1)  # loses its condition: no change recorded
    store.set_poll_due("shp-0001", NOW)
    assert [e for c in store.changes for e in derive(c, HubConfig())] == []
    bare = InMemoryShipmentStore()
    shipment(bare, 2, waybill=False)
    bare.apply_tracking_state(
        "shp-0002", state_of(scan(2, Status.PICKED_UP, 0)), last_event_text=None, stall=None, now=NOW
    )
    with pytest.raises(Unannounceable):
        derive(bare.changes[-1], HubConfig())


def test_a_staged_outbox_event_is_published_as_it_was_staged() -> None:
    event = WaybillCreated(
        shipment_id="shp-0001",
        order_id="ORD-0001",
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number="73100000000001",
        created_at=NOW,
        attempt_count=1,
        failed_over=False,
    )
    change = Change("9", None, OutboxImage(event.detail_type(), event.detail_json()))
    assert derive(change, HubConfig()) == [parse_event(event.detail_type(), event.detail_json())]
    assert derive(Change("10", change.new, change.new), HubConfig()) == []  # only the insert announces


def test_an_order_whose_cancel_finally_failed_is_announced_once_from_the_committed_write() -> None:
    from parcelhub.domain.models import CarrierOrder, WaybillAttempt
    from parcelhub.events import WaybillCancelFailed

    # Given a shipment with a carrier order that was not kept and is being cancelled
    store = InMemoryShipmentStore()
    shipment_id = shipment(store, 1, waybill=False)
    order = CarrierOrder(provider=Provider.SF, carrier=Carrier.SF, order_id=shipment_id, state="open", at=NOW)
    store.open_order(shipment_id, order, NOW)
    store.settle_order(shipment_id, order.key, "abandoned", NOW, tracking_number="SF0001", cancel_attempts=1)
    seen = len(store.changes)
    # When its last cancel fails: the write records cancel_failed with the reason
    line = WaybillAttempt(
        provider=Provider.SF, carrier=Carrier.SF, outcome="cancel_failed", error_code="HTTP_503", error_message="down",
        at=NOW + timedelta(minutes=5),
    )  # fmt: skip
    store.settle_order(shipment_id, order.key, "cancel_failed", NOW, cancel_attempts=3, attempt=line)
    # and the shipment is written again later for something else
    store.finish_run(shipment_id, None)
    # Then that write, and only that one, means one WaybillCancelFailed with the order and the reason
    events = [e for change in store.changes[seen:] for e in derive(change, HubConfig())]
    assert [type(e) for e in events] == [WaybillCancelFailed]
    alert = events[0]
    assert isinstance(alert, WaybillCancelFailed)
    assert (alert.provider_order_id, alert.tracking_number, alert.cancel_attempts) == (shipment_id, "SF0001", 3)
    assert (alert.error_code, alert.error_message, alert.failed_at) == ("HTTP_503", "down", line.at)
    # And deriving the same change again gives the same event id (consumers dedupe)
    again = [e for change in store.changes[seen:] for e in derive(change, HubConfig())]
    assert [e.event_id for e in again] == [alert.event_id]
