"""Returns with door pickup: the use case over the in-memory store and a recording provider, and the
events the outbox derives from what the store committed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from parcelhub.app.outbox import derive
from parcelhub.app.returns import (
    NotReturnable,
    ReturnInvalid,
    ReturnNotCancellable,
    ReturnPorts,
    ReturnService,
    return_view,
)
from parcelhub.carriers.base import Capability, CarrierRejected, PickupOrder, TrackingSubscription
from parcelhub.config import HubConfig
from parcelhub.domain.models import (
    Carrier,
    Item,
    Money,
    Parcel,
    Party,
    PickupBooking,
    Provider,
    ReturnRequest,
    Shipment,
    ShipmentKind,
    TrackingEvent,
    Waybill,
)
from parcelhub.domain.returns import PickupWindow, ReturnReason, ReturnState
from parcelhub.domain.status import Status, SubStatus, state_of
from parcelhub.events import Event, ReturnCancelled, ReturnCreated, ReturnPickedUp, ReturnReceived
from parcelhub.ports.errors import ShipmentNotFound
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
RECEIVER = Party(
    name="李四", phone="18688806057", province="广东省", city="广州市", district="白云区", address="某路1号"
)
WINDOW = PickupWindow(start=NOW + timedelta(days=1), end=NOW + timedelta(days=1, hours=3))


class SealingCipher:
    """A PartyCipher that binds each envelope to its shipment (opening it for another fails)."""

    def encrypt_party(self, party: Party, shipment_id: str) -> str:
        return json.dumps({"for": shipment_id, "party": party.model_dump(mode="json")}, ensure_ascii=False)

    def decrypt_party(self, envelope: str, shipment_id: str) -> Party:
        sealed = json.loads(envelope)
        if sealed["for"] != shipment_id:
            raise ValueError("envelope sealed for another shipment")
        return Party(**sealed["party"])


@dataclass
class PickupProvider:
    """A provider that books pickups and records what it was asked."""

    name: Provider = Provider.KDNIAO
    capabilities: frozenset[Capability] = frozenset({Capability.BOOK_PICKUP, Capability.PUSH_TRACKING})
    refuse: bool = False
    refuse_cancel: bool = False
    booked: list[PickupOrder] = field(default_factory=list)
    cancelled: list[PickupBooking] = field(default_factory=list)
    subscribed: list[TrackingSubscription] = field(default_factory=list)

    def book_pickup(self, order: PickupOrder) -> PickupBooking:
        if self.refuse:
            raise CarrierRejected(self.name.value, "超出收派范围", "105")
        self.booked.append(order)
        return PickupBooking(
            provider=self.name,
            carrier=order.carrier,
            pickup_order_id=order.return_id,
            tracking_number=f"7310000{len(self.booked):07d}",
            window=order.window,
            booked_at=NOW,
        )

    def cancel_pickup(self, booking: PickupBooking) -> None:
        if self.refuse_cancel:
            raise CarrierRejected(self.name.value, "快递员已揽件，不能取消", "105")
        self.cancelled.append(booking)

    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        self.subscribed.append(subscription)


def delivered_shipment(store: InMemoryShipmentStore, cipher: SealingCipher, status: Status = Status.DELIVERED) -> str:
    shipment_id = "shp-0001"
    store.create(
        Shipment(
            shipment_id=shipment_id,
            order_id="ORD-0001",
            declared_value=Money(amount=Decimal("199.00")),
            parcels=[Parcel(weight_kg=1.2)],
            items=[Item(name="护肤品", quantity=2), Item(name="面膜", quantity=1)],
            receiver_masked={"name": "李*"},
            origin_province="浙江省",
            origin_city="杭州市",
            destination_province="广东省",
            destination_city="广州市",
            pii={"receiver": cipher.encrypt_party(RECEIVER, shipment_id)},
            created_at=NOW - timedelta(days=5),
            updated_at=NOW - timedelta(days=5),
        )
    )
    waybill = Waybill(provider=Provider.KDNIAO, carrier=Carrier.ZTO, tracking_number="73100000000001")
    store.save_waybill(shipment_id, waybill, [], NOW - timedelta(days=5))
    if status is not Status.WAYBILL_CREATED:
        track(store, shipment_id, "73100000000001", status, hours=-48)
    return shipment_id


def track(  # noqa: PLR0917 - a scan as tests say it: where, which number, what, when
    store: InMemoryShipmentStore,
    shipment_id: str,
    number: str,
    status: Status,
    hours: int,
    sub: SubStatus = SubStatus.NONE,
) -> None:
    event = TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number=number,
        occurred_at=NOW + timedelta(hours=hours),
        status=status,
        sub_status=sub,
        raw_code=status.value,
        raw_text=f"{status.value} scan",
    )
    store.apply_tracking_state(
        shipment_id, state_of(event), last_event_text="scan", stall=None, now=NOW, provider="kdniao"
    )


@dataclass
class World:
    store: InMemoryShipmentStore
    cipher: SealingCipher
    provider: PickupProvider
    service: ReturnService
    original: str

    def events(self) -> list[Event]:
        return [e for change in self.store.changes for e in derive(change, HubConfig())]


@pytest.fixture
def world() -> World:
    store, cipher, provider = InMemoryShipmentStore(), SealingCipher(), PickupProvider()
    original = delivered_shipment(store, cipher)
    service = ReturnService(
        ReturnPorts(
            shipments=store,
            returns=store,
            tracking=store,
            polls=store,
            cipher=cipher,
            plugin=lambda name: provider,
            subscriber=lambda name: provider,
            callback_url=lambda name: f"https://hooks.example/v1/webhooks/{name.value}",
            config=HubConfig,
        )
    )
    return World(store, cipher, provider, service, original)


def request(**overrides: Any) -> ReturnRequest:
    values: dict[str, Any] = {
        "items": [Item(name="护肤品", quantity=1)],
        "reason": ReturnReason.DAMAGED,
        "pickup_window": WINDOW,
    }
    return ReturnRequest(**(values | overrides))


def test_given_a_delivered_shipment_when_a_return_is_asked_then_it_is_stored_linked_booked_and_tracked(
    world: World,
) -> None:
    # When
    created = world.service.create(world.original, request(), now=NOW)
    # Then the return is a shipment of kind RETURN linked both ways
    assert created.kind is ShipmentKind.RETURN
    assert (created.return_of, created.return_state) == (world.original, ReturnState.PICKUP_BOOKED)
    assert world.store.get(world.original).returns == [created.shipment_id]
    # And the courier collects at the original receiver's address (decrypted server-side) for the warehouse
    (order,) = world.provider.booked
    assert order.pickup == RECEIVER
    assert order.receiver == HubConfig().warehouse
    assert order.carrier is Carrier.ZTO
    assert order.window == WINDOW
    # And the pickup address is stored sealed for the return and masked
    assert world.cipher.decrypt_party(created.pii["sender"], created.shipment_id) == RECEIVER
    assert created.sender_masked is not None
    assert created.sender_masked["phone"] != RECEIVER.phone
    # And its waybill number is claimed and subscribed (the same pipeline as any parcel)
    assert created.pickup is not None
    assert created.tracking_number == created.pickup.tracking_number
    assert created.status is Status.WAYBILL_CREATED
    claim = world.store.find_by_tracking("ZTO", str(created.tracking_number))
    assert claim is not None
    assert claim.shipment_id == created.shipment_id
    assert [s.tracking_number for s in world.provider.subscribed] == [created.tracking_number]


def test_given_a_pickup_address_when_given_then_the_courier_goes_there(world: World) -> None:
    elsewhere = RECEIVER.model_copy(update={"address": "另一条路2号"})
    world.service.create(world.original, request(pickup_address=elsewhere), now=NOW)
    assert world.provider.booked[0].pickup == elsewhere


def test_given_a_shipment_in_transit_when_a_return_is_asked_then_not_returnable() -> None:
    store, cipher = InMemoryShipmentStore(), SealingCipher()
    original = delivered_shipment(store, cipher, Status.IN_TRANSIT)
    service = ReturnService(
        ReturnPorts(
            store,
            store,
            store,
            store,
            cipher,
            lambda n: PickupProvider(),
            lambda n: PickupProvider(),
            lambda n: "https://hooks.example",
            HubConfig,
        )
    )
    with pytest.raises(NotReturnable):
        service.create(original, request(), now=NOW)
    with pytest.raises(ShipmentNotFound):
        service.create("shp-nope", request(), now=NOW)


def test_given_items_not_shipped_or_a_past_window_then_field_errors(world: World) -> None:
    past = PickupWindow(start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1))
    with pytest.raises(ReturnInvalid) as invalid:
        world.service.create(
            world.original, request(items=[Item(name="护肤品", quantity=3)], pickup_window=past), now=NOW
        )
    assert [name for name, _ in invalid.value.errors] == ["items", "pickup_window"]
    assert world.store.get(world.original).returns == []


def test_given_the_provider_refuses_when_booking_then_the_return_is_pickup_failed(world: World) -> None:
    world.provider.refuse = True
    created = world.service.create(world.original, request(), now=NOW)
    assert created.return_state is ReturnState.PICKUP_FAILED
    assert created.tracking_number is None


def test_given_a_booked_pickup_when_cancelled_then_the_provider_cancels_and_it_stops(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    # When
    cancelled = world.service.cancel(created.shipment_id, now=NOW)
    # Then
    assert [b.pickup_order_id for b in world.provider.cancelled] == [created.shipment_id]
    assert (cancelled.return_state, cancelled.status) == (ReturnState.CANCELLED, Status.CANCELLED)
    assert cancelled.pickup is not None
    assert cancelled.pickup.cancelled_at == NOW
    # And a late courier scan does not revive it
    track(world.store, created.shipment_id, str(created.tracking_number), Status.PICKED_UP, hours=30)
    view = return_view(world.store.get(created.shipment_id))
    assert view is not None
    assert view.state is ReturnState.CANCELLED
    # And cancelling again is a no-op
    assert world.service.cancel(created.shipment_id, now=NOW).return_state is ReturnState.CANCELLED
    assert len(world.provider.cancelled) == 1
    types = [type(e) for e in world.events() if isinstance(e, ReturnCreated | ReturnCancelled | ReturnPickedUp)]
    assert types == [ReturnCreated, ReturnCancelled]


def test_given_a_collected_return_when_cancelled_then_refused_without_asking_the_provider(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    track(world.store, created.shipment_id, str(created.tracking_number), Status.PICKED_UP, hours=25)
    with pytest.raises(ReturnNotCancellable) as refused:
        world.service.cancel(created.shipment_id, now=NOW)
    assert refused.value.state is ReturnState.PICKED_UP
    assert world.provider.cancelled == []


def test_given_the_provider_says_collected_when_cancelled_then_refused(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    world.provider.refuse_cancel = True
    with pytest.raises(ReturnNotCancellable) as refused:
        world.service.cancel(created.shipment_id, now=NOW)
    assert refused.value.provider_code == "105"
    assert world.store.get(created.shipment_id).return_state is ReturnState.PICKUP_BOOKED


def test_given_a_return_tracked_to_the_warehouse_then_created_picked_up_received_once_each(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    number = str(created.tracking_number)
    # When the parcel is tracked: courier assigned, collected, moving, an older scan late, delivered
    track(world.store, created.shipment_id, number, Status.WAYBILL_CREATED, 20, SubStatus.AWAITING_PICKUP)
    assert return_view(world.store.get(created.shipment_id)).state is ReturnState.COURIER_ASSIGNED  # type: ignore[union-attr]
    track(world.store, created.shipment_id, number, Status.PICKED_UP, 25)
    track(world.store, created.shipment_id, number, Status.IN_TRANSIT, 30)
    track(world.store, created.shipment_id, number, Status.PICKED_UP, 24)  # older: the fold keeps IN_TRANSIT
    track(world.store, created.shipment_id, number, Status.DELIVERED, 50, SubStatus.SIGNED_BY_RECIPIENT)
    # Then
    returns = [e for e in world.events() if e.detail_type().startswith("Return")]
    assert [type(e) for e in returns] == [ReturnCreated, ReturnPickedUp, ReturnReceived]
    created_event, picked, received = returns
    assert isinstance(created_event, ReturnCreated)
    assert (created_event.original_shipment_id, created_event.reason) == (world.original, ReturnReason.DAMAGED)
    assert isinstance(picked, ReturnPickedUp)
    assert picked.picked_up_at == NOW + timedelta(hours=25)
    assert isinstance(received, ReturnReceived)
    assert received.received_at == NOW + timedelta(hours=50)
    # And no personal data travels
    assert all("18688806057" not in e.detail_json() and "李四" not in e.detail_json() for e in returns)


def test_given_a_forward_parcel_refused_then_a_linked_return_is_announced_once(world: World) -> None:
    store = world.store
    store.create(
        world.store.get(world.original).model_copy(
            update={
                "shipment_id": "shp-0002",
                "order_id": "ORD-0002",
                "status": Status.PENDING,
                "status_key": None,
                "waybill": None,
            }
        )
    )
    waybill = Waybill(provider=Provider.KDNIAO, carrier=Carrier.ZTO, tracking_number="73100000000002")
    store.save_waybill("shp-0002", waybill, [], NOW)
    track(store, "shp-0002", "73100000000002", Status.OUT_FOR_DELIVERY, 1)
    track(store, "shp-0002", "73100000000002", Status.RETURNING, 3, SubStatus.REFUSED)
    track(store, "shp-0002", "73100000000002", Status.RETURNING, 9)
    view = return_view(store.get("shp-0002"))
    assert view is not None
    assert (view.state, view.linked_from_tracking) == (ReturnState.IN_TRANSIT, True)
    track(store, "shp-0002", "73100000000002", Status.RETURNED, 40)
    returns = [e for e in world.events() if e.detail_type().startswith("Return") and e.shipment_id == "shp-0002"]
    assert [type(e) for e in returns] == [ReturnCreated, ReturnReceived]
    first = returns[0]
    assert isinstance(first, ReturnCreated)
    assert (first.reason, first.return_state) == (ReturnReason.REFUSED, ReturnState.IN_TRANSIT)
    assert first.linked_from_tracking
