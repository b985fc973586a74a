"""The stall sweep (parcelhub.app.stalls) over the in-memory store: each claim is committed per parcel and
is itself the alert (the outbox relay derives ``ShipmentStalled`` from it), so a sweep that dies or runs
out of time loses nothing and never alerts an episode twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from parcelhub.app.stalls import StallSweeper
from parcelhub.config import HubConfig
from parcelhub.domain.models import Carrier, Item, Money, Parcel, Provider, Shipment, Waybill
from parcelhub.domain.policy import StallRules
from parcelhub.events import ShipmentStalled
from parcelhub.ports.store import StallMark
from tests.fakes.relay import Announced
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 2, 2, 0, tzinfo=UTC)


def stalled_fleet(store: InMemoryShipmentStore, count: int) -> list[str]:
    ids = []
    for n in range(count):
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
                created_at=NOW - timedelta(days=3),
                updated_at=NOW - timedelta(days=3),
            )
        )
        waybill = Waybill(provider=Provider.KDNIAO, carrier=Carrier.ZTO, tracking_number=f"7310000000{n:04d}")
        store.save_waybill(shipment_id, waybill, [], NOW - timedelta(days=3))
        store.set_stall(shipment_id, StallMark(NOW - timedelta(hours=1), "no_pickup", f"no_pickup:ep-{n}"))
        ids.append(shipment_id)
    return ids


class DiesAfter(InMemoryShipmentStore):
    """A store whose invocation is killed after ``claims`` alert claims were committed."""

    def __init__(self, claims: int) -> None:
        super().__init__()
        self.left = claims

    def mark_stall_alerted(self, shipment_id: str, episode: str, now: datetime) -> bool:
        if self.left == 0:
            raise TimeoutError("the invocation was killed")
        self.left -= 1
        return super().mark_stall_alerted(shipment_id, episode, now)


def sweeper(store: InMemoryShipmentStore) -> StallSweeper:
    return StallSweeper(stalls=store, rules=StallRules())


def test_each_claim_is_announced_once_and_repeated_sweeps_add_nothing() -> None:
    store = InMemoryShipmentStore()
    ids = stalled_fleet(store, 5)
    announced = Announced(store, HubConfig())
    # When three sweeps run
    reports = [sweeper(store).sweep(NOW) for _ in range(3)]
    # Then every stalled parcel is announced once, with its alert, and the later sweeps claimed nothing
    stalled = announced.of_type(ShipmentStalled)
    assert sorted(e.shipment_id for e in stalled) == ids
    assert all(e.alert.message for e in stalled)
    assert [r.alerted for r in reports] == [5, 0, 0]


def test_a_sweep_that_dies_midway_loses_no_claimed_alert_and_the_next_sweep_does_the_rest() -> None:
    store = DiesAfter(claims=3)
    ids = stalled_fleet(store, 8)
    announced = Announced(store, HubConfig())
    # When a sweep is killed after committing 3 claims
    with pytest.raises(TimeoutError):
        sweeper(store).sweep(NOW)
    # Then those 3 are announced already
    assert len(announced.of_type(ShipmentStalled)) == 3
    # And the next sweep alerts the other 5, none twice
    store.left = 100
    assert sweeper(store).sweep(NOW).alerted == 5
    assert sorted(e.shipment_id for e in announced.of_type(ShipmentStalled)) == ids


def test_a_sweep_stops_on_its_time_budget_and_leaves_the_rest_due() -> None:
    store = InMemoryShipmentStore()
    stalled_fleet(store, 6)
    budget = iter([30.0, 30.0, 4.0])
    first = sweeper(store).sweep(NOW, time_left=lambda: next(budget, 1.0))
    assert first.out_of_time
    assert first.alerted == 2
    second = sweeper(store).sweep(NOW, time_left=lambda: 30.0)
    assert (second.alerted, second.out_of_time) == (4, False)
