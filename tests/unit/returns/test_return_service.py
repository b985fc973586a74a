"""Returns with door pickup: the API's use case (validate, store, queue: no personal data opened) and the
waybill workflow's steps that book and track it, over the in-memory store and a recording provider; and
the events the outbox derives from what the store committed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.app.outbox import derive
from parcelhub.app.returns import (
    NotReturnable,
    ReturnInvalid,
    ReturnNotCancellable,
    ReturnPorts,
    ReturnService,
    return_view,
)
from parcelhub.app.waybill import WaybillDeps, WaybillService
from parcelhub.app.waybill_claims import ShipmentNotPending
from parcelhub.app.waybill_payloads import TaskError, WaybillResult
from parcelhub.carriers.base import (
    Capability,
    CarrierDuplicateOrder,
    CarrierRejected,
    CarrierUnavailable,
    PickupOrder,
    TrackingSubscription,
)
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
from parcelhub.events import Event, ReturnCancelled, ReturnCreated, ReturnPickedUp, ReturnReceived, WaybillFailed
from parcelhub.ports.errors import ShipmentNotFound
from tests.fakes.events import InMemoryPublisher
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
RECEIVER = Party(
    name="李四", phone="18688806057", province="广东省", city="广州市", district="白云区", address="某路1号"
)
WINDOW = PickupWindow(start=NOW + timedelta(days=1), end=NOW + timedelta(days=1, hours=3))


@dataclass
class SealingCipher:
    """A PartyCipher that binds each envelope to its shipment (opening it for another fails) and records
    for which shipments envelopes were opened."""

    opened: list[str] = field(default_factory=list)

    def encrypt_party(self, party: Party, shipment_id: str) -> str:
        return json.dumps({"for": shipment_id, "party": party.model_dump(mode="json")}, ensure_ascii=False)

    def decrypt_party(self, envelope: str, shipment_id: str) -> Party:
        sealed = json.loads(envelope)
        if sealed["for"] != shipment_id:
            raise ValueError("envelope sealed for another shipment")
        self.opened.append(shipment_id)
        return Party(**sealed["party"])


@dataclass
class PickupProvider:
    """A provider that books pickups and records what it was asked."""

    name: Provider = Provider.KDNIAO
    capabilities: frozenset[Capability] = frozenset({Capability.BOOK_PICKUP, Capability.PUSH_TRACKING})
    refuse: bool = False
    down: int = 0  # the next calls that fail with CarrierUnavailable
    refuse_cancel: bool = False
    with_number: bool = True
    #: the provider already holds every order asked for again (its answer to the first was lost)
    holds: set[str] = field(default_factory=set)
    #: runs while the provider books (a cancel racing the booking)
    during_booking: Any = None
    booked: list[PickupOrder] = field(default_factory=list)
    cancelled: list[PickupBooking] = field(default_factory=list)
    subscribed: list[TrackingSubscription] = field(default_factory=list)

    def book_pickup(self, order: PickupOrder) -> PickupBooking:
        if self.down:
            self.down -= 1
            raise CarrierUnavailable(self.name.value, "503 Service Unavailable")
        if self.refuse:
            raise CarrierRejected(self.name.value, "超出收派范围", "105")
        if self.during_booking is not None:
            self.during_booking()
        if order.return_id in self.holds:
            raise CarrierDuplicateOrder(self.name.value, "订单已存在，请勿重复提交", "106")
        self.booked.append(order)
        return PickupBooking(
            provider=self.name,
            carrier=order.carrier,
            pickup_order_id=order.return_id,
            tracking_number=f"7310000{len(self.booked):07d}" if self.with_number else None,
            window=order.window,
            booked_at=NOW,
        )

    def cancel_pickup(self, booking: PickupBooking) -> None:
        if self.refuse_cancel:
            raise CarrierRejected(self.name.value, "快递员已揽件，不能取消", "105")
        self.cancelled.append(booking)

    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        self.subscribed.append(subscription)


@dataclass
class Queue:
    bodies: list[str] = field(default_factory=list)

    def send(self, bodies: Sequence[str]) -> None:
        self.bodies += bodies


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
    event = scan(number, status, hours, sub)
    store.apply_tracking_state(
        shipment_id, state_of(event), last_event_text="scan", stall=None, now=NOW, provider="kdniao"
    )


def scan(number: str, status: Status, hours: int, sub: SubStatus = SubStatus.NONE) -> TrackingEvent:
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number=number,
        occurred_at=NOW + timedelta(hours=hours),
        status=status,
        sub_status=sub,
        raw_code=status.value,
        raw_text=f"{status.value} scan",
    )


@dataclass
class World:
    store: InMemoryShipmentStore
    cipher: SealingCipher
    provider: PickupProvider
    service: ReturnService
    waybills: WaybillService
    publisher: InMemoryPublisher
    queue: Queue
    original: str

    def events(self) -> list[Event]:
        return [e for change in self.store.changes for e in derive(change, HubConfig())]

    def run(self, return_id: str) -> WaybillResult:
        """One run of the waybill workflow's return branch (SelectCarriers -> HaveCandidate ->
        RegisterTracking -> RecordWaybill -> SubscribeTracking -> EmitWaybillCreated)."""
        plan = self.waybills.select_carriers(return_id)
        assert plan.tracking_only
        result = self.waybills.register_tracking(return_id)
        self.waybills.record_waybill(return_id, result, "run-1")
        self.waybills.subscribe_tracking(return_id, result)
        self.waybills.emit_waybill_created(return_id, plan, "run-1")
        return result

    def booked(self, **overrides: Any) -> Shipment:
        """A return asked through the API and booked by one workflow run."""
        created = self.service.create(self.original, request(**overrides), now=NOW)
        self.run(created.shipment_id)
        return self.store.get(created.shipment_id)


def service_over(
    store: InMemoryShipmentStore, cipher: SealingCipher, provider: PickupProvider, queue: Queue
) -> ReturnService:
    return ReturnService(
        ReturnPorts(
            shipments=store,
            returns=store,
            recovery=store,
            cipher=cipher,
            plugin=lambda name: provider,  # type: ignore[arg-type,return-value]
            config=HubConfig,
            waybill_requests=lambda: queue,
        )
    )


def make_world() -> World:
    store, cipher, provider, queue, publisher = (
        InMemoryShipmentStore(), SealingCipher(), PickupProvider(), Queue(), InMemoryPublisher()
    )  # fmt: skip
    original = delivered_shipment(store, cipher)
    service = service_over(store, cipher, provider, queue)
    waybills = WaybillService(
        WaybillDeps(
            store=store,
            publisher=publisher,
            decrypt_party=cipher.decrypt_party,
            plugin=lambda name: provider,  # type: ignore[arg-type,return-value]
            labels=None,
            config=HubConfig,
            callback_url=lambda name: f"https://hooks.example/v1/webhooks/{name.value}",
            returns=lambda: service,
            now=lambda: NOW,
            epoch=NOW.timestamp,
            sleep=lambda seconds: None,
        )
    )
    return World(store, cipher, provider, service, waybills, publisher, queue, original)


@pytest.fixture
def world() -> World:
    return make_world()


def request(**overrides: Any) -> ReturnRequest:
    values: dict[str, Any] = {
        "items": [Item(name="护肤品", quantity=1)],
        "reason": ReturnReason.DAMAGED,
        "pickup_window": WINDOW,
    }
    return ReturnRequest(**(values | overrides))


def test_given_a_delivered_shipment_when_a_return_is_asked_then_it_is_stored_linked_and_queued_unopened(
    world: World,
) -> None:
    # When the API asks for a return
    created = world.service.create(world.original, request(), now=NOW)
    # Then the return is a PENDING shipment of kind RETURN, requested, linked both ways
    stored = world.store.get(created.shipment_id)
    assert (stored.kind, stored.status) == (ShipmentKind.RETURN, Status.PENDING)
    assert (stored.return_of, stored.return_state) == (world.original, ReturnState.REQUESTED)
    assert world.store.get(world.original).returns == [created.shipment_id]
    # And it is queued for the waybill workflow, with a recovery deadline so a lost run is re-driven
    assert [json.loads(b) for b in world.queue.bodies] == [{"shipment_id": created.shipment_id}]
    assert stored.recovery_due == NOW + timedelta(seconds=HubConfig().recovery.pending_limit_seconds)
    # And nothing was booked, and no personal data was opened (the API may not decrypt)
    assert (world.provider.booked, world.cipher.opened) == ([], [])
    # And the pickup side is the original receiver's masked copy and route, the other side the warehouse's
    original = world.store.get(world.original)
    assert stored.sender_masked == original.receiver_masked
    assert (stored.origin_province, stored.origin_city) == ("广东省", "广州市")
    assert (stored.destination_province, stored.destination_city) == ("浙江省", "杭州市")
    assert stored.pii == {}
    assert stored.pickup_window == WINDOW
    announced = [e for e in world.events() if isinstance(e, ReturnCreated)]
    assert [(e.shipment_id, e.pickup_window_start) for e in announced] == [(created.shipment_id, WINDOW.start)]


def test_given_a_queued_return_when_the_workflow_runs_then_the_pickup_is_booked_claimed_and_subscribed(
    world: World,
) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    # When the waybill workflow's run books it
    result = world.run(created.shipment_id)
    # Then the courier collects at the original receiver's address (opened with the original's id) for the warehouse
    (order,) = world.provider.booked
    assert order.pickup == RECEIVER
    assert order.receiver == HubConfig().warehouse
    assert (order.carrier, order.window, order.return_id) == (Carrier.ZTO, WINDOW, created.shipment_id)
    assert world.cipher.opened == [world.original]
    # And the return is pickup_booked, its waybill number recorded, claimed and subscribed like any parcel
    booked = world.store.get(created.shipment_id)
    assert booked.return_state is ReturnState.PICKUP_BOOKED
    assert booked.pickup is not None
    number = str(booked.pickup.tracking_number)
    assert result == WaybillResult(
        provider=Provider.KDNIAO, carrier=Carrier.ZTO, tracking_number=number, registered=True
    )
    assert (booked.status, booked.tracking_number) == (Status.WAYBILL_CREATED, booked.pickup.tracking_number)
    assert booked.waybill is not None
    claim = world.store.find_by_tracking("ZTO", str(booked.tracking_number))
    assert claim is not None
    assert claim.shipment_id == created.shipment_id
    assert [s.tracking_number for s in world.provider.subscribed] == [booked.tracking_number]
    # And the run settled it: out of the recovery index, and nothing announced but the return's own events
    assert (booked.recovery_due, booked.workflow_done) == (None, True)
    assert world.publisher.events == []


def test_given_a_pickup_address_when_given_then_it_is_sealed_for_the_return_and_the_courier_goes_there(
    world: World,
) -> None:
    elsewhere = RECEIVER.model_copy(update={"address": "另一条路2号", "city": "深圳市"})
    created = world.service.create(world.original, request(pickup_address=elsewhere), now=NOW)
    assert world.cipher.opened == []
    assert created.origin_city == "深圳市"
    assert created.sender_masked is not None
    assert created.sender_masked["phone"] != RECEIVER.phone
    world.run(created.shipment_id)
    assert world.provider.booked[0].pickup == elsewhere
    assert world.cipher.opened == [created.shipment_id]


@settings(max_examples=25, deadline=None)
@given(reruns=st.lists(st.sampled_from(["book", "run"]), min_size=1, max_size=6))
def test_given_a_booked_return_when_the_step_or_the_run_is_repeated_then_it_is_never_booked_twice(
    reruns: list[str],
) -> None:
    world_ = make_world()
    created = world_.service.create(world_.original, request(), now=NOW)
    first = world_.run(created.shipment_id)
    # When the booking step (a retried task) or the whole run (a duplicate start, a re-drive) runs again
    for again in reruns:
        answer = (
            world_.service.book(created.shipment_id, now=NOW) if again == "book" else world_.run(created.shipment_id)
        )
        # Then it answers the same booking
        assert answer == first
    # And the provider was asked once
    assert [o.return_id for o in world_.provider.booked] == [created.shipment_id]
    assert world_.store.get(created.shipment_id).return_state is ReturnState.PICKUP_BOOKED


def test_given_the_provider_down_on_the_first_run_then_a_later_run_books_it(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    world.provider.down = 1
    # When the first run's booking step finds the provider down, the return stays requested (retryable)
    with pytest.raises(CarrierUnavailable):
        world.waybills.register_tracking(created.shipment_id)
    assert world.store.get(created.shipment_id).return_state is ReturnState.REQUESTED
    # Then a later run (the state's retry, or the recovery sweep's re-drive) books it
    world.run(created.shipment_id)
    assert world.store.get(created.shipment_id).return_state is ReturnState.PICKUP_BOOKED
    assert len(world.provider.booked) == 1


def test_given_a_booking_whose_answer_was_lost_when_run_again_then_it_is_booked_not_failed(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    # Given the provider booked it but the run crashed before recording it (the provider holds the order)
    world.provider.holds.add(created.shipment_id)
    # When the re-driven run books it, the provider answers "duplicate order"
    with pytest.raises(ShipmentNotPending):
        world.waybills.register_tracking(created.shipment_id)
    # Then the return is pickup_booked (its number unknown: it waits for it), not pickup_failed, not re-driven
    found = world.store.get(created.shipment_id)
    assert (found.return_state, found.status, found.recovery_due) == (ReturnState.PICKUP_BOOKED, Status.PENDING, None)
    assert found.pickup is not None
    assert (found.pickup.pickup_order_id, found.pickup.tracking_number) == (created.shipment_id, None)
    # And it can still be cancelled with the provider (by our order code)
    world.service.cancel(created.shipment_id, now=NOW)
    assert [b.pickup_order_id for b in world.provider.cancelled] == [created.shipment_id]


def test_given_a_shipment_in_transit_when_a_return_is_asked_then_not_returnable() -> None:
    store, cipher = InMemoryShipmentStore(), SealingCipher()
    original = delivered_shipment(store, cipher, Status.IN_TRANSIT)
    service = service_over(store, cipher, PickupProvider(), Queue())
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
    assert world.queue.bodies == []


def test_given_the_provider_refuses_when_booking_then_pickup_failed_and_the_run_fails_with_an_alert(
    world: World,
) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    world.provider.refuse = True
    # When the booking step is refused, the refusal leaves the step (the run goes to MarkWaybillFailed)
    with pytest.raises(CarrierRejected):
        world.waybills.register_tracking(created.shipment_id)
    assert world.store.get(created.shipment_id).return_state is ReturnState.PICKUP_FAILED
    world.waybills.mark_failed(created.shipment_id, None, None, TaskError(Error="CarrierRejected", Cause="105"))
    # Then the return is pickup_failed, WAYBILL_FAILED with the ops alert, out of the recovery index
    failed = world.store.get(created.shipment_id)
    assert (failed.return_state, failed.status, failed.tracking_number) == (
        ReturnState.PICKUP_FAILED,
        Status.WAYBILL_FAILED,
        None,
    )
    assert [type(e) for e in world.publisher.events] == [WaybillFailed]
    assert failed.recovery_due is None


def test_given_the_provider_unreachable_after_retries_when_the_run_fails_then_pickup_failed(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    world.provider.down = 3
    for _ in range(3):
        with pytest.raises(CarrierUnavailable):
            world.waybills.register_tracking(created.shipment_id)
    world.waybills.mark_failed(created.shipment_id, None, None, TaskError(Error="CarrierUnavailable"))
    assert world.store.get(created.shipment_id).return_state is ReturnState.PICKUP_FAILED


def test_given_a_return_cancelled_before_its_run_then_nothing_is_booked(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    # When the API cancels it while it waits in the queue
    cancelled = world.service.cancel(created.shipment_id, now=NOW)
    assert (cancelled.return_state, cancelled.status) == (ReturnState.CANCELLED, Status.CANCELLED)
    # Then the run has nothing to do (NothingToDo), and the provider is never asked
    with pytest.raises(ShipmentNotPending):
        world.waybills.register_tracking(created.shipment_id)
    assert (world.provider.booked, world.provider.cancelled) == ([], [])


def test_given_a_cancel_while_the_provider_books_then_the_late_booking_is_cancelled_with_it(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    world.provider.during_booking = lambda: world.service.cancel(created.shipment_id, now=NOW)
    # When the cancel lands while the provider is booking
    with pytest.raises(ShipmentNotPending):
        world.waybills.register_tracking(created.shipment_id)
    # Then the cancel wins: the booking made meanwhile is cancelled with the provider and recorded so
    (order,) = world.provider.booked
    assert [b.pickup_order_id for b in world.provider.cancelled] == [order.return_id]
    final = world.store.get(created.shipment_id)
    assert (final.return_state, final.status) == (ReturnState.CANCELLED, Status.CANCELLED)
    assert final.pickup is not None
    assert final.pickup.cancelled_at == NOW
    assert final.waybill is None


def test_given_a_booking_without_a_waybill_number_then_booked_and_the_run_ends(world: World) -> None:
    created = world.service.create(world.original, request(), now=NOW)
    world.provider.with_number = False
    # When the provider books without a number, the run ends without recording a waybill
    with pytest.raises(ShipmentNotPending):
        world.waybills.register_tracking(created.shipment_id)
    # Then it is pickup_booked, waits for the provider's number, and is not re-driven
    waiting = world.store.get(created.shipment_id)
    assert (waiting.return_state, waiting.tracking_number, waiting.recovery_due) == (
        ReturnState.PICKUP_BOOKED,
        None,
        None,
    )
    # And a re-run books nothing more
    with pytest.raises(ShipmentNotPending):
        world.waybills.register_tracking(created.shipment_id)
    assert len(world.provider.booked) == 1


def test_given_a_booked_pickup_when_cancelled_then_the_provider_cancels_and_it_stops(world: World) -> None:
    created = world.booked()
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
    created = world.booked()
    track(world.store, created.shipment_id, str(created.tracking_number), Status.PICKED_UP, hours=25)
    with pytest.raises(ReturnNotCancellable) as refused:
        world.service.cancel(created.shipment_id, now=NOW)
    assert refused.value.state is ReturnState.PICKED_UP
    assert world.provider.cancelled == []


def test_given_the_provider_says_collected_when_cancelled_then_refused(world: World) -> None:
    created = world.booked()
    world.provider.refuse_cancel = True
    with pytest.raises(ReturnNotCancellable) as refused:
        world.service.cancel(created.shipment_id, now=NOW)
    assert refused.value.provider_code == "105"
    assert world.store.get(created.shipment_id).return_state is ReturnState.PICKUP_BOOKED


def test_given_a_return_tracked_to_the_warehouse_then_created_picked_up_received_once_each(world: World) -> None:
    created = world.booked()
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


def test_given_a_delivered_scan_stored_before_its_state_then_the_view_waits_for_the_state(world: World) -> None:
    # Given a collected return in transit, and its delivered scan stored but not yet folded into its state
    # (the fold writes a batch's scans first, then the state)
    created = world.booked()
    number = str(created.tracking_number)
    timeline = [scan(number, Status.PICKED_UP, 25), scan(number, Status.IN_TRANSIT, 30)]
    track(world.store, created.shipment_id, number, Status.PICKED_UP, 25)
    track(world.store, created.shipment_id, number, Status.IN_TRANSIT, 30)
    delivered = scan(number, Status.DELIVERED, 50, SubStatus.SIGNED_BY_RECIPIENT)
    # When it is read with that timeline
    view = return_view(world.store.get(created.shipment_id), [*timeline, delivered])
    # Then it is in transit, as its parcel's status says, not received yet
    assert view is not None
    assert view.state is ReturnState.IN_TRANSIT
    # And once the state takes the scan in, it is received
    track(world.store, created.shipment_id, number, Status.DELIVERED, 50, SubStatus.SIGNED_BY_RECIPIENT)
    view = return_view(world.store.get(created.shipment_id), [*timeline, delivered])
    assert view is not None
    assert view.state is ReturnState.RECEIVED


def test_given_a_collected_return_then_a_later_carrier_cancellation_does_not_fail_its_pickup(world: World) -> None:
    # Given a return collected by the courier, then closed by the carrier (the timeline has both)
    created = world.booked()
    number = str(created.tracking_number)
    timeline = [scan(number, Status.PICKED_UP, 25), scan(number, Status.CANCELLED, 30)]
    track(world.store, created.shipment_id, number, Status.PICKED_UP, 25)
    track(world.store, created.shipment_id, number, Status.CANCELLED, 30)
    # When it is read with its timeline
    view = return_view(world.store.get(created.shipment_id), timeline)
    # Then its pickup did not fail: the courier has it
    assert view is not None
    assert view.state is ReturnState.PICKED_UP


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
    returns = [
        e
        for e in world.events()
        if e.detail_type().startswith("Return") and getattr(e, "shipment_id", None) == "shp-0002"
    ]
    assert [type(e) for e in returns] == [ReturnCreated, ReturnReceived]
    first = returns[0]
    assert isinstance(first, ReturnCreated)
    assert (first.reason, first.return_state) == (ReturnReason.REFUSED, ReturnState.IN_TRANSIT)
    assert first.linked_from_tracking
