"""The sandboxes' lane model: seeded, carriers and distances ordered as in life, the calendar stretches transit."""

from __future__ import annotations

import random
import statistics
from datetime import datetime, timedelta

from sandbox.lanes import (
    CARRIERS,
    CHINA_TZ,
    HISTORY_FIELDS,
    PICKUP_CUTOFF_HOUR,
    LaneModel,
    distance_class,
    generate_history,
)

PROFILES = {profile.code: profile for profile in CARRIERS}
HANGZHOU = ("浙江省", "杭州市")


def _transit_days(carrier: str, destination: tuple[str, str], start: datetime, draws: int = 300) -> list[float]:
    model, rng = LaneModel(seed=3), random.Random(5)
    lane = (*HANGZHOU, *destination)
    return [
        (model.delivered(PROFILES[carrier], "standard", lane, start, rng) - start).total_seconds() / 86400
        for _ in range(draws)
    ]


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    assert generate_history(300, seed=9) == generate_history(300, seed=9)
    assert generate_history(300, seed=9) != generate_history(300, seed=10)


def test_sf_is_faster_and_tighter_than_zto_on_the_same_lane() -> None:
    monday = datetime(2026, 9, 7, 18, tzinfo=CHINA_TZ)
    sf, zto = _transit_days("SF", ("北京市", "北京市"), monday), _transit_days("ZTO", ("北京市", "北京市"), monday)
    assert statistics.median(sf) < statistics.median(zto)
    assert statistics.pstdev(sf) < statistics.pstdev(zto)


def test_transit_grows_with_distance_from_same_city_to_remote() -> None:
    monday = datetime(2026, 9, 7, 18, tzinfo=CHINA_TZ)
    destinations = [
        ("浙江省", "杭州市"),
        ("浙江省", "宁波市"),
        ("上海市", "上海市"),
        ("北京市", "北京市"),
        ("西藏自治区", "拉萨市"),
    ]
    assert [distance_class(*HANGZHOU, *d).name for d in destinations] == [
        "same_city", "same_province", "neighbouring", "national", "remote",
    ]  # fmt: skip
    medians = [statistics.median(_transit_days("ZTO", d, monday)) for d in destinations]
    assert medians == sorted(medians)


def test_national_day_stretches_transit_against_an_ordinary_week() -> None:
    ordinary = datetime(2026, 9, 8, 18, tzinfo=CHINA_TZ)  # a Tuesday
    holiday_eve = datetime(2026, 9, 30, 18, tzinfo=CHINA_TZ)  # the evening before National Day
    assert (
        statistics.median(_transit_days("YTO", ("四川省", "成都市"), holiday_eve))
        > statistics.median(_transit_days("YTO", ("四川省", "成都市"), ordinary)) + 1.0
    )


def test_an_order_after_the_cutoff_waits_for_the_next_days_run() -> None:
    model, rng = LaneModel(), random.Random(1)
    before = datetime(2026, 9, 8, PICKUP_CUTOFF_HOUR - 1, tzinfo=CHINA_TZ)
    after = datetime(2026, 9, 8, PICKUP_CUTOFF_HOUR + 1, tzinfo=CHINA_TZ)
    same_day = [model.pickup(PROFILES["SF"], before, rng).date() == before.date() for _ in range(200)]
    assert sum(same_day) > 180  # a few runs slip
    assert all(model.pickup(PROFILES["SF"], after, rng).date() >= after.date() + timedelta(days=1) for _ in range(50))


def test_a_history_row_is_a_csv_row_with_offsets() -> None:
    row = generate_history(1, seed=2)[0].as_csv()
    assert tuple(row) == HISTORY_FIELDS
    assert all(row[name].endswith("+08:00") for name in ("created_at", "picked_up_at", "delivered_at"))
    assert datetime.fromisoformat(row["created_at"]) < datetime.fromisoformat(row["delivered_at"])
