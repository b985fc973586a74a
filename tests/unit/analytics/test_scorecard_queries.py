"""Scorecard periods and filters: ISO weeks, ranges, and which lanes a filter keeps."""

from __future__ import annotations

import pytest

from parcelhub.app.scorecards import InvalidScorecardQuery, Level, _matches, lane_parts, weeks


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("all", ["all"]),
        ("2026-W48", ["2026-W48"]),
        ("2026-W52..2027-W02", ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]),  # 2026 has 53 ISO weeks
        ("2025-W52..2026-W01", ["2025-W52", "2026-W01"]),
        ("2026-W02..2026-W01", ["2026-W01", "2026-W02"]),  # given backwards: the same range
        ("2025-W53", ["2026-W01"]),  # 2025 has 52 ISO weeks: its "W53" is the week after W52
        (
            "2024-W01..2026-W01",
            [f"2024-W{w:02d}" for w in range(46, 53)] + [f"2025-W{w:02d}" for w in range(1, 53)] + ["2026-W01"],
        ),  # longer than 60 weeks: its last 60
    ],
)
def test_a_period_is_the_weeks_it_spans(period: str, expected: list[str]) -> None:
    assert weeks(period) == expected


@pytest.mark.parametrize("period", ["2026-48", "2026-W54", "2026-W00", "2026-W1"])
def test_a_bad_period_is_refused_naming_the_field(period: str) -> None:
    with pytest.raises(InvalidScorecardQuery) as refused:
        weeks(period)
    assert refused.value.field == "period"


def test_lane_keys_split_into_origin_and_destination() -> None:
    assert lane_parts(Level.LANE, "浙江省/杭州市>广东省/广州市").origin == "浙江省/杭州市"
    assert lane_parts(Level.PROVINCE, "浙江省>广东省").destination == "广东省"
    assert lane_parts(Level.DESTINATION, "广东省").origin is None
    assert lane_parts(Level.CARRIER, "*").destination is None


def test_a_filter_on_a_part_a_level_does_not_have_keeps_no_row() -> None:
    # every schema-valid query is answered (the document cannot express cross-parameter rules): a
    # destination-level row has no origin, so an origin filter matches none (the API answers 200, no rows)
    parts = lane_parts(Level.DESTINATION, "广东省")
    assert not _matches(parts.origin, "浙江省")
