"""Delivery facts derived from a shipment and its timeline: what each journey gives, and the same fact for
any order and duplication of the same scans."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcelhub.app.facts import UNSPECIFIED, derive_fact, ended_now, ending
from parcelhub.domain.lanes import Lane, Outcome
from parcelhub.domain.models import (
    CHINA_TZ,
    Carrier,
    DeliveryWindow,
    Item,
    Money,
    Parcel,
    Provider,
    ServiceLevel,
    Shipment,
    TrackingEvent,
)
from parcelhub.domain.scan_time import TimeFlag
from parcelhub.domain.status import Status, SubStatus
from parcelhub.domain.tariff import Tariffs, price
from parcelhub.ports.changes import ShipmentImage

CREATED = datetime(2026, 11, 23, 10, 0, tzinfo=CHINA_TZ)
TARIFFS = Tariffs()


def shipment(status: Status, sub_status: SubStatus = SubStatus.NONE, **overrides: Any) -> Shipment:
    fields: dict[str, Any] = {
        "shipment_id": "shp_01",
        "order_id": "ORD-1",
        "status": status,
        "sub_status": sub_status,
        "service": ServiceLevel.STANDARD,
        "declared_value": Money(amount=Decimal("199.00")),
        "parcels": [Parcel(weight_kg=1.2)],
        "items": [Item(name="护肤品", quantity=1)],
        "receiver_masked": {"name": "李*"},
        "origin_province": "浙江省",
        "origin_city": "杭州市",
        "destination_province": "广东省",
        "destination_city": "广州市",
        "carrier": Carrier.ZTO,
        "provider": Provider.KDNIAO,
        "tracking_number": "73100000000001",
        "promised_delivery": DeliveryWindow(
            earliest=CREATED + timedelta(days=2),
            latest=CREATED + timedelta(days=3),
            most_likely=CREATED + timedelta(days=2, hours=8),
        ),
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(days=3),
    }
    return Shipment(**(fields | overrides))


def scan(hours: float, status: Status, sub: SubStatus = SubStatus.NONE, text: str = "") -> TrackingEvent:
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number="73100000000001",
        occurred_at=CREATED + timedelta(hours=hours),
        status=status,
        sub_status=sub,
        raw_code=status.value,
        raw_text=text or f"{status.value} at +{hours}h",
    )


PICKED = scan(6, Status.PICKED_UP)
HUB = scan(10, Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB)
ARRIVED = scan(30, Status.ARRIVED_AT_DESTINATION_CITY)
OUT = scan(38, Status.OUT_FOR_DELIVERY)
FAILED = scan(40, Status.DELIVERY_FAILED, SubStatus.RECIPIENT_UNREACHABLE)
OUT_AGAIN = scan(60, Status.OUT_FOR_DELIVERY, text="再次派件")
SIGNED = scan(62, Status.DELIVERED, SubStatus.SIGNED_BY_PROXY)
HELD = scan(20, Status.EXCEPTION, SubStatus.HELD)
LOST = scan(120, Status.EXCEPTION, SubStatus.LOST)
RETURNED = scan(150, Status.RETURNED)
CANCELLED = scan(12, Status.CANCELLED, SubStatus.INTERCEPTED)
DELIVERED_JOURNEY = [PICKED, HUB, HELD, ARRIVED, OUT, FAILED, OUT_AGAIN, SIGNED]


def at(hours: float) -> datetime:
    return CREATED + timedelta(hours=hours)


def test_a_delivered_parcel_gives_its_milestones_attempts_reasons_promise_and_tariff_cost() -> None:
    # Given a parcel delivered at the second attempt after a hold at a hub
    ended = shipment(Status.DELIVERED, SubStatus.SIGNED_BY_PROXY)
    # When its fact is derived
    fact = derive_fact(ended, DELIVERED_JOURNEY, TARIFFS)
    # Then every milestone is the first scan of its kind
    assert fact is not None
    assert fact.outcome is Outcome.DELIVERED
    assert (fact.carrier, fact.provider, fact.service) == ("ZTO", "kdniao", "standard")
    assert fact.lane == Lane("浙江省", "杭州市", "广东省", "广州市")
    assert (fact.picked_up_at, fact.arrived_at, fact.out_for_delivery_at) == (at(6), at(30), at(38))
    assert (fact.first_attempt_at, fact.delivered_at, fact.ended_at) == (at(40), at(62), at(62))
    assert fact.attempts == 2
    assert fact.exception_reasons == ("HELD", "RECIPIENT_UNREACHABLE")
    assert fact.promised_latest == CREATED + timedelta(days=3)
    assert fact.promised_most_likely == CREATED + timedelta(days=2, hours=8)
    # and the cost is the ZTO tariff's price for 1.2 kg from 浙江 to 广东 (not billed)
    tariff = TARIFFS.tariff("ZTO", "standard")
    assert tariff is not None
    expected = price(tariff, [Parcel(weight_kg=1.2)], origin_province="浙江省", destination_province="广东省")
    assert (fact.cost_fen, fact.cost_billed, fact.weight_kg) == (expected.total_fen, False, expected.chargeable_kg)
    assert fact.cost_fen == 1000 + 600  # 10 CNY first kg + one started kg at 6 CNY (national zone)


def test_a_billed_cost_wins_over_the_tariff() -> None:
    billed = shipment(Status.DELIVERED, billed_cost=Money(amount=Decimal("13.50")))
    fact = derive_fact(billed, [PICKED, SIGNED], TARIFFS)
    assert fact is not None
    assert (fact.cost_fen, fact.cost_billed) == (1350, True)


@pytest.mark.parametrize(
    ("case", "status", "sub", "timeline", "outcome", "ended_at"),
    [
        ("returned", Status.RETURNED, SubStatus.NONE, [PICKED, HUB, ARRIVED, OUT, FAILED, RETURNED],
         Outcome.RETURNED, at(150)),
        ("lost", Status.EXCEPTION, SubStatus.LOST, [PICKED, HUB, LOST], Outcome.LOST, at(120)),
        ("cancelled after pickup", Status.CANCELLED, SubStatus.INTERCEPTED, [PICKED, CANCELLED],
         Outcome.CANCELLED_AFTER_PICKUP, at(12)),
        ("first delivery attempt", Status.DELIVERED, SubStatus.NONE, [PICKED, ARRIVED, OUT, SIGNED],
         Outcome.DELIVERED, at(62)),
        ("no pickup scan: the first moving scan stands for it", Status.DELIVERED, SubStatus.NONE, [HUB, SIGNED],
         Outcome.DELIVERED, at(62)),
    ],
)  # fmt: skip
def test_each_ending_gives_its_outcome(  # noqa: PLR0917 - one row of the table
    case: str, status: Status, sub: SubStatus, timeline: list[TrackingEvent], outcome: Outcome, ended_at: datetime
) -> None:
    fact = derive_fact(shipment(status, sub), timeline, TARIFFS)
    assert fact is not None, case
    assert (fact.outcome, fact.ended_at) == (outcome, ended_at), case
    assert fact.picked_up_at is not None
    assert fact.delivered_at is None or outcome is Outcome.DELIVERED


def test_first_attempt_and_reasons_of_a_clean_delivery() -> None:
    fact = derive_fact(shipment(Status.DELIVERED), [PICKED, ARRIVED, OUT, SIGNED], TARIFFS)
    assert fact is not None
    assert (fact.attempts, fact.exception_reasons, fact.first_attempt_at) == (1, (), at(62))


def test_an_exception_without_a_reason_is_unspecified() -> None:
    fact = derive_fact(shipment(Status.DELIVERED), [PICKED, scan(20, Status.EXCEPTION), SIGNED], TARIFFS)
    assert fact is not None
    assert fact.exception_reasons == (UNSPECIFIED,)


@pytest.mark.parametrize(
    ("case", "ship", "timeline"),
    [
        ("cancelled before pickup", shipment(Status.CANCELLED, SubStatus.CANCELLED_BY_SENDER), []),
        ("still moving", shipment(Status.OUT_FOR_DELIVERY), [PICKED, OUT]),
        ("an exception that is not a loss", shipment(Status.EXCEPTION, SubStatus.HELD), [PICKED, HELD]),
        ("no waybill", shipment(Status.DELIVERED, carrier=None, provider=None), [PICKED, SIGNED]),
    ],
)
def test_no_fact_until_a_shipment_ends(case: str, ship: Shipment, timeline: list[TrackingEvent]) -> None:
    assert derive_fact(ship, timeline, TARIFFS) is None, case


def test_a_scan_with_an_implausible_time_never_dates_a_milestone() -> None:
    future_pickup = scan(1, Status.PICKED_UP, text="clock skew").model_copy(update={"time_flag": TimeFlag.FUTURE})
    fact = derive_fact(shipment(Status.DELIVERED), [future_pickup, PICKED, SIGNED], TARIFFS)
    assert fact is not None
    assert fact.picked_up_at == at(6)


def test_the_consumer_acts_on_entering_an_ending_status_only() -> None:
    moving, delivered = shipment(Status.OUT_FOR_DELIVERY), shipment(Status.DELIVERED)
    returned = shipment(Status.RETURNED)
    assert ended_now(ShipmentImage(moving), ShipmentImage(delivered))
    assert ended_now(None, ShipmentImage(delivered))
    assert not ended_now(ShipmentImage(delivered), ShipmentImage(delivered))
    assert not ended_now(ShipmentImage(delivered), ShipmentImage(returned))  # the fact was written at delivery
    assert not ended_now(ShipmentImage(shipment(Status.DELIVERED)), ShipmentImage(moving))
    assert ending(shipment(Status.EXCEPTION, SubStatus.LOST))
    assert not ending(shipment(Status.EXCEPTION, SubStatus.DAMAGED))


@given(st.permutations(DELIVERED_JOURNEY), st.lists(st.sampled_from(DELIVERED_JOURNEY), max_size=12))
def test_any_order_and_duplication_of_the_timeline_gives_the_same_fact(
    order: list[TrackingEvent], duplicates: list[TrackingEvent]
) -> None:
    # Given the same scans in any order, some of them delivered twice or more
    ended = shipment(Status.DELIVERED, SubStatus.SIGNED_BY_PROXY)
    # When the fact is derived
    # Then it is the fact of the scans in their natural order
    assert derive_fact(ended, order + duplicates, TARIFFS) == derive_fact(ended, DELIVERED_JOURNEY, TARIFFS)


@given(st.data())
def test_any_order_and_duplication_of_returned_and_lost_timelines_gives_the_same_fact(data: st.DataObject) -> None:
    for ended, timeline in (
        (shipment(Status.RETURNED), [PICKED, HUB, ARRIVED, OUT, FAILED, RETURNED]),
        (shipment(Status.EXCEPTION, SubStatus.LOST), [PICKED, HUB, HELD, LOST]),
    ):
        shuffled = data.draw(st.permutations(timeline))
        extra = data.draw(st.lists(st.sampled_from(timeline), max_size=8))
        assert derive_fact(ended, shuffled + extra, TARIFFS) == derive_fact(ended, timeline, TARIFFS)
