"""Delivery-date estimates: lane fallback, the pickup cutoff, the holiday calendar and the milestones."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.domain.delivery_clock import CHINA_TZ, DeliveryClock, local_day
from parcelhub.domain.estimate import EstimateRequest, EstimateSettings, estimate, next_pickup_run
from parcelhub.domain.lanes import (
    DeliveryFact,
    Histogram,
    Lane,
    LaneLevel,
    LaneStats,
    Milestone,
    Outcome,
    clock_histogram_name,
    contribution,
)

SETTINGS = EstimateSettings(min_deliveries=20, pickup_cutoff_hour=16, pickup_hour=17.5)
LANE = Lane("浙江省", "杭州市", "北京市", "北京市")


def cell(milestone: Milestone, hours: list[float]) -> LaneStats:
    return LaneStats({"delivered": len(hours)}, {clock_histogram_name(milestone): Histogram.of(hours)})


def at(day: str, hour: int) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00")


#: ZTO Hangzhou -> Beijing: about two working days from pickup, at every level
TWO_DAYS = [40.0 + (k % 9) for k in range(60)]
STATS = {
    ("ZTO", LaneLevel.CITY): cell(Milestone.PICKED_UP, TWO_DAYS),
    ("ZTO", LaneLevel.NATIONAL): cell(Milestone.PICKED_UP, [80.0] * 500),
}


def test_the_city_lane_is_used_when_it_has_enough_deliveries() -> None:
    window = estimate(EstimateRequest("ZTO", Milestone.PICKED_UP, at("2026-09-15", 18)), STATS, SETTINGS)
    assert window.basis == "lane:city:picked_up"
    assert window.most_likely is not None
    assert local_day(window.most_likely).isoformat() == "2026-09-17"  # Tuesday evening + ~44 working hours


def test_too_few_deliveries_fall_back_to_province_then_national_then_defaults() -> None:
    thin = {
        ("ZTO", LaneLevel.CITY): cell(Milestone.PICKED_UP, TWO_DAYS[:5]),
        ("ZTO", LaneLevel.PROVINCE): cell(Milestone.PICKED_UP, TWO_DAYS[:30]),
        ("ZTO", LaneLevel.NATIONAL): cell(Milestone.PICKED_UP, [80.0] * 500),
    }
    request = EstimateRequest("ZTO", Milestone.PICKED_UP, at("2026-09-15", 18))
    assert estimate(request, thin, SETTINGS).basis == "lane:province:picked_up"
    assert estimate(request, thin, EstimateSettings(min_deliveries=40)).basis == "lane:national:picked_up"
    assert estimate(request, thin, EstimateSettings(min_deliveries=1000)).basis == "default:picked_up"
    other = EstimateRequest("SF", Milestone.PICKED_UP, at("2026-09-15", 18))  # another carrier's cells don't count
    assert estimate(other, thin, SETTINGS).basis == "default:picked_up"


def test_configured_carrier_defaults_apply_without_history() -> None:
    fast = EstimateSettings(carrier_defaults={"SF": (12.0, 20.0, 30.0)})
    request = EstimateRequest("SF", Milestone.PICKED_UP, at("2026-09-15", 18))
    assert estimate(request, {}, fast).latest < estimate(request, {}, SETTINGS).latest


def test_an_order_after_the_cutoff_goes_with_tomorrows_run() -> None:
    before = estimate(EstimateRequest("ZTO", Milestone.CREATED, at("2026-09-15", 15)), STATS, SETTINGS)
    after = estimate(EstimateRequest("ZTO", Milestone.CREATED, at("2026-09-15", 17)), STATS, SETTINGS)
    assert next_pickup_run(at("2026-09-15", 17), SETTINGS) == at("2026-09-16", 17) + timedelta(minutes=30)
    assert before.most_likely is not None
    assert after.most_likely is not None
    assert (local_day(after.most_likely) - local_day(before.most_likely)).days == 1
    assert before.basis == "lane:city:created"


def test_national_day_stretches_the_estimate() -> None:
    ordinary = estimate(EstimateRequest("ZTO", Milestone.PICKED_UP, at("2026-09-16", 18)), STATS, SETTINGS)
    holiday_eve = estimate(EstimateRequest("ZTO", Milestone.PICKED_UP, at("2026-09-30", 18)), STATS, SETTINGS)
    assert ordinary.most_likely is not None
    assert holiday_eve.most_likely is not None
    ordinary_days = (local_day(ordinary.most_likely) - local_day(at("2026-09-16", 18))).days
    holiday_days = (local_day(holiday_eve.most_likely) - local_day(at("2026-09-30", 18))).days
    assert holiday_days >= ordinary_days + 2


def test_an_adjusted_working_day_counts_as_a_working_day() -> None:
    clock = DeliveryClock()
    saturday_workday = clock.hours(at("2026-10-10", 0), at("2026-10-11", 0))  # 调休: a working Saturday
    ordinary_saturday = clock.hours(at("2026-10-17", 0), at("2026-10-18", 0))
    assert saturday_workday == pytest.approx(24.0)
    assert ordinary_saturday < 24.0


def test_past_the_holiday_data_the_calendar_is_weekends_only_and_says_so() -> None:
    window = estimate(EstimateRequest("ZTO", Milestone.PICKED_UP, at("2027-03-09", 18)), STATS, SETTINGS)
    assert window.basis == "lane:city:picked_up;calendar=weekends-only"
    clock = DeliveryClock()
    assert clock.hours(at("2027-03-13", 0), at("2027-03-14", 0)) < 24.0  # a Saturday still rests
    assert clock.hours(at("2027-03-10", 0), at("2027-03-11", 0)) == pytest.approx(24.0)


def test_after_arrival_the_remaining_time_distribution_of_that_milestone_is_used() -> None:
    stats = dict(STATS) | {
        ("ZTO", LaneLevel.CITY): STATS[("ZTO", LaneLevel.CITY)]
        + cell(Milestone.ARRIVED_AT_DESTINATION_CITY, [6.0] * 40)
    }
    arrived = at("2026-09-17", 7)
    window = estimate(EstimateRequest("ZTO", Milestone.ARRIVED_AT_DESTINATION_CITY, arrived), stats, SETTINGS)
    assert window.basis == "lane:city:arrived"
    assert window.most_likely is not None
    assert local_day(window.most_likely) == local_day(arrived)


def test_a_late_re_estimate_drops_what_would_already_have_arrived() -> None:
    picked_up = at("2026-09-15", 18)
    late = picked_up + timedelta(hours=46)
    window = estimate(EstimateRequest("ZTO", Milestone.PICKED_UP, picked_up, as_of=late), STATS, SETTINGS)
    assert window.earliest >= late
    overdue = estimate(
        EstimateRequest("ZTO", Milestone.PICKED_UP, picked_up, as_of=picked_up + timedelta(days=9)), STATS, SETTINGS
    )
    assert overdue.basis is not None
    assert overdue.basis.endswith(";overdue")


def test_contribution_measures_the_delivery_clock_net_of_the_holiday() -> None:
    fact = DeliveryFact(
        shipment_id="S1", carrier="ZTO", provider="kdniao", service="standard", lane=LANE, outcome=Outcome.DELIVERED,
        created_at=at("2026-09-30", 10), picked_up_at=at("2026-09-30", 18), delivered_at=at("2026-10-05", 12),
    )  # fmt: skip
    stats = contribution(fact)
    wall = stats.histogram("remaining_picked_up").quantile(0.5)
    clocked = stats.histogram(clock_histogram_name(Milestone.PICKED_UP)).quantile(0.5)
    assert wall is not None
    assert clocked is not None
    assert clocked < wall * 0.6


HOURS = st.lists(st.floats(min_value=0.5, max_value=400, allow_nan=False), min_size=1, max_size=80)
STARTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 6, 30)).map(
    lambda d: d.replace(tzinfo=CHINA_TZ)
)


@settings(max_examples=60, deadline=None)
@given(HOURS, STARTS, st.sampled_from(list(Milestone)), st.integers(min_value=1, max_value=40))
def test_every_window_is_ordered_starts_after_the_milestone_and_states_a_confidence(
    hours: list[float], start: datetime, milestone: Milestone, minimum: int
) -> None:
    measured = Milestone.PICKED_UP if milestone is Milestone.CREATED else milestone
    stats = {("YTO", LaneLevel.NATIONAL): cell(measured, hours)}
    window = estimate(EstimateRequest("YTO", milestone, start), stats, EstimateSettings(min_deliveries=minimum))
    assert window.most_likely is not None
    assert window.confidence is not None
    assert start <= window.earliest <= window.most_likely <= window.latest
    assert 0.0 <= window.confidence <= 1.0
    assert window.basis is not None
    assert window.basis.startswith("lane:national:" if len(hours) >= minimum else "default:")


@settings(max_examples=40, deadline=None)
@given(HOURS, STARTS, st.floats(min_value=0, max_value=200))
def test_a_later_start_never_gives_an_earlier_window(hours: list[float], start: datetime, shift: float) -> None:
    stats = {("YTO", LaneLevel.CITY): cell(Milestone.PICKED_UP, hours)}
    first = estimate(EstimateRequest("YTO", Milestone.PICKED_UP, start), stats, EstimateSettings(min_deliveries=1))
    later = estimate(
        EstimateRequest("YTO", Milestone.PICKED_UP, start + timedelta(hours=shift)),
        stats,
        EstimateSettings(min_deliveries=1),
    )
    assert later.earliest >= first.earliest
    assert later.latest >= first.latest


@settings(max_examples=80, deadline=None)
@given(STARTS, st.floats(min_value=0, max_value=500))
def test_the_delivery_clock_advances_and_measures_consistently(start: datetime, hours: float) -> None:
    clock = DeliveryClock()
    end = clock.advance(start, hours)
    assert end >= start
    assert clock.hours(start, end) == pytest.approx(hours, abs=1e-6)
    assert clock.hours(start, end + timedelta(hours=1)) >= clock.hours(start, end)
