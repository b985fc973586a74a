"""The sandboxes' lane model: how long a parcel takes on a lane, per carrier, and a seeded delivered history.

What it models (each effect is a number below, not a rule the estimator knows):

* **Lanes by distance**: same city < same province < neighbouring provinces < far < remote (新疆, 西藏), a
  line-haul time in *working hours* for each class, and a fixed, seeded per-lane factor (some lanes of the
  same class are just slower);
* **carriers**: SF (and JD) faster and tighter than the franchise networks (ZTO, YTO, STO, YD, J&T), EMS
  slowest and widest; express faster than standard;
* **pickup**: the warehouse's carrier run comes once a day after the cutoff hour; an order created after
  the cutoff waits for tomorrow's run, and a few runs slip a day;
* **the calendar**: weekends run slower (SF less so), public holidays much slower (the first days of
  National Day most), adjusted working days (调休) run like working days, from ``chinese_calendar``; the
  双11 promotion brings a volume surge and a backlog that stretches transit for a week;
* **delivery hours**: couriers deliver 08:00-21:00; a parcel reaching the city at night goes out next morning.

``generate_history`` draws delivered parcels (creation time, first pickup scan, delivery) in the CSV format
``make backtest HISTORY=file.csv`` reads; ``python -m sandbox.lanes --out history.csv`` writes one.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import chinese_calendar

from sandbox.demo.orders import DESTINATIONS

CHINA_TZ = timezone(timedelta(hours=8))

#: the CSV header of a delivered history (the backtest's input; see README "Backtest")
HISTORY_FIELDS: tuple[str, ...] = (
    "carrier", "service", "origin_province", "origin_city", "destination_province", "destination_city",
    "created_at", "picked_up_at", "delivered_at",
)  # fmt: skip

#: the brand's warehouses: (province, city, share of orders)
WAREHOUSES: tuple[tuple[str, str, float], ...] = (("浙江省", "杭州市", 0.75), ("广东省", "广州市", 0.25))

#: provinces that share a border (or a short trunk line) with each other, for the "neighbouring" class
NEIGHBOURS: dict[str, frozenset[str]] = {
    "浙江省": frozenset({"上海市", "江苏省", "安徽省", "福建省", "江西省"}),
    "广东省": frozenset({"福建省", "湖南省", "广西壮族自治区", "江西省", "海南省"}),
}
#: far-flung destinations (long trunk lines, fewer flights, mountain roads)
REMOTE: frozenset[str] = frozenset({"新疆维吾尔自治区", "西藏自治区"})
#: the far but not remote provinces: the rest of the country more than one province away
FAR_EXTRA: frozenset[str] = frozenset({"黑龙江省", "云南省", "辽宁省"})


@dataclass(frozen=True)
class DistanceClass:
    name: str
    working_hours: float  # median line-haul, pickup -> delivery, on a standard network, in working hours


SAME_CITY = DistanceClass("same_city", 16.0)
SAME_PROVINCE = DistanceClass("same_province", 26.0)
NEIGHBOURING = DistanceClass("neighbouring", 38.0)
NATIONAL = DistanceClass("national", 54.0)
FAR = DistanceClass("far", 72.0)
REMOTE_CLASS = DistanceClass("remote", 118.0)


@dataclass(frozen=True)
class CarrierProfile:
    """How one carrier runs: speed relative to a standard network, spread, weekend pace, pickup slips."""

    code: str
    share: float  # of the brand's parcels
    speed: float  # multiplies the class's working hours (lower is faster)
    sigma: float  # log-normal spread of one parcel's line-haul
    weekend_pace: float  # working hours done per hour on a weekend (1 = like a working day)
    holiday_pace: float  # ... on a public holiday (after its first three days)
    slip: float  # share of pickup runs that slip to the next day
    express_share: float  # share of its parcels sent express


CARRIERS: tuple[CarrierProfile, ...] = (
    CarrierProfile("SF", 0.30, 0.70, 0.16, 0.85, 0.55, 0.02, 0.35),
    CarrierProfile("JD", 0.06, 0.75, 0.18, 0.85, 0.55, 0.03, 0.20),
    CarrierProfile("ZTO", 0.20, 1.00, 0.28, 0.60, 0.35, 0.07, 0.0),
    CarrierProfile("YTO", 0.14, 1.05, 0.30, 0.60, 0.35, 0.08, 0.0),
    CarrierProfile("STO", 0.07, 1.10, 0.32, 0.55, 0.30, 0.09, 0.0),
    CarrierProfile("YD", 0.07, 1.10, 0.32, 0.55, 0.30, 0.09, 0.0),
    CarrierProfile("JTSD", 0.10, 1.08, 0.31, 0.60, 0.35, 0.08, 0.0),
    CarrierProfile("EMS", 0.06, 1.25, 0.36, 0.70, 0.50, 0.05, 0.0),
)
EXPRESS_SPEED = 0.78  # express on top of the carrier's speed

#: orders created before this local hour go on the same day's carrier run
PICKUP_CUTOFF_HOUR = 16
#: the run collects between these local hours
PICKUP_RUN = (16.5, 19.0)
#: couriers deliver between these local hours
DELIVERY_HOURS = (8.0, 21.0)
#: the 双11 backlog: (first day, last day, pace) - the network does this share of a working day's hours
SURGE = (date(2026, 11, 11), date(2026, 11, 17), 0.6)
#: order volume multipliers on the promotion's days
SURGE_VOLUME: dict[date, float] = {date(2026, 11, 11): 4.0, date(2026, 11, 12): 2.5, date(2026, 11, 13): 1.5}
#: hour-of-day weights of order creation (online shopping: late morning and the evening)
CREATE_HOURS = (1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 3.0, 3.5, 3.5, 3.0, 2.8, 2.8, 2.8, 3.0, 3.0, 2.8,
                3.0, 3.8, 4.2, 3.8, 2.0)  # fmt: skip


def distance_class(
    origin_province: str, origin_city: str, destination_province: str, destination_city: str
) -> DistanceClass:
    if destination_province in REMOTE:
        return REMOTE_CLASS
    if origin_province == destination_province:
        return SAME_CITY if origin_city == destination_city else SAME_PROVINCE
    if destination_province in NEIGHBOURS.get(origin_province, frozenset()):
        return NEIGHBOURING
    if destination_province in FAR_EXTRA:
        return FAR
    return NATIONAL


def _day_kind(day: date) -> tuple[str, int]:
    """``("work" | "weekend" | "holiday", day of the holiday)`` from chinese_calendar (weekends-only past
    the years it covers)."""
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        workday = chinese_calendar.is_workday(day)
    except NotImplementedError:
        return ("weekend", 0) if day.weekday() >= 5 else ("work", 0)
    if workday:
        return "work", 0
    if is_holiday and name:
        first = day
        while True:
            try:
                previous_holiday, previous_name = chinese_calendar.get_holiday_detail(first - timedelta(days=1))
            except NotImplementedError:
                break
            if not (previous_holiday and previous_name == name):
                break
            first -= timedelta(days=1)
        return "holiday", (day - first).days
    return "weekend", 0


class LaneModel:
    """Seeded: the same seed gives the same per-lane factors and the same parcels."""

    def __init__(self, seed: int = 17) -> None:
        self.seed = seed
        self._lane_factor: dict[tuple[str, str, str, str, str], float] = {}
        self._pace_cache: dict[tuple[str, date], float] = {}

    def lane_factor(self, carrier: str, origin_province: str, origin_city: str, province: str, city: str) -> float:
        key = (carrier, origin_province, origin_city, province, city)
        if key not in self._lane_factor:
            rng = random.Random(f"{self.seed}:{'/'.join(key)}")
            self._lane_factor[key] = math.exp(rng.gauss(0.0, 0.12))
        return self._lane_factor[key]

    def pace(self, profile: CarrierProfile, day: date) -> float:
        """Working hours the carrier's network does per wall-clock hour on ``day``."""
        key = (profile.code, day)
        if key in self._pace_cache:
            return self._pace_cache[key]
        kind, nth = _day_kind(day)
        pace = 1.0
        if kind == "weekend":
            pace = profile.weekend_pace
        elif kind == "holiday":
            pace = profile.holiday_pace * (0.45 if nth < 3 else 1.0)
        if SURGE[0] <= day <= SURGE[1]:
            pace *= SURGE[2]
        self._pace_cache[key] = pace
        return pace

    def advance(self, profile: CarrierProfile, start: datetime, working_hours: float) -> datetime:
        """The local time at which ``working_hours`` of line-haul are done, starting at ``start``."""
        now = start.astimezone(CHINA_TZ)
        left = working_hours
        while True:
            midnight = datetime.combine(now.date() + timedelta(days=1), time(0), CHINA_TZ)
            hours_today = (midnight - now).total_seconds() / 3600.0
            pace = self.pace(profile, now.date())
            if hours_today * pace >= left:
                return now + timedelta(hours=left / pace)
            left -= hours_today * pace
            now = midnight

    def pickup(self, profile: CarrierProfile, created_at: datetime, rng: random.Random) -> datetime:
        local = created_at.astimezone(CHINA_TZ)
        run_day = local.date() if local.hour < PICKUP_CUTOFF_HOUR else local.date() + timedelta(days=1)
        if rng.random() < profile.slip:
            run_day += timedelta(days=1)
        at = datetime.combine(run_day, time(0), CHINA_TZ) + timedelta(hours=rng.uniform(*PICKUP_RUN))
        return max(at, created_at + timedelta(minutes=20))

    def delivered(
        self, profile: CarrierProfile, service: str, lane: Sequence[str], picked_up_at: datetime, rng: random.Random
    ) -> datetime:
        klass = distance_class(*lane)
        speed = profile.speed * (EXPRESS_SPEED if service == "express" else 1.0)
        hours = (
            klass.working_hours
            * speed
            * self.lane_factor(profile.code, *lane)
            * math.exp(rng.gauss(0.0, profile.sigma))
        )
        at = self.advance(profile, picked_up_at, hours)
        local_hour = at.hour + at.minute / 60.0
        if local_hour < DELIVERY_HOURS[0]:  # reached the city at night: out with the morning round
            at = datetime.combine(at.date(), time(0), CHINA_TZ) + timedelta(hours=rng.uniform(9.0, 13.0))
        elif local_hour >= DELIVERY_HOURS[1]:
            at = datetime.combine(at.date() + timedelta(days=1), time(0), CHINA_TZ) + timedelta(
                hours=rng.uniform(9.0, 13.0)
            )
        return at


@dataclass(frozen=True)
class HistoryRow:
    """One delivered parcel of a history (a CSV row)."""

    carrier: str
    service: str
    origin_province: str
    origin_city: str
    destination_province: str
    destination_city: str
    created_at: datetime
    picked_up_at: datetime
    delivered_at: datetime

    def as_csv(self) -> dict[str, str]:
        return {
            "carrier": self.carrier, "service": self.service,
            "origin_province": self.origin_province, "origin_city": self.origin_city,
            "destination_province": self.destination_province, "destination_city": self.destination_city,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "picked_up_at": self.picked_up_at.isoformat(timespec="seconds"),
            "delivered_at": self.delivered_at.isoformat(timespec="seconds"),
        }  # fmt: skip


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def generate_history(
    parcels: int = 20_000,
    *,
    seed: int = 17,
    start: date = date(2026, 6, 1),
    end: date = date(2026, 11, 30),
) -> list[HistoryRow]:
    """``parcels`` delivered parcels created between ``start`` and ``end`` (local dates), in creation order."""
    model = LaneModel(seed)
    rng = random.Random(seed)
    days = _days(start, end)
    day_weights = [SURGE_VOLUME.get(day, 1.0) for day in days]
    destination_weights = [d[4] for d in DESTINATIONS]
    rows: list[HistoryRow] = []
    for _ in range(parcels):
        day = rng.choices(days, weights=day_weights)[0]
        hour = rng.choices(range(24), weights=CREATE_HOURS)[0]
        created = datetime.combine(day, time(0), CHINA_TZ) + timedelta(hours=hour, seconds=rng.randrange(3600))
        origin_province, origin_city, _ = rng.choices(WAREHOUSES, weights=[w[2] for w in WAREHOUSES])[0]
        province, city, *_ = rng.choices(DESTINATIONS, weights=destination_weights)[0]
        profile = rng.choices(CARRIERS, weights=[c.share for c in CARRIERS])[0]
        service = "express" if rng.random() < profile.express_share else "standard"
        picked_up = model.pickup(profile, created, rng)
        lane = (origin_province, origin_city, province, city)
        delivered = model.delivered(profile, service, lane, picked_up, rng)
        rows.append(HistoryRow(profile.code, service, *lane, created, picked_up, delivered))
    rows.sort(key=lambda row: row.created_at)
    return rows


def write_csv(rows: Iterable[HistoryRow], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic delivered history (CSV) from the lane model.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parcels", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    write_csv(generate_history(args.parcels, seed=args.seed), args.out)


if __name__ == "__main__":
    main()
