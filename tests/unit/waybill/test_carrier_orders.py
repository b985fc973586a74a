"""Issue 13 at the use-case level (fake store, scripted providers): never two live carrier orders for a
shipment - an unclear outcome is settled by asking the provider before any failover, an order not kept
is cancelled (now or by the recovery sweep), a cancel racing a create wins, a recycled tracking number
moves to the new shipment, runs are named once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from parcelhub.app.recovery import RecoverySweeper
from parcelhub.app.waybill import WaybillDeps, WaybillService
from parcelhub.app.waybill_claims import ShipmentNotPending
from parcelhub.app.waybill_payloads import TaskError
from parcelhub.carriers.base import (
    Capability,
    CarrierDuplicateOrder,
    CarrierOrderNotFound,
    CarrierUnavailable,
    WaybillOrder,
)
from parcelhub.config import HubConfig
from parcelhub.domain.models import Carrier, Item, Money, Parcel, Party, Provider, Shipment, Waybill
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.domain.status import Status
from tests.fakes.events import InMemoryPublisher
from tests.fakes.relay import Announced
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)
SF = CarrierCandidate(provider=Provider.SF, carrier=Carrier.SF)
ZTO = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO)
PARTY = Party(
    name="张三", phone="13800000000", province="上海市", city="上海市", district="浦东新区", address="张江路1号"
)


@dataclass
class Provider_:
    """A provider that keeps an order book. ``lose_next``: the next create is made but its answer lost;
    ``down``: every call fails before reaching it; ``fetches``: whether it can be asked by order id."""

    name: Provider
    fetches: bool
    orders: dict[str, Waybill] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    creates: int = 0
    lose_next: bool = False
    down: bool = False

    @property
    def capabilities(self) -> frozenset[Capability]:
        base = {Capability.ISSUE_WAYBILLS, Capability.CANCEL_WAYBILLS}
        return frozenset(base | ({Capability.FETCH_WAYBILLS} if self.fetches else set()))

    def _reach(self) -> None:
        if self.down:
            raise CarrierUnavailable(self.name.value, "HTTP 503", "HTTP_503")

    def create_waybill(self, order: WaybillOrder) -> Waybill:
        self._reach()
        self.creates += 1
        if order.shipment_id in self.orders:
            if self.fetches:
                raise CarrierDuplicateOrder(self.name.value, "duplicate order", "8016")
            return self.orders[order.shipment_id]  # Kdniao: a repeated OrderCode answers with the order
        number = f"{order.carrier.value}{len(self.orders) + 1:012d}"
        self.orders[order.shipment_id] = Waybill(
            provider=self.name, carrier=order.carrier, tracking_number=number, provider_order_id=order.shipment_id
        )
        if self.lose_next:
            self.lose_next = False
            raise CarrierUnavailable(self.name.value, "read timeout", "TIMEOUT")
        return self.orders[order.shipment_id]

    def fetch_waybill(self, order_id: str) -> Waybill:
        self._reach()
        if order_id not in self.orders:
            raise CarrierOrderNotFound(self.name.value, "未获取到订单信息", "8018")
        return self.orders[order_id]

    def cancel_waybill(self, waybill: Waybill) -> None:
        self._reach()
        self.cancelled.add(waybill.tracking_number)

    def live(self, shipment_id: str) -> list[str]:
        return [w.tracking_number for oid, w in self.orders.items()
                if oid.split("-")[0] == shipment_id and w.tracking_number not in self.cancelled]  # fmt: skip


@dataclass
class World:
    store: InMemoryShipmentStore
    publisher: InMemoryPublisher
    sf: Provider_
    kdniao: Provider_
    service: WaybillService
    clock: list[datetime]

    def shipment(self, n: int = 1) -> str:
        shipment = Shipment(
            shipment_id=f"shp_{n:04d}",
            order_id=f"SO-{n:04d}",
            declared_value=Money(amount=Decimal("199.00")),
            parcels=[Parcel(weight_kg=1)],
            items=[Item(name="围巾", quantity=1)],
            receiver_masked={"name": "张*", "phone": "138****0000"},
            origin_province="浙江省",
            origin_city="杭州市",
            destination_province="上海市",
            destination_city="上海市",
            pii={"receiver": "sealed"},
            created_at=self.clock[0],
            updated_at=self.clock[0],
            recovery_due=self.clock[0] + timedelta(minutes=15),
        )
        self.store.create(shipment)
        return shipment.shipment_id

    def live(self, shipment_id: str) -> list[str]:
        return self.sf.live(shipment_id) + self.kdniao.live(shipment_id)

    def sweeper(self) -> RecoverySweeper:
        return RecoverySweeper(self.store, self.service, _NoWorkflow(), HubConfig, now=lambda: self.clock[0])


class _NoWorkflow:
    started: list[str] = []  # noqa: RUF012 - a test double

    def start(self, name: str, shipment_id: str) -> bool:
        self.started.append(name)
        return True


@pytest.fixture
def world() -> World:
    store, publisher = InMemoryShipmentStore(), InMemoryPublisher()
    sf, kdniao = Provider_(Provider.SF, fetches=True), Provider_(Provider.KDNIAO, fetches=False)
    clock = [NOW]
    service = WaybillService(
        WaybillDeps(
            store=store,
            publisher=publisher,
            decrypt_party=lambda envelope, shipment_id: PARTY,
            plugin=lambda provider: {Provider.SF: sf, Provider.KDNIAO: kdniao}[Provider(provider)],  # type: ignore[return-value]
            labels=None,
            config=HubConfig,
            callback_url=lambda provider: "https://hub.example/v1/webhooks",
            now=lambda: clock[0],
            epoch=lambda: clock[0].timestamp(),  # noqa: PLW0108 - the clock moves
            sleep=lambda seconds: None,
        )
    )
    return World(store, publisher, sf, kdniao, service, clock)


@pytest.mark.parametrize("provider", ["sf", "kdniao"])
def test_an_answer_lost_after_the_order_was_created_is_recovered_by_asking_the_provider(
    world: World, provider: str
) -> None:
    # Given the provider creates the order but its answer is lost
    shipment_id = world.shipment()
    candidate, fake = (SF, world.sf) if provider == "sf" else (ZTO, world.kdniao)
    fake.lose_next = True
    # When the create step runs
    result = world.service.create_waybill(shipment_id, candidate, "exec-1")
    world.service.record_waybill(shipment_id, result, "exec-1")
    # Then it asked (SF by order id, Kdniao by re-submitting the same order) and kept that one order
    assert world.live(shipment_id) == [result.tracking_number]
    assert len(fake.orders) == 1
    stored = world.store.get(shipment_id)
    assert stored.open_order is None
    assert [o.state for o in stored.carrier_orders.values()] == ["kept"]


def test_an_unreachable_provider_is_abandoned_on_failover_and_its_order_cancelled_by_the_sweep(world: World) -> None:
    # Given SF creates the order, the answer is lost, and SF then stops answering
    shipment_id = world.shipment()
    world.sf.lose_next = True
    original = world.sf.create_waybill

    def create_then_down(order: WaybillOrder) -> Waybill:
        try:
            return original(order)
        finally:
            world.sf.down = True

    world.sf.create_waybill = create_then_down  # type: ignore[method-assign]
    with pytest.raises(CarrierUnavailable):
        world.service.create_waybill(shipment_id, SF, "exec-1")
    # When the workflow moves on to the backup (after its retries)
    world.service.record_failure(shipment_id, SF, TaskError(Error="CarrierUnavailable", Cause="sf: HTTP 503"))
    result = world.service.create_waybill(shipment_id, ZTO, "exec-1")
    world.service.record_waybill(shipment_id, result, "exec-1")
    world.service.emit_waybill_created(shipment_id, None, "exec-1")
    # Then the SF order is abandoned (not kept) - two live orders only until SF can be reached
    stored = world.store.get(shipment_id)
    assert {o.provider: o.state for o in stored.carrier_orders.values()} == {
        Provider.SF: "abandoned",
        Provider.KDNIAO: "kept",
    }
    assert stored.recovery_due is not None  # the sweep comes back for it
    # When SF answers again and the recovery sweep runs
    world.sf.down = False
    world.clock[0] += timedelta(minutes=1)
    assert world.sweeper().sweep().outcomes == {"cleared": 1}
    # Then the SF order is cancelled, logged, and only the kept waybill is live
    assert world.live(shipment_id) == [result.tracking_number]
    stored = world.store.get(shipment_id)
    assert [a.outcome for a in stored.waybill_attempts][-1] == "cancelled"
    assert stored.recovery_due is None


def test_a_cancel_that_lands_while_the_provider_is_creating_wins(world: World) -> None:
    # Given the provider issued the waybill, and the OMS cancels before it is recorded
    shipment_id = world.shipment()
    result = world.service.create_waybill(shipment_id, ZTO, "exec-1")
    world.store.set_status(shipment_id, Status.CANCELLED, expected={Status.PENDING}, now=NOW)
    # When the workflow records it
    with pytest.raises(ShipmentNotPending):
        world.service.record_waybill(shipment_id, result, "exec-1")
    # Then the shipment stays CANCELLED with no waybill, and the order is cancelled with its provider
    stored = world.store.get(shipment_id)
    assert (stored.status, stored.waybill) == (Status.CANCELLED, None)
    assert world.live(shipment_id) == []
    assert stored.waybill_attempts[-1].outcome == "cancelled"


def test_a_cancel_that_fails_every_time_raises_one_ops_alert(world: World) -> None:
    from parcelhub.events import WaybillCancelFailed

    shipment_id = world.shipment()
    result = world.service.create_waybill(shipment_id, SF, "exec-1")
    world.store.set_status(shipment_id, Status.CANCELLED, expected={Status.PENDING}, now=NOW)
    world.sf.down = True
    with pytest.raises(ShipmentNotPending):
        world.service.record_waybill(shipment_id, result, "exec-1")
    sweeper = world.sweeper()
    for _ in range(HubConfig().recovery.max_cancel_attempts):
        world.clock[0] += timedelta(minutes=2)
        sweeper.sweep()
    # (the alert is announced by the stream relay from the committed cancel_failed write)
    alerts = Announced(world.store).of_type(WaybillCancelFailed)
    assert len(alerts) == 1
    assert world.publisher.of_type(WaybillCancelFailed) == []  # not published by the code path itself
    assert alerts[0].tracking_number == result.tracking_number
    assert "取消运单失败" in alerts[0].alert.message
    assert world.store.get(shipment_id).recovery_due is None  # nothing more to try: ops have it


def test_a_stranded_shipment_is_redriven_then_failed_with_an_alert(world: World) -> None:
    from parcelhub.events import WaybillFailed

    shipment_id = world.shipment()
    sweeper = world.sweeper()
    names = []
    for _ in range(HubConfig().recovery.max_redrives + 1):
        world.clock[0] += timedelta(minutes=20)
        sweeper.sweep()
        names.append(world.store.get(shipment_id).redrives)
    assert names == [1, 2, 2]
    assert world.store.get(shipment_id).status is Status.WAYBILL_FAILED
    assert len(world.publisher.of_type(WaybillFailed)) == 1


def test_a_recycled_tracking_number_moves_to_the_new_shipment(world: World) -> None:
    # Given a delivered shipment holds a number the carrier issues again months later
    old, new = world.shipment(1), world.shipment(2)
    first = world.service.create_waybill(old, ZTO, "exec-1")
    world.service.record_waybill(old, first, "exec-1")
    world.store.set_status(old, Status.DELIVERED, expected=None, now=NOW)
    world.kdniao.orders.clear()  # the carrier reuses its numbers
    second = world.service.create_waybill(new, ZTO, "exec-2")
    assert second.tracking_number == first.tracking_number
    # When the new shipment records it
    world.service.record_waybill(new, second, "exec-2")
    # Then pushes for that number now go to the new shipment; the old one keeps its own waybill and status
    claim = world.store.find_by_tracking("ZTO", first.tracking_number)
    assert claim is not None
    assert claim.shipment_id == new
    assert world.store.get(old).status is Status.DELIVERED
    assert world.store.get(old).tracking_number == first.tracking_number


def test_runs_are_counted_so_execution_names_never_collide(world: World) -> None:
    shipment_id = world.shipment()
    world.store.set_status(shipment_id, Status.WAYBILL_FAILED, expected=None, now=NOW)
    names: list[str] = []
    for _ in range(3):
        _, name = world.store.begin_run(
            shipment_id, "retry", expected={Status.WAYBILL_FAILED}, recovery_due=NOW, now=NOW
        )
        names.append(name)
        world.store.set_status(shipment_id, Status.WAYBILL_FAILED, expected=None, now=NOW)
    assert names == [f"{shipment_id}-r1", f"{shipment_id}-r2", f"{shipment_id}-r3"]
