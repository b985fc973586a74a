"""The ReturnRecords contract: a return linked to its original in one transaction and its flow's
conditional moves, against the in-memory fake and the DynamoDB adapter on moto; and the events the
outbox derives from the committed changes (the fake's log, or the table's stream decoded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from parcelhub.app.outbox import derive
from parcelhub.config import HubConfig
from parcelhub.domain.models import Carrier, PickupBooking, Provider, ShipmentKind
from parcelhub.domain.returns import PickupWindow, ReturnReason, ReturnState
from parcelhub.domain.status import Status
from parcelhub.events import ReturnCancelled, ReturnCreated
from parcelhub.ports.errors import ShipmentAlreadyExists, ShipmentNotFound
from parcelhub.ports.returns import ReturnStateConflict
from tests.integration.store.conftest import Backend
from tests.integration.store.test_store_contract import a_shipment

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 11, 8, 0, tzinfo=UTC)
WINDOW = PickupWindow(start=NOW + timedelta(days=1), end=NOW + timedelta(days=1, hours=3))


def a_return(original: str, n: int = 901) -> Any:
    return a_shipment(n).model_copy(
        update={
            "shipment_id": f"ret_01JCZ{n:011d}",
            "kind": ShipmentKind.RETURN,
            "return_of": original,
            "return_state": ReturnState.REQUESTED,
            "return_reason": ReturnReason.SIZE_OR_FIT,
        }
    )


def booking(return_id: str) -> PickupBooking:
    return PickupBooking(
        provider=Provider.KDNIAO,
        carrier=Carrier.ZTO,
        pickup_order_id=return_id,
        booking_id="KDN2611111000001",
        tracking_number="73100000009901",
        window=WINDOW,
        booked_at=NOW,
    )


def test_given_an_original_when_a_return_is_created_then_both_are_linked(backend: Backend) -> None:
    store: Any = backend.store
    original = a_shipment(1)
    store.create(original)
    # When
    ret = a_return(original.shipment_id)
    store.create_return(ret)
    # Then
    assert store.get(original.shipment_id).returns == [ret.shipment_id]
    stored = store.get(ret.shipment_id)
    assert (stored.kind, stored.return_of, stored.return_state) == (
        ShipmentKind.RETURN,
        original.shipment_id,
        ReturnState.REQUESTED,
    )
    # And a second return is appended, the same one again refused
    second = a_return(original.shipment_id, 902)
    store.create_return(second)
    assert store.get(original.shipment_id).returns == [ret.shipment_id, second.shipment_id]
    with pytest.raises(ShipmentAlreadyExists):
        store.create_return(ret)
    assert store.get(original.shipment_id).returns == [ret.shipment_id, second.shipment_id]


def test_given_no_original_when_a_return_is_created_then_not_found_and_nothing_stored(backend: Backend) -> None:
    store: Any = backend.store
    ret = a_return("shp_missing")
    with pytest.raises(ShipmentNotFound):
        store.create_return(ret)
    with pytest.raises(ShipmentNotFound):
        store.get(ret.shipment_id)


def test_given_a_return_when_booked_and_cancelled_then_conditional_moves_and_events(backend: Backend) -> None:
    store: Any = backend.store
    original = a_shipment(1)
    store.create(original)
    ret = a_return(original.shipment_id)
    store.create_return(ret)
    # When the pickup is booked
    booked = store.update_return(
        ret.shipment_id,
        ReturnState.PICKUP_BOOKED,
        expected=frozenset({ReturnState.REQUESTED}),
        now=NOW,
        pickup=booking(ret.shipment_id),
    )
    # Then it is tracked by its waybill number
    assert (booked.return_state, booked.status) == (ReturnState.PICKUP_BOOKED, Status.WAYBILL_CREATED)
    assert (booked.carrier, booked.provider, booked.tracking_number) == (Carrier.ZTO, Provider.KDNIAO, "73100000009901")
    assert booked.pickup == booking(ret.shipment_id)
    # And a move from a state it is not in is refused with the current state
    with pytest.raises(ReturnStateConflict) as conflict:
        store.update_return(
            ret.shipment_id, ReturnState.PICKUP_BOOKED, expected=frozenset({ReturnState.REQUESTED}), now=NOW
        )
    assert conflict.value.current is ReturnState.PICKUP_BOOKED
    # When cancelled
    cancelled_pickup = booking(ret.shipment_id).model_copy(update={"cancelled_at": NOW})
    cancelled = store.update_return(
        ret.shipment_id,
        ReturnState.CANCELLED,
        expected=frozenset({ReturnState.PICKUP_BOOKED}),
        now=NOW + timedelta(minutes=5),
        pickup=cancelled_pickup,
    )
    assert (cancelled.return_state, cancelled.status) == (ReturnState.CANCELLED, Status.CANCELLED)
    assert cancelled.status_key is not None
    # Then the committed changes announce the return's creation and its cancellation, once each
    events = [e for change in backend.changes() for e in derive(change, HubConfig())]
    kinds = [type(e) for e in events if isinstance(e, ReturnCreated | ReturnCancelled)]
    assert kinds == [ReturnCreated, ReturnCancelled]
    with pytest.raises(ShipmentNotFound):
        store.update_return("ret_missing", ReturnState.CANCELLED, expected=frozenset({ReturnState.REQUESTED}), now=NOW)
