"""Scorecards: per carrier and lane (or destination province, or carrier-wide) over a week, a range of
weeks or all time — volume, pickup latency and transit time percentiles, on-time, first-attempt,
exception and return rates, cost per parcel — read from the cells the delivery facts were added to.

A query is one read of the ``Scorecards`` port per week asked for (cells of one level and period), then
pure arithmetic on :class:`~parcelhub.domain.lanes.LaneStats`; its cost does not grow with the history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from parcelhub.domain.lanes import LaneLevel, LaneStats, remaining_histogram_name
from parcelhub.domain.lanes import Milestone as LaneMilestone
from parcelhub.ports.analytics import Scorecards

ALL_TIME = "all"
#: the longest range of weeks a query may span (a year and a bit)
MAX_WEEKS = 60
_WEEK = re.compile(r"^(?P<year>\d{4})-W(?P<week>\d{2})$")


class InvalidScorecardQuery(ValueError):
    """A period or filter the scorecards cannot answer (the API answers 422 naming ``field``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class Level(StrEnum):
    """What a scorecard row groups by."""

    LANE = "lane"  # carrier x origin city -> destination city
    PROVINCE = "province"  # carrier x origin province -> destination province
    DESTINATION = "destination"  # carrier x destination province
    CARRIER = "carrier"  # carrier-wide

    @property
    def lane_level(self) -> LaneLevel:
        return {
            Level.LANE: LaneLevel.CITY,
            Level.PROVINCE: LaneLevel.PROVINCE,
            Level.DESTINATION: LaneLevel.DESTINATION,
            Level.CARRIER: LaneLevel.NATIONAL,
        }[self]


def _monday(week: str) -> date:
    match = _WEEK.match(week)
    if match is None or not 1 <= int(match["week"]) <= 53:  # ISO weeks
        raise InvalidScorecardQuery("period", f"{week!r} is not an ISO week like 2026-W48")
    year, number = int(match["year"]), int(match["week"])
    try:
        return date.fromisocalendar(year, number, 1)
    except ValueError:  # W53 of a year with 52 ISO weeks: the week after its W52, i.e. the next year's W01
        return date.fromisocalendar(year, 52, 1) + timedelta(weeks=1)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weeks(period: str) -> list[str]:
    """``all``, one ISO week ``2026-W48``, or a range ``2026-W40..2026-W48`` -> the cells' periods."""
    if period == ALL_TIME:
        return [ALL_TIME]
    first, _, last = period.partition("..")
    start, end = sorted((_monday(first), _monday(last or first)))  # a range given backwards is the same range
    count = (end - start).days // 7 + 1
    # a range longer than MAX_WEEKS is read as its last MAX_WEEKS weeks (the reads per query stay bounded)
    start = max(start, end - timedelta(weeks=MAX_WEEKS - 1))
    return [iso_week(start + timedelta(weeks=i)) for i in range(min(count, MAX_WEEKS))]


@dataclass(frozen=True, slots=True)
class LaneParts:
    origin: str | None
    destination: str | None


def lane_parts(level: Level, key: str) -> LaneParts:
    """Origin and destination of a cell's lane key (city lanes as ``province/city``)."""
    if level is Level.CARRIER:
        return LaneParts(None, None)
    if level is Level.DESTINATION:
        return LaneParts(None, key)
    origin, _, destination = key.partition(">")
    return LaneParts(origin, destination)


def _matches(part: str | None, wanted: str | None) -> bool:
    """A filter matches a province, a city, or ``province/city``."""
    if wanted is None:
        return True
    if part is None:
        return False
    return wanted == part or wanted in part.split("/")


@dataclass(frozen=True, slots=True)
class ScorecardQuery:
    level: Level = Level.LANE
    period: str = ALL_TIME
    carrier: str | None = None
    origin: str | None = None
    destination: str | None = None
    by_week: bool = False


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _hours(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


@dataclass(frozen=True, slots=True)
class ScorecardRow:
    """One scorecard row and the figures computed from its counters and histograms."""

    carrier: str
    level: Level
    origin: str | None
    destination: str | None
    period: str
    stats: LaneStats = field(repr=False)

    @property
    def volume(self) -> int:
        return self.stats.count("parcels")

    def count(self, name: str) -> int:
        return self.stats.count(name)

    def pickup_hours(self, q: float) -> float | None:
        return _hours(self.stats.histogram("pickup").quantile(q))

    def transit_hours(self, q: float) -> float | None:
        """Picked up -> delivered."""
        return _hours(self.stats.histogram(remaining_histogram_name(LaneMilestone.PICKED_UP)).quantile(q))

    @property
    def on_time_rate(self) -> float | None:
        return _ratio(self.count("on_time"), self.count("promised"))

    @property
    def first_attempt_rate(self) -> float | None:
        return _ratio(self.count("first_attempt"), self.count("delivered"))

    @property
    def exception_rate(self) -> float | None:
        return _ratio(self.count("exceptions"), self.volume)

    @property
    def exception_rates(self) -> dict[str, float]:
        rates = {
            name.removeprefix("exception:"): _ratio(value, self.volume)
            for name, value in self.stats.counters.items()
            if name.startswith("exception:") and value
        }
        return {reason: rate for reason, rate in sorted(rates.items()) if rate is not None}

    @property
    def return_rate(self) -> float | None:
        return _ratio(self.count("returned"), self.volume)

    @property
    def cost_per_parcel(self) -> Decimal | None:
        """CNY per parcel over the parcels with a cost."""
        costed = self.count("costed")
        if not costed:
            return None
        return (Decimal(self.count("cost_fen")) / costed / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class ScorecardService:
    def __init__(self, scorecards: Scorecards) -> None:
        self.scorecards = scorecards

    def rows(self, query: ScorecardQuery) -> list[ScorecardRow]:
        periods = weeks(query.period)
        cells = self.scorecards.scorecards(
            carrier=query.carrier, level=query.level.lane_level, lane=None, periods=periods
        )
        merged: dict[tuple[str, str, str], LaneStats] = {}
        for cell in cells:
            parts = lane_parts(query.level, cell.lane)
            if not (_matches(parts.origin, query.origin) and _matches(parts.destination, query.destination)):
                continue
            label = cell.period if query.by_week or len(periods) == 1 else query.period
            slot = (cell.carrier, cell.lane, label)
            merged[slot] = merged[slot] + cell.stats if slot in merged else cell.stats
        out = []
        for (carrier, key, period), stats in merged.items():
            parts = lane_parts(query.level, key)
            out.append(ScorecardRow(carrier, query.level, parts.origin, parts.destination, period, stats))
        return sorted(out, key=lambda r: (r.period, -r.volume, r.carrier, r.origin or "", r.destination or ""))


__all__ = [
    "InvalidScorecardQuery",
    "Level",
    "ScorecardQuery",
    "ScorecardRow",
    "ScorecardService",
    "iso_week",
    "weeks",
]
