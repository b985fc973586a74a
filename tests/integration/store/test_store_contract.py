"""The ShipmentStore contract: every access pattern of ARCHITECTURE §3, run against the in-memory fake
and against the DynamoDB adapter on moto (``backend`` is parametrised over both)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from parcelhub.adapters.dynamodb import DynamoShipmentStore
from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.domain.models import (
    Carrier,
    Item,
    Money,
    Parcel,
    Provider,
    Shipment,
    TrackingEvent,
    Waybill,
    WaybillAttempt,
    content_hash,
)
from parcelhub.domain.status import Status, SubStatus, fold, state_of
from parcelhub.ports.errors import (
    LeaseHeld,
    OrderAlreadyExists,
    ShipmentNotFound,
    StatusConflict,
    StoreMisconfigured,
    StoreUnavailable,
    TrackingClaimConflict,
    WaybillAlreadyRecorded,
)
from parcelhub.ports.store import DEFAULT_SHARDS, ClaimFacts, QueryStats, ShipmentStore, StallMark
from tests.fakes.transaction_conflicts import TransactionConflicts

pytestmark = pytest.mark.integration

T = TypeVar("T")
NOW = datetime(2025, 11, 11, 8, 0, tzinfo=UTC)
TABLE = "parcelhub-test"  # the table the conftest creates in moto


class Backend(Protocol):
    """What the ``backend`` fixture (conftest) hands out: a store plus its item-write counter."""

    name: str
    store: ShipmentStore
    item_writes: Callable[[], int]
    calls: Counter[str]


# ------------------------------------------------------------------------------------------- builders


def a_shipment(n: int = 1, **overrides: Any) -> Shipment:
    """A shipment as shipments_api would create it (masked receiver, encrypted PII envelope)."""
    fields: dict[str, Any] = {
        "shipment_id": f"shp_01JCZ{n:011d}",
        "order_id": f"SO-20251111-{n:06d}",
        "declared_value": Money(amount=Decimal("399.00")),
        "parcels": [Parcel(weight_kg=1.25)],
        "items": [Item(name="羊绒围巾", quantity=1, unit_price=Money(amount=Decimal("399.00")))],
        "receiver_masked": {"name": "张*", "phone": "138****1111", "address": "上海市浦东新区张江路****"},
        "origin_province": "浙江省",
        "origin_city": "杭州市",
        "destination_province": "上海市",
        "destination_city": "上海市",
        "pii": {"key": "AQIDAHh...wrapped-data-key", "iv": "0f1e2d3c4b5a69788796a5b4", "ct": "c2VhbGVkLXBhcnR5"},
        "request_fingerprint": f"{n:064x}",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Shipment.model_validate(fields | overrides)


def a_waybill(tracking_number: str = "78912345678901", carrier: Carrier = Carrier.ZTO) -> Waybill:
    return Waybill(
        provider=Provider.KDNIAO,
        carrier=carrier,
        tracking_number=tracking_number,
        provider_order_id="shp_01JCZ00000000001",
        sort_code="300-A12 01",
        package_code="上海浦东集包",
        label="<html>label</html>",
    )


def an_attempt(outcome: str = "created", minutes: int = 0, carrier: Carrier = Carrier.ZTO) -> WaybillAttempt:
    return WaybillAttempt.model_validate(
        {
            "provider": "kdniao",
            "carrier": carrier,
            "outcome": outcome,
            "error_code": None if outcome == "created" else "105",
            "error_message": None if outcome == "created" else "超出服务范围",
            "at": NOW + timedelta(minutes=minutes),
        }
    )


TRACES: list[tuple[str, str, Status, SubStatus]] = [
    ("1", "【杭州市】【萧山区】快件已由【杭州萧山网点】揽收", Status.PICKED_UP, SubStatus.NONE),
    ("2", "快件离开【杭州萧山网点】，正发往【杭州转运中心】", Status.IN_TRANSIT, SubStatus.NONE),
    ("204", "快件已到达【杭州转运中心】", Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),
    ("2", "快件离开【杭州转运中心】，正发往【上海转运中心】", Status.IN_TRANSIT, SubStatus.NONE),
    ("201", "快件已到达【上海市】", Status.ARRIVED_AT_DESTINATION_CITY, SubStatus.NONE),
    ("205", "快件已到达【上海浦东张江网点】", Status.IN_TRANSIT, SubStatus.AT_DELIVERY_STATION),
    ("202", "【上海浦东张江网点】派件员：王师傅 13800001111 正在派件", Status.OUT_FOR_DELIVERY, SubStatus.NONE),
    ("3", "已签收，签收人：本人", Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT),
]


def a_trace(
    index: int,
    *,
    tracking_number: str = "78912345678901",
    at: datetime | None = None,
    code: tuple[str, str, Status, SubStatus] | None = None,
) -> TrackingEvent:
    """The ``index``-th scan of a Kdniao snapshot (codes cycle through a realistic journey)."""
    raw_code, text, status, sub_status = code or TRACES[index % len(TRACES)]
    occurred_at = at or NOW + timedelta(hours=index)
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number=tracking_number,
        occurred_at=occurred_at,
        status=status,
        sub_status=sub_status,
        raw_code=raw_code,
        raw_text=f"{text}（第{index}次扫描）" if index >= len(TRACES) else text,
        location="上海市",
        content_hash=content_hash(Carrier.ZTO, tracking_number, occurred_at, raw_code, text),
    )


def together(callers: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` on ``callers`` threads released at the same moment."""
    gate = threading.Barrier(callers)

    def run(i: int) -> T:
        gate.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=callers) as pool:
        return list(pool.map(run, range(callers)))


def shipped(store: ShipmentStore, n: int = 1, tracking_number: str = "78912345678901") -> str:
    """Given: a shipment with a waybill and a tracking claim (what the waybill workflow leaves behind)."""
    shipment = a_shipment(n)
    store.create(shipment)
    store.save_waybill(shipment.shipment_id, a_waybill(tracking_number), [an_attempt()], NOW)
    store.claim_tracking("ZTO", tracking_number, shipment.shipment_id, shipment.order_id)
    return shipment.shipment_id


# ---------------------------------------------------------------------------------------- shipments


def test_both_adapters_implement_the_port(store: ShipmentStore):
    assert isinstance(store, ShipmentStore)


def test_a_created_shipment_reads_back_by_id_and_by_order(store: ShipmentStore):
    # Given a new shipment
    shipment = a_shipment()
    # When it is created
    store.create(shipment)
    # Then it reads back unchanged, by id and by order id
    assert store.get(shipment.shipment_id) == shipment
    assert store.get_by_order(shipment.order_id) == shipment


def test_unknown_ids_are_not_found(store: ShipmentStore):
    with pytest.raises(ShipmentNotFound):
        store.get("shp_missing")
    with pytest.raises(ShipmentNotFound):
        store.get_by_order("SO-missing")


def test_the_same_order_id_twice_is_refused_with_the_first_shipment(store: ShipmentStore):
    # Given a shipment for an order
    first = a_shipment(1)
    store.create(first)
    # When another shipment is created for the same order id (an OMS retry with a new shipment id)
    second = a_shipment(2, order_id=first.order_id, request_fingerprint="f" * 64)
    with pytest.raises(OrderAlreadyExists) as refused:
        store.create(second)
    # Then the error carries the first shipment and its fingerprint, and nothing of the second was written
    assert (refused.value.shipment_id, refused.value.fingerprint) == (first.shipment_id, first.request_fingerprint)
    with pytest.raises(ShipmentNotFound):
        store.get(second.shipment_id)
    assert store.get_by_order(first.order_id).shipment_id == first.shipment_id


def test_concurrent_creates_of_one_order_let_exactly_one_win(store: ShipmentStore):
    # Given 5 API calls racing with the same order id
    def create(i: int) -> str:
        try:
            store.create(a_shipment(10 + i, order_id="SO-RACE-1"))
        except OrderAlreadyExists as taken:
            return f"taken by {taken.shipment_id}"
        return "created"

    outcomes = together(5, create)
    # Then one created it and the others were told which shipment owns the order
    winner = store.get_by_order("SO-RACE-1").shipment_id
    assert sorted(outcomes) == ["created"] + [f"taken by {winner}"] * 4


def test_recording_a_waybill_moves_a_pending_shipment_to_waybill_created(backend: Backend):
    store = backend.store
    shipment = a_shipment()
    store.create(shipment)
    # When the workflow records the waybill with its attempts (one failover, one success)
    attempts = [an_attempt("unavailable", 0, Carrier.SF), an_attempt("created", 1)]
    later = NOW + timedelta(minutes=2)
    saved = store.save_waybill(shipment.shipment_id, a_waybill(), attempts, later)
    # Then status, carrier, provider, tracking number and attempts are set (the raw label is not stored)
    assert (saved.status, saved.carrier, saved.provider, saved.tracking_number) == (
        Status.WAYBILL_CREATED,
        Carrier.ZTO,
        Provider.KDNIAO,
        "78912345678901",
    )
    assert saved.waybill == a_waybill().model_copy(update={"label": None})
    assert saved.waybill_attempts == attempts
    assert (saved.version, saved.updated_at) == (1, later)
    assert store.get(shipment.shipment_id) == saved


def test_recording_the_same_waybill_again_is_a_no_op(backend: Backend):
    store = backend.store
    shipment = a_shipment()
    store.create(shipment)
    saved = store.save_waybill(shipment.shipment_id, a_waybill(), [an_attempt()], NOW)
    writes = backend.item_writes()
    # When a retried workflow step records the same waybill
    again = store.save_waybill(shipment.shipment_id, a_waybill(), [an_attempt()], NOW + timedelta(hours=1))
    # Then nothing changes: same version, attempts not duplicated, no item write (the failed condition aside)
    assert again == saved
    assert store.get(shipment.shipment_id).waybill_attempts == [an_attempt()]
    assert backend.item_writes() - writes <= 1


def test_a_different_waybill_is_refused_with_the_existing_one(store: ShipmentStore):
    shipment = a_shipment()
    store.create(shipment)
    store.save_waybill(shipment.shipment_id, a_waybill("78912345678901"), [], NOW)
    with pytest.raises(WaybillAlreadyRecorded) as refused:
        store.save_waybill(shipment.shipment_id, a_waybill("SF1234567890123", Carrier.SF), [], NOW)
    assert refused.value.existing.tracking_number == "78912345678901"


def test_a_waybill_after_a_failed_attempt_round_moves_waybill_failed_to_created(store: ShipmentStore):
    shipment = a_shipment()
    store.create(shipment)
    store.set_status(shipment.shipment_id, Status.WAYBILL_FAILED, expected={Status.PENDING}, now=NOW)
    saved = store.save_waybill(shipment.shipment_id, a_waybill(), [], NOW)
    assert saved.status == Status.WAYBILL_CREATED


def test_a_waybill_recorded_after_tracking_already_won_keeps_the_tracking_status(store: ShipmentStore):
    # Given a shipment whose first scan was applied before the workflow recorded the waybill
    shipment = a_shipment()
    store.create(shipment)
    picked_up = state_of(a_trace(0))
    store.apply_tracking_state(shipment.shipment_id, picked_up, last_event_text="揽收", stall=None, now=NOW)
    # When the waybill is recorded
    saved = store.save_waybill(shipment.shipment_id, a_waybill(), [], NOW)
    # Then the waybill is there and the status stays what tracking said
    assert saved.waybill is not None
    assert (saved.status, saved.status_key) == (Status.PICKED_UP, picked_up.key)


def test_a_cancelled_shipment_never_records_a_waybill(store: ShipmentStore):
    # issue 13: a cancel that races a create wins - the waybill is refused (and cancelled by the workflow)
    shipment = a_shipment()
    store.create(shipment)
    store.set_status(shipment.shipment_id, Status.CANCELLED, expected=None, now=NOW)
    with pytest.raises(StatusConflict):
        store.save_waybill(shipment.shipment_id, a_waybill(), [], NOW)
    stored = store.get(shipment.shipment_id)
    assert (stored.status, stored.waybill, stored.tracking_number) == (Status.CANCELLED, None, None)


def test_a_late_carrier_scan_never_undoes_a_cancellation(store: ShipmentStore):
    # Given a cancelled shipment
    shipment = a_shipment()
    store.create(shipment)
    store.set_status(shipment.shipment_id, Status.CANCELLED, expected={Status.PENDING}, now=NOW)
    # When a carrier scan stamped after the cancellation arrives
    late = state_of(a_trace(3))
    change = store.apply_tracking_state(shipment.shipment_id, late, last_event_text="运输中", stall=None, now=NOW)
    # Then it does not win the fold: the shipment stays cancelled
    assert change is None
    assert store.get(shipment.shipment_id).status is Status.CANCELLED


def test_save_waybill_on_a_missing_shipment_is_not_found(store: ShipmentStore):
    with pytest.raises(ShipmentNotFound):
        store.save_waybill("shp_missing", a_waybill(), [], NOW)


def test_set_status_is_conditional_on_the_expected_statuses(store: ShipmentStore):
    shipment = a_shipment()
    store.create(shipment)
    # When the workflow marks a pending shipment failed
    failed = store.set_status(
        shipment.shipment_id, Status.WAYBILL_FAILED, SubStatus.NONE, expected={Status.PENDING}, now=NOW
    )
    assert (failed.status, failed.version) == (Status.WAYBILL_FAILED, 1)
    # Then a transition that expects PENDING is refused, reporting the current status
    with pytest.raises(StatusConflict) as conflict:
        store.set_status(shipment.shipment_id, Status.CANCELLED, expected={Status.PENDING}, now=NOW)
    assert conflict.value.current == Status.WAYBILL_FAILED
    # And a retry back to PENDING from WAYBILL_FAILED is allowed
    retried = store.set_status(
        shipment.shipment_id, Status.PENDING, expected={Status.WAYBILL_FAILED, Status.PENDING}, now=NOW
    )
    assert retried.status == Status.PENDING
    with pytest.raises(ShipmentNotFound):
        store.set_status("shp_missing", Status.CANCELLED, expected=None, now=NOW)


def test_waybill_attempts_append_in_order(store: ShipmentStore):
    shipment = a_shipment()
    store.create(shipment)
    attempts = [an_attempt("unavailable", 0, Carrier.SF), an_attempt("rejected", 1), an_attempt("created", 2)]
    for attempt in attempts:
        store.add_waybill_attempt(shipment.shipment_id, attempt)
    assert store.get(shipment.shipment_id).waybill_attempts == attempts
    with pytest.raises(ShipmentNotFound):
        store.add_waybill_attempt("shp_missing", attempts[0])


# ----------------------------------------------------------------------------------------- tracking


def test_a_tracking_claim_is_found_by_carrier_and_number(store: ShipmentStore):
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    assert (claim.shipment_id, claim.order_id, claim.known_hashes) == (
        shipment_id,
        a_shipment().order_id,
        frozenset(),
    )
    assert store.find_by_tracking("ZTO", "00000000000000") is None
    assert store.find_by_tracking("YTO", "78912345678901") is None


def test_a_claim_keeps_the_facts_of_its_shipment_and_a_reissued_number_takes_the_new_ones(store: ShipmentStore):
    # Given a shipment claiming its number with its lane, service and creation time
    first = a_shipment(1)
    store.create(first)
    store.claim_tracking("ZTO", "78912345678901", first.shipment_id, first.order_id, facts=ClaimFacts.of(first))
    # Then the claim hands them back exactly (the ingest reads no shipment for them)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    assert claim.facts == ClaimFacts.of(first)
    assert claim.facts.lane.destination_city == first.destination_city
    assert claim.facts.created_at == first.created_at
    # When the carrier issues the number again to another shipment
    second = a_shipment(2).model_copy(update={"destination_city": "苏州市", "created_at": NOW + timedelta(days=40)})
    store.create(second)
    store.claim_tracking(
        "ZTO", "78912345678901", second.shipment_id, second.order_id,
        replacing=first.shipment_id, facts=ClaimFacts.of(second),
    )  # fmt: skip
    # Then the claim carries the new shipment's facts; a claim written without facts has none
    moved = store.find_by_tracking("ZTO", "78912345678901")
    assert moved is not None
    assert moved.facts == ClaimFacts.of(second)
    shipped(store, 3, tracking_number="78912345678903")
    bare = store.find_by_tracking("ZTO", "78912345678903")
    assert bare is not None
    assert bare.facts is None


def test_claiming_again_for_the_same_shipment_is_a_no_op_and_keeps_known_events(store: ShipmentStore):
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    store.append_events(claim, [a_trace(0), a_trace(1)])
    # When the workflow step that claims the number is retried
    store.claim_tracking("ZTO", "78912345678901", shipment_id, a_shipment().order_id)
    # Then the claim still knows the stored events
    again = store.find_by_tracking("ZTO", "78912345678901")
    assert again is not None
    assert again.known_hashes == {a_trace(0).content_hash, a_trace(1).content_hash}


def test_a_tracking_number_claimed_by_another_shipment_is_a_conflict(store: ShipmentStore):
    owner = shipped(store, 1)
    other = a_shipment(2)
    store.create(other)
    with pytest.raises(TrackingClaimConflict) as conflict:
        store.claim_tracking("ZTO", "78912345678901", other.shipment_id, other.order_id)
    assert conflict.value.shipment_id == owner


def test_append_events_stores_only_new_events_and_returns_them(backend: Backend):
    store = backend.store
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    # When a snapshot arrives that repeats a scan within itself
    first = store.append_events(claim, [a_trace(0), a_trace(1), a_trace(0)])
    # Then each scan is new once
    assert first == [a_trace(0), a_trace(1)]
    # When the next full snapshot repeats both and adds one
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    second = store.append_events(claim, [a_trace(0), a_trace(1), a_trace(2)])
    assert second == [a_trace(2)]
    # Then the timeline holds three events, newest first
    assert store.list_events(shipment_id) == [a_trace(2), a_trace(1), a_trace(0)]
    assert store.list_events(shipment_id, limit=2) == [a_trace(2), a_trace(1)]


def test_append_events_with_nothing_new_writes_nothing(backend: Backend):
    store = backend.store
    shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    store.append_events(claim, [a_trace(i) for i in range(5)])
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    writes = backend.item_writes()
    # When the same snapshot is pushed again
    assert store.append_events(claim, [a_trace(i) for i in range(5)]) == []
    # Then not a single item is written
    assert backend.item_writes() == writes


def test_a_30_trace_snapshot_with_29_known_writes_one_event_item(backend: Backend):
    # Given a claim that knows 29 scans
    store = backend.store
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    store.append_events(claim, [a_trace(i) for i in range(29)])
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    assert len(claim.known_hashes) == 29
    writes = backend.item_writes()
    # When the carrier pushes its full snapshot of 30 scans
    new = store.append_events(claim, [a_trace(i) for i in range(30)])
    # Then one event is new, and the cost is that event's item plus one update of the claim's hash set
    assert new == [a_trace(29)]
    assert backend.item_writes() - writes == 2
    assert len(store.list_events(shipment_id)) == 30


def test_concurrent_appends_of_the_same_snapshot_report_each_event_once(store: ShipmentStore):
    # Given two normalizers holding the same (stale) claim and the same duplicated push
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    snapshot = [a_trace(i) for i in range(12)]
    # When both append at once
    results = together(4, lambda _: store.append_events(claim, snapshot))
    # Then every event is reported new by exactly one of them, and stored once
    reported = [event.content_hash for result in results for event in result]
    assert sorted(reported) == sorted(e.content_hash for e in snapshot)
    assert len(store.list_events(shipment_id)) == 12


def test_one_write_records_the_hashes_and_the_winning_state_together(backend: Backend):
    # Given a claim, and a batch's two new scans written as items already (put_events)
    store = backend.store
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    scans = [a_trace(0), a_trace(1)]
    store.put_events([(shipment_id, e) for e in scans])
    writes = backend.item_writes()
    # When their hashes and the state they fold into are written in one request
    done = store.record_and_apply_state(claim, scans, state_of(a_trace(1)), last_event_text="在途", stall=None, now=NOW)
    # Then both scans are reported new, the change names the new status (the old one is not returned)
    assert done is not None
    new, change = done
    assert new == scans
    assert change is not None
    assert (change.new_status, change.old_status, change.order_id) == (Status.IN_TRANSIT, None, a_shipment().order_id)
    # And the claim knows both hashes and the shipment holds the state: one write of each item
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    assert claim.known_hashes == {e.content_hash for e in scans}
    assert (store.get(shipment_id).status, store.get(shipment_id).last_event_text) == (Status.IN_TRANSIT, "在途")
    assert backend.item_writes() - writes == 2


def test_one_write_whose_state_lost_records_the_hashes_alone(store: ShipmentStore):
    # Given a shipment already delivered, and a late pickup scan not yet recorded
    shipment_id = shipped(store)
    assert store.apply_tracking_state(shipment_id, state_of(a_trace(7)), last_event_text="签收", stall=None, now=NOW)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    store.put_events([(shipment_id, a_trace(0))])
    # When the one write is tried with the pickup's state
    done = store.record_and_apply_state(
        claim, [a_trace(0)], state_of(a_trace(0)), last_event_text="揽收", stall=None, now=NOW
    )
    # Then the scan is recorded (new, once) and the delivered state stays
    assert done == ([a_trace(0)], None)
    again = store.find_by_tracking("ZTO", "78912345678901")
    assert again is not None
    assert a_trace(0).content_hash in again.known_hashes
    assert store.get(shipment_id).status is Status.DELIVERED


def test_one_write_with_a_hash_recorded_meanwhile_writes_nothing(store: ShipmentStore):
    # Given a normalizer holding a claim read before another one recorded the same scan
    shipment_id = shipped(store)
    stale = store.find_by_tracking("ZTO", "78912345678901")
    assert stale is not None
    store.put_events([(shipment_id, a_trace(0)), (shipment_id, a_trace(1))])
    assert store.record_events(stale, [a_trace(0)]) == [a_trace(0)]
    # When it tries the one write with both scans
    done = store.record_and_apply_state(
        stale, [a_trace(0), a_trace(1)], state_of(a_trace(1)), last_event_text="在途", stall=None, now=NOW
    )
    # Then nothing was decided or written: the caller records, then applies, in two steps
    assert done is None
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    assert claim.known_hashes == {a_trace(0).content_hash}
    assert store.get(shipment_id).status is Status.WAYBILL_CREATED


def test_one_write_cancelled_for_a_conflicting_transaction_writes_nothing(moto_backend: Backend, dynamodb: Any):
    # Given a claim, a batch's two new scans stored as items, and DynamoDB cancelling the next transaction
    # for another transaction on the same items (reason TransactionConflict: no condition failed)
    store = moto_backend.store
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    scans = [a_trace(0), a_trace(1)]
    store.put_events([(shipment_id, e) for e in scans])
    conflicts = TransactionConflicts.first(1).register(dynamodb.meta.events)
    # When the one write is tried
    done = store.record_and_apply_state(claim, scans, state_of(a_trace(1)), last_event_text="在途", stall=None, now=NOW)
    # Then nothing was decided or written: the caller records, then applies, in two steps
    assert (done, conflicts.cancelled) == (None, 1)
    assert store.find_by_tracking("ZTO", "78912345678901").known_hashes == set()  # type: ignore[union-attr]
    assert store.get(shipment_id).status is Status.WAYBILL_CREATED
    # And those two steps report both scans new once and write the state
    assert store.record_events(claim, scans) == scans
    assert store.apply_tracking_state(shipment_id, state_of(a_trace(1)), last_event_text="在途", stall=None, now=NOW)
    assert store.get(shipment_id).status is Status.IN_TRANSIT


def test_concurrent_folds_of_the_same_new_scans_report_each_once_and_keep_the_newest_state(store: ShipmentStore):
    # Given four normalizers holding the same claim and the same new scans (a duplicated push in four batches)
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    scans = [a_trace(i) for i in range(4)]
    store.put_events([(shipment_id, e) for e in scans])
    state = state_of(a_trace(3))

    def fold_once(_: int) -> list[Any]:
        # what the tracking writer does: the one write, or when it cannot decide, the two
        done = store.record_and_apply_state(claim, scans, state, last_event_text="派送", stall=None, now=NOW)
        if done is not None:
            return done[0]
        new = store.record_events(claim, scans)
        if new:
            store.apply_tracking_state(shipment_id, state, last_event_text="派送", stall=None, now=NOW)
        return new

    # When all four fold at once
    results = together(4, fold_once)
    # Then every scan is reported new by exactly one of them, and the stored state is the newest scan's
    reported = [event.content_hash for result in results for event in result]
    assert sorted(reported) == sorted(e.content_hash for e in scans)
    assert store.get(shipment_id).status_key == state.key


def test_append_events_without_a_claim_is_not_found(store: ShipmentStore):
    shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    ghost = type(claim)("shp_x", "SO-x", "ZTO", "00000000000000")
    with pytest.raises(ShipmentNotFound):
        store.append_events(ghost, [a_trace(0, tracking_number="00000000000000")])


def test_a_newer_tracking_state_wins_and_reports_the_change(store: ShipmentStore):
    shipment_id = shipped(store)
    picked_up, in_transit = state_of(a_trace(0)), state_of(a_trace(1))
    # When the first scan is applied
    change = store.apply_tracking_state(shipment_id, picked_up, last_event_text="揽收", stall=None, now=NOW)
    # Then the change reports the old and new status with the shipment's identity
    assert change is not None
    assert (change.old_status, change.new_status, change.order_id, change.carrier, change.tracking_number) == (
        Status.WAYBILL_CREATED,
        Status.PICKED_UP,
        a_shipment().order_id,
        "ZTO",
        "78912345678901",
    )
    assert change.occurred_at == picked_up.occurred_at
    # When a later scan arrives, then an older one, then a duplicate
    assert store.apply_tracking_state(shipment_id, in_transit, last_event_text="在途", stall=None, now=NOW)
    assert store.apply_tracking_state(shipment_id, picked_up, last_event_text="揽收", stall=None, now=NOW) is None
    assert store.apply_tracking_state(shipment_id, in_transit, last_event_text="在途", stall=None, now=NOW) is None
    # Then the stored state is the newest
    stored = store.get(shipment_id)
    assert (stored.status, stored.sub_status, stored.status_key, stored.last_event_text) == (
        Status.IN_TRANSIT,
        SubStatus.NONE,
        in_transit.key,
        "在途",
    )
    assert stored.last_event_at == in_transit.occurred_at
    assert stored.version == 1 + 2  # waybill + two winning states


def test_a_late_in_transit_never_moves_a_delivered_parcel_back(store: ShipmentStore):
    shipment_id = shipped(store)
    delivered = state_of(a_trace(7))
    late = state_of(a_trace(20, code=TRACES[1]))  # stamped later than the delivery, still in transit
    assert store.apply_tracking_state(shipment_id, delivered, last_event_text="签收", stall=None, now=NOW)
    assert store.apply_tracking_state(shipment_id, late, last_event_text="在途", stall=None, now=NOW) is None
    assert store.get(shipment_id).status == Status.DELIVERED


def test_apply_tracking_state_on_a_missing_shipment_is_not_found(store: ShipmentStore):
    with pytest.raises(ShipmentNotFound):
        store.apply_tracking_state("shp_missing", state_of(a_trace(0)), last_event_text=None, stall=None, now=NOW)


def test_ten_concurrent_writers_end_with_the_max_key_state(store: ShipmentStore):
    # Given one shipment and the states of a 10-scan journey, each writer getting them in its own order
    shipment_id = shipped(store)
    events = [a_trace(i) for i in range(10)]
    states = [state_of(e) for e in events]
    before = store.get(shipment_id).version

    def writer(i: int) -> int:
        mine = states[:]
        random.Random(i).shuffle(mine)
        won = 0
        for state in mine:
            if store.apply_tracking_state(shipment_id, state, last_event_text=None, stall=None, now=NOW):
                won += 1
        return won

    wins = together(10, writer)
    # Then the stored state is the fold of the set (no lost update), and every win was one version step
    expected = fold(events)
    assert expected is not None
    stored = store.get(shipment_id)
    assert (stored.status, stored.status_key) == (expected.status, expected.key)
    assert stored.version - before == sum(wins)


# ------------------------------------------------------------------------------------------- stalls


def test_stall_marks_are_found_only_when_due(store: ShipmentStore):
    ids = [shipped(store, n, tracking_number=f"7891234567{n:04d}") for n in range(1, 5)]
    store.set_stall(ids[0], StallMark(NOW - timedelta(hours=1), "no_scan_48h", "ep-1"))
    store.set_stall(ids[1], StallMark(NOW, "no_scan_48h", "ep-2"))
    store.set_stall(ids[2], StallMark(NOW + timedelta(seconds=1), "no_scan_48h", "ep-3"))
    stats = QueryStats()
    due = list(store.query_due_stalls(NOW, stats=stats))
    assert sorted(d.shipment_id for d in due) == sorted(ids[:2])
    first = next(d for d in due if d.shipment_id == ids[0])
    assert (first.rule, first.episode, first.due_at, first.order_id, first.status, first.tracking_number) == (
        "no_scan_48h",
        "ep-1",
        NOW - timedelta(hours=1),
        a_shipment(1).order_id,
        Status.WAYBILL_CREATED,
        "78912345670001",
    )
    assert stats.pages == 8
    assert stats.items_read == 2
    # When a stall is cleared (a scan arrived) it leaves the index
    store.clear_stall(ids[0])
    assert [d.shipment_id for d in store.query_due_stalls(NOW)] == [ids[1]]
    with pytest.raises(ShipmentNotFound):
        store.set_stall("shp_missing", StallMark(NOW, "r", "e"))


def test_a_tracking_state_sets_or_clears_the_stall_mark(store: ShipmentStore):
    shipment_id = shipped(store)
    mark = StallMark(NOW - timedelta(minutes=1), "in_transit_72h", "ep-a")
    store.apply_tracking_state(shipment_id, state_of(a_trace(1)), last_event_text="在途", stall=mark, now=NOW)
    assert [d.episode for d in store.query_due_stalls(NOW)] == ["ep-a"]
    # When the parcel is delivered (terminal: no stall mark)
    store.apply_tracking_state(shipment_id, state_of(a_trace(7)), last_event_text="签收", stall=None, now=NOW)
    assert list(store.query_due_stalls(NOW + timedelta(days=30))) == []


def test_a_stall_episode_is_alerted_once_even_under_five_concurrent_sweeps(store: ShipmentStore):
    shipment_id = shipped(store)
    store.set_stall(shipment_id, StallMark(NOW, "no_scan_48h", "ep-1"))
    # When five overlapping sweeps try to alert the same episode
    outcomes = together(5, lambda _: store.mark_stall_alerted(shipment_id, "ep-1", NOW))
    # Then exactly one may alert, and the alerted entry leaves the index (later sweeps don't read it)
    assert sorted(outcomes) == [False, False, False, False, True]
    assert store.mark_stall_alerted(shipment_id, "ep-1", NOW) is False
    assert list(store.query_due_stalls(NOW + timedelta(days=1))) == []
    # And re-setting the same mark (a retried step) neither re-alerts nor re-enters the index
    store.set_stall(shipment_id, StallMark(NOW, "no_scan_48h", "ep-1"))
    assert list(store.query_due_stalls(NOW + timedelta(days=1))) == []
    assert store.mark_stall_alerted(shipment_id, "ep-1", NOW) is False
    # And a stale episode (the stall was re-armed) is not alerted; the new one is, once
    store.set_stall(shipment_id, StallMark(NOW + timedelta(days=1), "no_scan_48h", "ep-2"))
    assert store.mark_stall_alerted(shipment_id, "ep-1", NOW) is False
    assert store.mark_stall_alerted(shipment_id, "ep-2", NOW) is True
    # And a cleared stall is not alerted at all
    store.clear_stall(shipment_id)
    assert store.mark_stall_alerted(shipment_id, "ep-2", NOW) is False
    assert store.mark_stall_alerted("shp_missing", "ep-1", NOW) is False


def test_a_correction_replaces_the_state_only_while_it_is_unchanged(store: ShipmentStore):
    # Given a parcel whose newest scan was mapped DELIVERED (a wrong mapping)
    shipment_id = shipped(store)
    wrong = a_trace(3, code=("3", "已签收，签收人：本人", Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT))
    stored = state_of(wrong)
    store.apply_tracking_state(shipment_id, stored, last_event_text=None, stall=None, now=NOW)
    # When a replay corrects it to IN_TRANSIT (a lower key) expecting the stored key
    fixed = state_of(wrong.model_copy(update={"status": Status.IN_TRANSIT, "sub_status": SubStatus.NONE}))
    assert fixed.key < stored.key
    change = store.replace_tracking_state(
        shipment_id, fixed, expected_key=stored.key, last_event_text="corrected", stall=None, now=NOW
    )
    # Then the corrected state is stored, reported as a change
    assert change is not None
    assert (change.old_status, change.new_status) == (Status.DELIVERED, Status.IN_TRANSIT)
    assert (store.get(shipment_id).status, store.get(shipment_id).status_key) == (Status.IN_TRANSIT, fixed.key)
    # And a correction expecting a key that is no longer stored changes nothing
    assert (
        store.replace_tracking_state(
            shipment_id, stored, expected_key=stored.key, last_event_text=None, stall=None, now=NOW
        )
        is None
    )
    assert store.get(shipment_id).status is Status.IN_TRANSIT


def test_a_correction_never_replaces_a_cancellation(store: ShipmentStore):
    shipment_id = shipped(store)
    cancelled = store.set_status(shipment_id, Status.CANCELLED, expected=None, now=NOW)
    state = state_of(a_trace(1))
    assert (
        store.replace_tracking_state(
            shipment_id, state, expected_key=cancelled.status_key, last_event_text=None, stall=None, now=NOW
        )
        is None
    )
    assert store.get(shipment_id).status is Status.CANCELLED


def test_rewritten_events_replace_the_stored_ones_under_the_same_key(store: ShipmentStore):
    # Given a stored scan mapped as UNMAPPED
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    unknown = a_trace(1, code=("999", "新代码", Status.IN_TRANSIT, SubStatus.UNMAPPED))
    store.append_events(claim, [unknown])
    # When the same scan is rewritten with its corrected mapping
    fixed = unknown.model_copy(update={"status": Status.OUT_FOR_DELIVERY, "sub_status": SubStatus.NONE})
    store.rewrite_events(claim, [fixed])
    # Then the timeline holds the corrected scan once, and it is still known (a push of it is a duplicate)
    assert [(e.content_hash, e.status) for e in store.list_events(shipment_id)] == [
        (unknown.content_hash, Status.OUT_FOR_DELIVERY)
    ]
    again = store.find_by_tracking("ZTO", "78912345678901")
    assert again is not None
    assert store.append_events(again, [unknown]) == []


def test_the_stream_carries_each_committed_change_for_the_relay(backend: Backend):
    """The outbox contract: what the relay derives from the fake's change log and from the DynamoDB stream
    is the same, one announcement per committed change, none for a write that lost its condition."""
    from parcelhub.app.outbox import derive
    from parcelhub.config import HubConfig

    store = backend.store
    shipment_id = shipped(store)
    picked, delivered = a_trace(0), a_trace(7)
    # Given a pickup, then a due stall claimed by a sweep
    store.apply_tracking_state(
        shipment_id, state_of(picked), last_event_text="揽收", stall=None, now=NOW, location="杭州市", provider="kdniao"
    )
    store.set_stall(shipment_id, StallMark(NOW - timedelta(hours=1), "in_transit", "in_transit:ep-1"))
    assert store.mark_stall_alerted(shipment_id, "in_transit:ep-1", NOW)
    # When the delivery wins, and a late pickup loses its condition
    store.apply_tracking_state(
        shipment_id, state_of(delivered), last_event_text="签收", stall=None, now=NOW, provider="kdniao"
    )
    assert store.apply_tracking_state(shipment_id, state_of(picked), last_event_text=None, stall=None, now=NOW) is None
    # And a circuit opens
    store.put_health("sf", {"state": "open", "failures": [1.0], "opened_at": 1.0, "open_until": 31.0}, 0)
    events = [event for change in backend.changes() for event in derive(change, HubConfig())]
    # Then: pickup and delivery status changes, the stall alert, its resolution, the circuit opening
    assert [type(e).__name__ for e in events] == [
        "ShipmentStatusChanged",
        "ShipmentStalled",
        "ShipmentStatusChanged",
        "ShipmentDelivered",
        "StallResolved",
        "CarrierCircuitOpened",
    ]
    changed = [e for e in events if type(e).__name__ == "ShipmentStatusChanged"]
    assert [(e.old_status, e.new_status, e.location) for e in changed] == [  # type: ignore[attr-defined]
        (Status.WAYBILL_CREATED, Status.PICKED_UP, "杭州市"),
        (Status.PICKED_UP, Status.DELIVERED, None),
    ]
    assert events[1].episode_id == events[4].episode_id == "in_transit:ep-1"  # type: ignore[attr-defined]
    assert len({e.event_id for e in events}) == len(events)


def test_a_carrier_order_whose_cancel_failed_is_announced_from_the_stream(backend: Backend):
    """WaybillCancelFailed comes from the committed ``cancel_failed`` write (the same from the fake's change
    log and from the DynamoDB stream), once, with the order and the reason."""
    from parcelhub.app.outbox import derive
    from parcelhub.config import HubConfig
    from parcelhub.domain.models import CarrierOrder

    store = backend.store
    shipment = a_shipment()
    store.create(shipment)
    order = CarrierOrder(
        provider=Provider.KDNIAO, carrier=Carrier.ZTO, order_id=shipment.shipment_id, state="open", at=NOW
    )
    store.open_order(shipment.shipment_id, order, NOW)
    # When the order is abandoned, then its last cancel fails
    store.settle_order(shipment.shipment_id, order.key, "abandoned", NOW, tracking_number="78912345678901")
    failed = an_attempt("cancel_failed", minutes=3).model_copy(update={"error_code": "HTTP_503"})
    store.settle_order(shipment.shipment_id, order.key, "cancel_failed", NOW, cancel_attempts=3, attempt=failed)
    store.finish_run(shipment.shipment_id, None)
    events = [event for change in backend.changes() for event in derive(change, HubConfig())]
    # Then exactly one alert, naming the order and the reason
    assert [type(e).__name__ for e in events] == ["WaybillCancelFailed"]
    alert = events[0]
    assert (alert.provider_order_id, alert.tracking_number, alert.cancel_attempts) == (  # type: ignore[attr-defined]
        shipment.shipment_id,
        "78912345678901",
        3,
    )
    assert (alert.error_code, alert.failed_at) == ("HTTP_503", failed.at)  # type: ignore[attr-defined]


# -------------------------------------------------------------------------------------------- polls


def test_due_polls_are_returned_fairly_and_within_the_limit(store: ShipmentStore):
    ids = [shipped(store, n, tracking_number=f"7891234567{n:04d}") for n in range(1, 13)]
    for n, shipment_id in enumerate(ids):
        store.set_poll_due(shipment_id, NOW - timedelta(minutes=n))
    store.set_poll_due(ids[0], NOW + timedelta(hours=1))  # polled recently: not due
    due = store.query_due_polls(NOW, limit=100)
    assert sorted(d.shipment_id for d in due) == sorted(ids[1:])
    sample = next(d for d in due if d.shipment_id == ids[1])
    assert (sample.carrier, sample.provider, sample.tracking_number, sample.due_at) == (
        "ZTO",
        "kdniao",
        "78912345670002",
        NOW - timedelta(minutes=1),
    )
    limited = store.query_due_polls(NOW, limit=4)
    assert len(limited) == 4
    assert {d.shipment_id for d in limited} <= set(ids[1:])
    store.clear_poll(ids[1])
    assert ids[1] not in {d.shipment_id for d in store.query_due_polls(NOW, limit=100)}


def test_a_terminal_status_leaves_the_poll_and_stall_indexes(store: ShipmentStore):
    shipment_id = shipped(store)
    store.set_poll_due(shipment_id, NOW)
    store.set_stall(shipment_id, StallMark(NOW, "r", "e"))
    store.set_status(shipment_id, Status.CANCELLED, expected=None, now=NOW)
    assert store.query_due_polls(NOW) == []
    assert list(store.query_due_stalls(NOW)) == []
    other = shipped(store, 2, tracking_number="78912345670002")
    store.set_poll_due(other, NOW)
    store.apply_tracking_state(other, state_of(a_trace(7)), last_event_text="签收", stall=None, now=NOW)
    assert store.query_due_polls(NOW) == []


def test_a_tracking_state_moves_the_poll_index_in_the_same_write(store: ShipmentStore):
    # Given a shipment in transit, polled a while ago
    shipment_id = shipped(store)
    store.set_poll_due(shipment_id, NOW - timedelta(hours=1))
    # When a newer scan wins with the next poll due in six hours
    change = store.apply_tracking_state(
        shipment_id, state_of(a_trace(2)), last_event_text="运输中", stall=None, now=NOW,
        poll_due=NOW + timedelta(hours=6),
    )  # fmt: skip
    # Then it is no longer due now, and it is due in six hours
    assert change is not None
    assert store.query_due_polls(NOW) == []
    assert [d.shipment_id for d in store.query_due_polls(NOW + timedelta(hours=6))] == [shipment_id]


# ------------------------------------------------------------------------------------ parked pushes


def test_parked_pushes_are_taken_once_in_arrival_order(store: ShipmentStore):
    refs = [f"s3://parcelhub-raw/kdniao/2025/11/11/push-{i}.json" for i in range(3)]
    for i, ref in enumerate(refs):
        store.park_push("ZTO", "78912345678901", ref, NOW + timedelta(seconds=3 - i), NOW + timedelta(days=1))
    store.park_push("ZTO", "78912345678999", "s3://other.json", NOW, NOW + timedelta(days=1))
    taken = store.take_parked("ZTO", "78912345678901", now=NOW)
    assert [p.payload_ref for p in taken] == list(reversed(refs))
    assert taken[0].received_at == NOW + timedelta(seconds=1)
    assert taken[0].expires_at == NOW + timedelta(days=1)
    assert store.take_parked("ZTO", "78912345678901", now=NOW) == []
    assert [p.payload_ref for p in store.take_parked("ZTO", "78912345678999", now=NOW)] == ["s3://other.json"]


def test_an_expired_parked_push_is_not_replayed(store: ShipmentStore):
    store.park_push("ZTO", "78912345678901", "s3://old.json", NOW - timedelta(days=2), NOW - timedelta(days=1))
    assert store.take_parked("ZTO", "78912345678901", now=NOW) == []


def test_concurrent_takers_each_get_a_parked_push_at_most_once(store: ShipmentStore):
    for i in range(6):
        store.park_push("ZTO", "78912345678901", f"s3://p{i}.json", NOW + timedelta(seconds=i), NOW + timedelta(days=1))
    results = together(3, lambda _: store.take_parked("ZTO", "78912345678901", now=NOW))
    refs = [p.payload_ref for result in results for p in result]
    assert sorted(refs) == [f"s3://p{i}.json" for i in range(6)]


# ----------------------------------------------------------------------------------- carrier health


def test_carrier_health_uses_optimistic_locking(store: ShipmentStore):
    assert store.get_health("kdniao") == ({}, 0)
    opened: dict[str, Any] = {"state": "open", "failures": 5, "opened_at": "2025-11-11T08:00:00Z"}
    assert store.put_health("kdniao", opened, expected_version=0) is True
    # A second writer that read version 0 loses
    assert store.put_health("kdniao", {"state": "closed"}, expected_version=0) is False
    assert store.get_health("kdniao") == (opened, 1)
    half = {"state": "half_open", "failures": 5, "probe": True, "ratio": 0.25}
    assert store.put_health("kdniao", half, expected_version=1) is True
    assert store.put_health("kdniao", {"state": "open"}, expected_version=1) is False
    assert store.get_health("kdniao") == (half, 2)
    assert store.get_health("sf") == ({}, 0)


def test_concurrent_health_writers_one_wins_per_version(store: ShipmentStore):
    outcomes = together(5, lambda i: store.put_health("sf", {"writer": i}, expected_version=0))
    assert sorted(outcomes) == [False] * 4 + [True]
    state, version = store.get_health("sf")
    assert version == 1
    assert outcomes[state["writer"]] is True


# ------------------------------------------------------------------------------------------- leases

LEASE_AT = datetime(2025, 11, 11, 8, 0, tzinfo=UTC)


def test_a_lease_has_one_holder_until_it_expires(store: ShipmentStore):
    # Given execution A holds the waybill lease for 60 s
    lease = store.acquire_lease("waybill#shp_1", "exec-a", now=LEASE_AT, seconds=60)
    assert (lease.owner, lease.until) == ("exec-a", LEASE_AT + timedelta(seconds=60))
    # When execution B asks within those 60 s, then it is refused and told who holds it until when
    with pytest.raises(LeaseHeld) as held:
        store.acquire_lease("waybill#shp_1", "exec-b", now=LEASE_AT + timedelta(seconds=30), seconds=60)
    assert (held.value.owner, held.value.until) == ("exec-a", LEASE_AT + timedelta(seconds=60))
    # A renews its own lease freely (task retries)
    renewed = store.acquire_lease("waybill#shp_1", "exec-a", now=LEASE_AT + timedelta(seconds=30), seconds=60)
    assert renewed.until == LEASE_AT + timedelta(seconds=90)
    # After expiry B takes over (a crashed holder cannot block forever)
    taken = store.acquire_lease("waybill#shp_1", "exec-b", now=LEASE_AT + timedelta(seconds=91), seconds=60)
    assert taken.owner == "exec-b"
    # Other names are independent
    assert store.acquire_lease("waybill#shp_2", "exec-a", now=LEASE_AT, seconds=60).owner == "exec-a"


def test_only_the_holder_releases_a_lease(store: ShipmentStore):
    store.acquire_lease("waybill#shp_1", "exec-a", now=LEASE_AT, seconds=60)
    store.release_lease("waybill#shp_1", "exec-b")  # not the holder: nothing happens
    with pytest.raises(LeaseHeld):
        store.acquire_lease("waybill#shp_1", "exec-b", now=LEASE_AT, seconds=60)
    store.release_lease("waybill#shp_1", "exec-a")
    assert store.acquire_lease("waybill#shp_1", "exec-b", now=LEASE_AT, seconds=60).owner == "exec-b"
    store.release_lease("waybill#shp_9", "exec-a")  # never taken: nothing happens


def test_concurrent_lease_takers_one_wins(store: ShipmentStore):
    def take(i: int) -> bool:
        try:
            store.acquire_lease("waybill#race", f"exec-{i}", now=LEASE_AT, seconds=60)
        except LeaseHeld:
            return False
        return True

    outcomes = together(5, take)
    assert sorted(outcomes) == [False] * 4 + [True]


# ------------------------------------------------------------------------------ cost: the stall sweep


def seed_active_shipments(backend: Backend, count: int, due_every: int, now: datetime) -> list[str]:
    """``count`` active shipments in the stall index; every ``due_every``-th is due, the rest due next week.

    The due ones (and, on the fake, all) go through ``create`` + ``set_stall``. On moto the others are
    bulk-loaded with BatchWriteItem: the adapter's own item, cut down to the keys and the attributes the
    stall index projects (what a sweep can read). moto spends ~4 ms per full item computing its size and
    copies the table on every TransactWriteItems, so 10,000 full creates would take minutes."""
    store = backend.store
    due_ids: list[str] = []
    bulk: list[dict[str, Any]] = []
    for n in range(count):
        shipment = a_shipment(100_000 + n, status=Status.IN_TRANSIT)
        if n % due_every == 0:
            due_ids.append(shipment.shipment_id)
            store.create(shipment)
            store.set_stall(
                shipment.shipment_id, StallMark(now - timedelta(minutes=n % 90), "in_transit_72h", f"ep-{n}")
            )
        elif backend.name == "memory":
            store.create(shipment)
            store.set_stall(shipment.shipment_id, StallMark(now + timedelta(days=7), "in_transit_72h", f"ep-{n}"))
        else:
            item = ser.shipment_to_item(shipment) | ser.stall_attributes(
                shipment.shipment_id, now + timedelta(days=7), "in_transit_72h", f"ep-{n}", DEFAULT_SHARDS
            )
            visible = {"pk", "sk", *ser.STALL_ATTRS, *ser.STALL_INDEX_ATTRIBUTES}
            bulk.append({"PutRequest": {"Item": ser.to_wire({k: v for k, v in item.items() if k in visible})}})
    if bulk:
        client = store.client  # type: ignore[attr-defined]
        for start in range(0, len(bulk), 25):
            client.batch_write_item(RequestItems={TABLE: bulk[start : start + 25]})
    return due_ids


def test_a_stall_sweep_reads_only_what_is_due(backend: Backend):
    # Given 10,000 active shipments of which 20 are due
    due_ids = seed_active_shipments(backend, 10_000, 500, NOW)
    assert len(due_ids) == 20
    calls_before = backend.calls["Query"]
    stats = QueryStats()
    # When the detector sweeps
    due = list(backend.store.query_due_stalls(NOW, DEFAULT_SHARDS, stats))
    # Then it finds exactly the due ones, reading <= 20 items with one query page per shard
    assert sorted(d.shipment_id for d in due) == sorted(due_ids)
    assert stats.items_read <= 20
    assert stats.pages == DEFAULT_SHARDS
    assert stats.per_shard_pages == dict.fromkeys(range(DEFAULT_SHARDS), 1)
    if backend.name == "moto":
        assert backend.calls["Query"] - calls_before == DEFAULT_SHARDS
        assert backend.calls["Scan"] == 0
    print(
        f"\n[{backend.name}] stall sweep over 10,000 active / 20 due: {stats.pages} pages, "
        f"{stats.items_read} items read, {stats.items_returned} returned, {stats.capacity_units} RCU reported"
    )


# ----------------------------------------------------------------------------- DynamoDB specifics


def test_find_by_tracking_is_exactly_one_get_item(moto_backend: Backend):
    shipped(moto_backend.store)
    before = sum(moto_backend.calls.values())
    gets = moto_backend.calls["GetItem"]
    assert moto_backend.store.find_by_tracking("ZTO", "78912345678901") is not None
    assert moto_backend.calls["GetItem"] - gets == 1
    assert sum(moto_backend.calls.values()) - before == 1


def test_the_shipment_item_keeps_condition_attributes_top_level(moto_backend: Backend, dynamodb: Any):
    shipment_id = shipped(moto_backend.store)
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"SHP#{shipment_id}"}, "sk": {"S": "META"}})["Item"]
    for name in ("status", "sub_status", "version", "updated_at", "carrier", "tracking_number", "order_id"):
        assert name in item, name
    assert item["status"] == {"S": "WAYBILL_CREATED"}
    assert item["version"] == {"N": "1"}
    assert item["updated_at"] == {"S": "2025-11-11T08:00:00.000000Z"}
    assert "M" in item["waybill"]
    assert "label" not in item["waybill"]["M"]
    assert "status_key" not in item  # absent, not NULL, until tracking wins
    order = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"ORDER#{a_shipment().order_id}"}, "sk": {"S": "ORDER"}}
    )
    assert order["Item"]["shipment_id"] == {"S": shipment_id}


def test_event_items_sort_by_time_under_the_shipment(moto_backend: Backend, dynamodb: Any):
    shipment_id = shipped(moto_backend.store)
    claim = moto_backend.store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    moto_backend.store.append_events(claim, [a_trace(0)])
    items = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :evt)",
        ExpressionAttributeValues={":pk": {"S": f"SHP#{shipment_id}"}, ":evt": {"S": "EVT#"}},
    )["Items"]
    assert [i["sk"]["S"] for i in items] == [f"EVT#2025-11-11T08:00:00.000000Z#{a_trace(0).content_hash}"]


def test_a_long_timeline_pages_through_list_events(moto_backend: Backend):
    shipment_id = shipped(moto_backend.store)
    claim = moto_backend.store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    events = [a_trace(i) for i in range(60)]
    assert len(moto_backend.store.append_events(claim, events)) == 60  # 3 BatchWriteItem chunks
    assert moto_backend.calls["BatchWriteItem"] == 3
    listed = moto_backend.store.list_events(shipment_id, limit=200)
    assert listed == list(reversed(events))


# -------------------------------------------------------------------------------- tracking page


def test_a_tracking_page_reads_the_shipment_and_its_newest_events_in_one_request(backend: Backend):
    # Given a shipment with ten scans
    store = backend.store
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    events = [a_trace(i) for i in range(10)]
    store.append_events(claim, events)
    stored = store.get(shipment_id)
    backend.calls.clear()
    # When the page reads it, asking for the newest four
    shipment, newest = store.shipment_with_timeline(shipment_id, limit=4)
    # Then it gets the shipment and those four, newest first, from one Query
    if backend.name == "moto":
        assert backend.calls == Counter({"Query": 1})
    assert shipment == stored
    assert newest == list(reversed(events))[:4]
    with pytest.raises(ShipmentNotFound):
        store.shipment_with_timeline("shp_missing")


def test_the_order_claim_answers_the_lookup_form_with_the_digest(store: ShipmentStore):
    store.create(a_shipment(1, lookup_digest="ab" * 16))
    store.create(a_shipment(2))
    found = store.find_order("SO-20251111-000001")
    assert found is not None
    assert (found.shipment_id, found.lookup_digest) == ("shp_01JCZ00000000001", "ab" * 16)
    without = store.find_order("SO-20251111-000002")
    assert without is not None
    assert without.lookup_digest is None
    assert store.find_order("SO-missing") is None


def test_attempt_counters_stop_at_the_limit_per_key_and_window(store: ShipmentStore):
    window = 3600
    start = datetime(2025, 11, 11, 8, 0, tzinfo=UTC)
    # three attempts fit, the fourth in the same window does not (and is not counted)
    assert [store.count_attempt("ip:a", limit=3, window_seconds=window, now=start) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    # another key has its own count; the next window starts afresh
    assert store.count_attempt("ip:b", limit=3, window_seconds=window, now=start)
    assert store.count_attempt("ip:a", limit=3, window_seconds=window, now=start + timedelta(seconds=window))


def test_concurrent_attempts_never_exceed_the_limit(store: ShipmentStore):
    results = together(12, lambda _: store.count_attempt("order:SO-1", limit=5, window_seconds=3600, now=NOW))
    assert sum(results) == 5


def test_attempt_counters_expire_and_store_no_key_in_the_clear(moto_backend: Backend, dynamodb: Any):
    moto_backend.store.count_attempt("ip:203.0.113.7", limit=5, window_seconds=600, now=NOW)
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert len(items) == 1
    assert "203.0.113.7" not in str(items)
    assert int(items[0]["expires_at"]["N"]) == int(NOW.timestamp()) + 1200
    assert int(items[0]["attempts"]["N"]) == 1


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ProvisionedThroughputExceededException", StoreUnavailable),
        ("ThrottlingException", StoreUnavailable),
        ("RequestLimitExceeded", StoreUnavailable),
        ("InternalServerError", StoreUnavailable),
        ("ResourceNotFoundException", StoreMisconfigured),
        ("AccessDeniedException", StoreMisconfigured),
    ],
)
def test_client_errors_become_domain_errors(moto_backend: Backend, code: str, error: type[Exception]):
    from botocore.stub import Stubber

    store = moto_backend.store
    with Stubber(store.client) as stub:  # type: ignore[attr-defined]
        stub.add_client_error("get_item", service_error_code=code, service_message="from DynamoDB")
        with pytest.raises(error) as raised:
            store.get("shp_1")
    assert raised.value.retryable is (error is StoreUnavailable)  # type: ignore[attr-defined]
    assert code in str(raised.value)


def test_a_missing_table_is_a_misconfiguration(dynamodb: Any):
    store = DynamoShipmentStore("parcelhub-typo", client=dynamodb)
    with pytest.raises(StoreMisconfigured, match="parcelhub-typo"):
        store.get("shp_1")


def test_an_unreachable_endpoint_is_retryable(aws_env: None):
    import socket

    import boto3
    from botocore.config import Config

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=0.5, read_timeout=0.5),
    )
    with pytest.raises(StoreUnavailable) as raised:
        DynamoShipmentStore(TABLE, client=client).get("shp_1")
    assert raised.value.code == "EndpointConnectionError"


def test_batch_writes_retry_unprocessed_items(moto_backend: Backend):
    # Given DynamoDB hands back part of a batch as unprocessed (throttled partition)
    store = moto_backend.store
    shipment_id = shipped(store)
    claim = store.find_by_tracking("ZTO", "78912345678901")
    assert claim is not None
    client = store.client  # type: ignore[attr-defined]
    real = client.batch_write_item
    first = [True]

    def throttled_once(**params: Any) -> dict[str, Any]:
        requests = params["RequestItems"][TABLE]
        if first[0]:
            first[0] = False
            real(RequestItems={TABLE: requests[:3]})
            return {"UnprocessedItems": {TABLE: requests[3:]}}
        result: dict[str, Any] = real(**params)
        return result

    client.batch_write_item = throttled_once
    try:
        assert len(store.append_events(claim, [a_trace(i) for i in range(10)])) == 10
    finally:
        del client.batch_write_item
    # Then every event is stored
    assert len(store.list_events(shipment_id)) == 10


def test_the_template_table_serves_every_access_pattern():
    """template.yaml declares the table the adapter needs: keys, both sparse GSIs with the projected
    attributes the sweeps return, TTL on ``expires_at``, on-demand billing."""
    from sandbox.local.template import load_template

    template = load_template(Path(__file__).resolve().parents[3] / "template.yaml")
    props = template["Resources"]["ParcelhubTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {gsi["IndexName"]: gsi for gsi in props["GlobalSecondaryIndexes"]}
    for name, keys, attributes in (
        (ser.STALL_INDEX, ["stall_pk", "stall_sk"], ser.STALL_INDEX_ATTRIBUTES),
        (ser.POLL_INDEX, ["poll_pk", "poll_sk"], ser.POLL_INDEX_ATTRIBUTES),
    ):
        assert [k["AttributeName"] for k in indexes[name]["KeySchema"]] == keys
        projection = indexes[name]["Projection"]
        if projection["ProjectionType"] == "INCLUDE":
            missing = set(attributes) - set(projection["NonKeyAttributes"])
            assert not missing, f"GSI {name} must project {sorted(missing)}"
        else:
            assert projection["ProjectionType"] == "ALL"
