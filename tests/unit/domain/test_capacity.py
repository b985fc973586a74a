"""Capacity planning's arithmetic (``domain.capacity``): the forecast from recent intake and promotions, the
days a balance covers, the alerts, and when a carrier is blocked for the choice."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from parcelhub.domain.capacity import (
    CapacityAlertKind,
    CapacityBlock,
    DayForecast,
    Standing,
    baseline,
    cover_days,
    outlook,
)
from parcelhub.domain.models import Carrier
from parcelhub.domain.policy import CapacityPolicy, CarrierLimits, Promotion

TODAY = date(2026, 11, 5)  # six days before 双11
DOUBLE_11 = Promotion(name="双11", start=date(2026, 11, 10), end=date(2026, 11, 11), multiplier=3.0)


def history(per_day: int, days: int = 14, *, until: date = TODAY) -> dict[date, int]:
    return {until - timedelta(days=n): per_day for n in range(1, days + 1)}


def policy(**limits: CarrierLimits) -> CapacityPolicy:
    return CapacityPolicy(
        enabled=True,
        carriers={Carrier(c): lim for c, lim in limits.items()},
        history_days=14,
        horizon_days=7,
        min_cover_days=3,
        promotions=[DOUBLE_11],
    )


def test_the_forecast_is_the_recent_daily_mean_times_each_days_promotion() -> None:
    # Given ZTO took 100 parcels a day for two weeks
    look = outlook(policy(ZTO=CarrierLimits(daily_cap=250)), "ZTO", TODAY, history(100), Standing(intake_today=30))
    # Then an ordinary day is forecast at 100, today never below its intake, 双11 at three times that
    assert look.baseline == 100
    assert [d.parcels for d in look.forecast] == [100, 100, 100, 100, 100, 300, 300]
    assert look.forecast[5] == DayForecast(date(2026, 11, 10), 300, 3.0, "双11")
    # and the first day forecast over the cap of 250 is 双11's first: an alert ahead of it
    assert look.cap_day == date(2026, 11, 10)
    assert look.alerts == (CapacityAlertKind.CAP_FORECAST,)
    assert look.blocked is None


def test_a_past_promotion_does_not_inflate_an_ordinary_day() -> None:
    # Given last year's 双11 pattern inside the history window: 300 on the promotion days, 100 otherwise
    after = date(2026, 11, 13)
    past = history(100, until=after) | {date(2026, 11, 10): 300, date(2026, 11, 11): 300}
    # Then the baseline scales the promotion days back (300 / 3)
    assert baseline(policy(), "ZTO", past, after) == 100


def test_a_new_deployment_is_not_diluted_by_days_before_its_first_parcel() -> None:
    # Given intake only on the last three days
    assert baseline(policy(), "ZTO", {TODAY - timedelta(days=n): 60 for n in (1, 2, 3)}, TODAY) == 60
    # and nothing at all forecasts nothing
    assert baseline(policy(), "ZTO", {}, TODAY) == 0


def test_a_balance_covering_fewer_days_than_the_threshold_alerts() -> None:
    # Given 100 a day, 30 taken today, and 250 e-waybill numbers left
    standing = Standing(intake_today=30, balance_left=250, balance_source="configured")
    look = outlook(policy(ZTO=CarrierLimits()), "ZTO", TODAY, history(100), standing)
    # Then today's remaining 70 and two more days use 270 > 250: 2.8 days, under 3
    assert look.cover_days == 2.8
    assert look.alerts == (CapacityAlertKind.BALANCE_LOW,)
    # and a larger balance does not alert
    roomy = outlook(policy(), "ZTO", TODAY, history(100), Standing(30, 10_000, "provider"))
    assert roomy.cover_days == 7.0  # outlasts the horizon
    assert roomy.alerts == ()


def test_a_reached_cap_or_a_used_up_balance_blocks_the_carrier() -> None:
    capped = policy(ZTO=CarrierLimits(daily_cap=50))
    full = outlook(capped, "ZTO", TODAY, history(40), Standing(intake_today=50))
    assert (full.blocked, full.alerts) == (CapacityBlock.CAP_REACHED, (CapacityAlertKind.CAP_REACHED,))
    empty = outlook(policy(), "ZTO", TODAY, history(40), Standing(intake_today=5, balance_left=0))
    assert empty.blocked is CapacityBlock.BALANCE_EXHAUSTED
    assert CapacityAlertKind.BALANCE_LOW in empty.alerts
    below = outlook(capped, "ZTO", TODAY, history(10), Standing(intake_today=49, balance_left=1))
    assert below.blocked is None


@given(
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=0, max_value=5000),
    st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), min_size=1, max_size=10),
)
def test_more_balance_never_covers_fewer_days(smaller: int, extra: int, parcels: list[float]) -> None:
    days = tuple(DayForecast(TODAY + timedelta(days=n), p) for n, p in enumerate(parcels))
    low, high = cover_days(smaller, days, 0), cover_days(smaller + extra, days, 0)
    if low is None:
        assert high is None
    else:
        assert high is not None
        assert high >= low
        assert low <= len(days)
