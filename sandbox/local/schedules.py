"""Schedules (``Schedule``/``ScheduleV2`` events, rules with ``ScheduleExpression``) on a fast clock.

``rate(N unit)`` fires every N units x ``PARCELHUB_SCHEDULE_SCALE``; ``cron(min hour dom month dow
year)`` computes the real gap to its next occurrence (UTC) and waits that gap x the scale. The
event is the scheduled-event payload (``detail-type: Scheduled Event``), or the schedule's ``Input``.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.local.template import ACCOUNT_ID, REGION, Schedule

log = logging.getLogger("parcelhub.local")

UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


class ScheduleError(ValueError):
    pass


def rate_seconds(expression: str) -> int | None:
    """Seconds between two firings of ``rate(...)``; None for another expression."""
    match = re.fullmatch(r"\s*rate\(\s*(\d+)\s+([a-z]+)\s*\)\s*", expression)
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    if unit not in UNITS or value <= 0 or (value == 1) != (not unit.endswith("s")):
        raise ScheduleError(f"bad rate expression {expression!r}")
    return value * UNITS[unit]


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        step = 1
        part = item
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"cron field value out of range: {text!r}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"unsupported cron token {text!r} (L, W and # are not supported locally)")
    return int(text)


class Cron:
    """AWS's six-field cron (minutes hours day-of-month month day-of-week year), in UTC."""

    def __init__(self, expression: str) -> None:
        match = re.fullmatch(r"\s*cron\((.*)\)\s*", expression)
        if not match:
            raise ScheduleError(f"not a cron expression: {expression!r}")
        fields = match.group(1).split()
        if len(fields) != 6:
            raise ScheduleError(f"cron needs 6 fields: {expression!r}")
        minutes, hours, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
        self.minutes = _field(minutes, 0, 59)
        self.hours = _field(hours, 0, 23)
        self.dom = None if dom == "?" else _field(dom, 1, 31)
        self.months = _field(month, 1, 12, MONTHS)
        self.dow = None if dow == "?" else _field(dow, 1, 7, DAYS)
        self.years = _field(year, 1970, 2199)

    def _day_ok(self, day: datetime) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.dom is not None:
            return day.day in self.dom
        assert self.dow is not None
        return (day.isoweekday() % 7) + 1 in self.dow  # AWS: 1 = Sunday

    def next_after(self, moment: datetime) -> datetime:
        start = (moment + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if self._day_ok(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError("cron expression never fires in the next five years")


def interval_seconds(expression: str, now: datetime | None = None) -> float:
    """Real seconds until the next firing."""
    rate = rate_seconds(expression)
    if rate is not None:
        return float(rate)
    if expression.strip().startswith("at("):
        raise ScheduleError("one-time at() schedules are not run locally")
    now = now or datetime.now(UTC)
    return (Cron(expression).next_after(now) - now).total_seconds()


def scheduled_event(schedule: Schedule) -> Any:
    """The payload a scheduled invocation receives."""
    if schedule.input is not None:
        return json.loads(schedule.input) if isinstance(schedule.input, str) else schedule.input
    if schedule.kind == "ScheduleV2":
        source, resource = "aws.scheduler", f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{schedule.name}"
    else:
        source, resource = "aws.events", f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{schedule.name}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": source,
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [resource],
        "detail": {},
    }


class Scheduler:
    """One thread per enabled schedule; ``fire(schedule)`` does the work."""

    def __init__(self, schedules: list[Schedule], scale: float, fire: Callable[[Schedule], Any]) -> None:
        self.schedules = [s for s in schedules if s.enabled]
        self.scale = scale
        self.fire = fire
        self.stop_event = threading.Event()
        self.fired: dict[str, int] = {}
        self.threads: list[threading.Thread] = []
        for schedule in self.schedules:
            interval_seconds(schedule.expression)  # a bad expression fails at start, not in a thread

    def start(self) -> None:
        for schedule in self.schedules:
            thread = threading.Thread(target=self._run, args=(schedule,), name=f"schedule-{schedule.name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=2)

    def _run(self, schedule: Schedule) -> None:
        while not self.stop_event.wait(max(0.05, interval_seconds(schedule.expression) * self.scale)):
            self.fired[schedule.name] = self.fired.get(schedule.name, 0) + 1
            try:
                self.fire(schedule)
            except Exception as exc:
                log.warning("schedule %s: %s", schedule.name, exc)
