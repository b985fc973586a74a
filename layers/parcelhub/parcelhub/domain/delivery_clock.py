"""The delivery clock: time measured the way parcels move, net of weekends and Chinese public holidays.

An hour of a working day counts 1, an hour of a rest day (a weekend that is not an adjusted working day,
调休) counts :data:`REST_DAY_PACE`, an hour of a public holiday :data:`HOLIDAY_PACE`. Lane histograms store
the delivery-clock hours from each milestone to delivery (``domain.lanes.clock_histogram_name``), so a
parcel that crossed National Day teaches the same pace as one that did not, and an estimate made before a
holiday stretches over it.

Holidays and adjusted working days come from ``chinese_calendar`` (the State Council's yearly notices,
maintained in the package; 1.11 covers 2004-2026). For a year it does not cover, the clock falls back to
weekends only (Saturday and Sunday rest, no holidays) and says so (:meth:`DeliveryClock.covers`), so an
estimate can mark its basis. Local time is China Standard Time (UTC+8, no daylight saving).

The paces are part of the stored histograms' unit: changing them invalidates stored ``clock_*`` buckets.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache

import chinese_calendar

CHINA_TZ = timezone(timedelta(hours=8))
WORKDAY_PACE = 1.0
REST_DAY_PACE = 0.7
HOLIDAY_PACE = 0.35
_DAY = timedelta(days=1)


@lru_cache(maxsize=4096)
def day_pace(day: date) -> tuple[float, bool]:
    """``(pace, covered)``: how much an hour of ``day`` counts, and whether holiday data covers its year."""
    try:
        if chinese_calendar.is_workday(day):
            return WORKDAY_PACE, True
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:  # a year the package has no notice for: weekends only
        return (REST_DAY_PACE if day.weekday() >= 5 else WORKDAY_PACE), False
    return (HOLIDAY_PACE if is_holiday and name else REST_DAY_PACE), True


def local_day(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), CHINA_TZ)


class DeliveryClock:
    """Converts between wall-clock instants and delivery-clock hours (pure; the day table is cached)."""

    def hours(self, start: datetime, end: datetime) -> float:
        """Delivery-clock hours from ``start`` to ``end`` (0 when ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        total = 0.0
        now = start.astimezone(CHINA_TZ)
        while now < end:
            day = now.date()
            boundary = min(local_midnight(day + _DAY), end)
            total += (boundary - now).total_seconds() / 3600.0 * day_pace(day)[0]
            now = boundary
        return total

    def timeline(self, start: datetime, hours: float) -> Timeline:
        """A walk from ``start`` long enough to place any point up to ``hours`` delivery-clock hours."""
        return Timeline(start, hours)

    def advance(self, start: datetime, hours: float) -> datetime:
        """The instant ``hours`` delivery-clock hours after ``start``."""
        return Timeline(start, hours).at(hours)

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether holiday data covers every day from ``start`` to ``end``."""
        day, last = local_day(start), local_day(end)
        while day <= last:
            if not day_pace(day)[1]:
                return False
            day += _DAY
        return True


class Timeline:
    """Day boundaries from a start with the delivery-clock hours reached at each: placing many points from
    one start (a histogram's buckets) is a bisect each, not a walk each."""

    def __init__(self, start: datetime, hours: float) -> None:
        self.start = start.astimezone(CHINA_TZ)
        self._instants: list[datetime] = [self.start]
        self._reached: list[float] = [0.0]
        self._paces: list[float] = []
        now, reached = self.start, 0.0
        while True:
            pace = day_pace(now.date())[0]
            boundary = local_midnight(now.date() + _DAY)
            self._paces.append(pace)
            reached += (boundary - now).total_seconds() / 3600.0 * pace
            self._instants.append(boundary)
            self._reached.append(reached)
            if reached >= hours:
                break
            now = boundary

    def at(self, hours: float) -> datetime:
        """The instant ``hours`` delivery-clock hours after the start (``hours`` within the walk)."""
        hours = max(0.0, hours)
        index = min(bisect_right(self._reached, hours) - 1, len(self._paces) - 1)
        return self._instants[index] + timedelta(hours=(hours - self._reached[index]) / self._paces[index])
