"""Scorecard periods and filters: ISO weeks, ranges, and which lanes a filter keeps."""

from __future__ import annotations

import pytest

from parcelhub.app.scorecards import InvalidScorecardQuery, Level, ScorecardQuery, lane_parts, weeks


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("all", ["all"]),
        ("2026-W48", ["2026-W48"]),
        ("2026-W52..2027-W02", ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]),  # 2026 has 53 ISO weeks
        ("2025-W52..2026-W01", ["2025-W52", "2026-W01"]),
    ],
)
def test_a_period_is_the_weeks_it_spans(period: str, expected: list[str]) -> None:
    assert weeks(period) == expected


@pytest.mark.parametrize("period", ["2026-48", "2026-W54", "2026-W10..2026-W01", "2024-W01..2026-W01"])
def test_a_bad_period_is_refused_naming_the_field(period: str) -> None:
    with pytest.raises(InvalidScorecardQuery) as refused:
        weeks(period)
    assert refused.value.field == "period"


def test_lane_keys_split_into_origin_and_destination() -> None:
    assert lane_parts(Level.LANE, "浙江省/杭州市>广东省/广州市").origin == "浙江省/杭州市"
    assert lane_parts(Level.PROVINCE, "浙江省>广东省").destination == "广东省"
    assert lane_parts(Level.DESTINATION, "广东省").origin is None
    assert lane_parts(Level.CARRIER, "*").destination is None


def test_filters_a_level_has_no_part_for_are_refused() -> None:
    with pytest.raises(InvalidScorecardQuery, match="origin"):
        ScorecardQuery(level=Level.DESTINATION, origin="浙江省").validated()
    with pytest.raises(InvalidScorecardQuery, match="destination"):
        ScorecardQuery(level=Level.CARRIER, destination="广东省").validated()
