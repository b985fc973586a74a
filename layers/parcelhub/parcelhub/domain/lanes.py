"""Lanes, delivery facts and the fixed histograms the scorecards and the delivery estimates share.

A *delivery fact* is what parcelhub remembers of one ended shipment (delivered, returned, lost, cancelled
after pickup): who carried it, on which lane, when each milestone happened, and what it cost. Facts are
folded into *lane statistics* — counters and fixed-bucket histograms that can be added together — so a
scorecard is a handful of atomic ``ADD`` updates per parcel whatever the history's size, and an estimate
reads a few items, never the history.

Histograms have fixed bucket edges (hours), so two of them add bucket by bucket and a quantile is read
from the cumulative counts (linear inside a bucket). The edges are dense where transit times are
(same-day to a week) and coarse beyond.

Pure domain: no AWS, no configuration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from parcelhub.domain.delivery_clock import DeliveryClock

#: Upper edges (hours) of the histogram buckets; the last bucket is open-ended. Changing them invalidates
#: every stored histogram (add a new attribute prefix and backfill instead).
HOUR_EDGES: tuple[float, ...] = (
    *(float(h) for h in range(2, 25, 2)),  # 2 h buckets through the first day
    *(float(h) for h in range(28, 73, 4)),  # 4 h buckets through day three
    *(float(h) for h in range(84, 169, 12)),  # 12 h buckets through the first week
    192.0, 216.0, 240.0, 288.0, 336.0, 504.0, 720.0,
)  # fmt: skip
BUCKETS = len(HOUR_EDGES) + 1  # the last bucket holds everything above HOUR_EDGES[-1]


def bucket_of(hours: float) -> int:
    """The index of the bucket holding ``hours`` (negative durations count as 0)."""
    hours = max(0.0, hours)
    for index, edge in enumerate(HOUR_EDGES):
        if hours < edge:
            return index
    return BUCKETS - 1


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts per fixed bucket of :data:`HOUR_EDGES`. Immutable; ``+`` adds bucket by bucket."""

    counts: tuple[int, ...] = (0,) * BUCKETS

    def __post_init__(self) -> None:
        if len(self.counts) != BUCKETS:
            raise ValueError(f"a histogram has {BUCKETS} buckets, got {len(self.counts)}")

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        counts = [0] * BUCKETS
        for value in values:
            counts[bucket_of(value)] += 1
        return cls(tuple(counts))

    @classmethod
    def from_sparse(cls, sparse: Mapping[int, int]) -> Histogram:
        """From ``{bucket index: count}`` (how the table stores it: only the non-empty buckets)."""
        counts = [0] * BUCKETS
        for index, count in sparse.items():
            if 0 <= int(index) < BUCKETS:
                counts[int(index)] += int(count)
        return cls(tuple(counts))

    def sparse(self) -> dict[int, int]:
        return {index: count for index, count in enumerate(self.counts) if count}

    @property
    def total(self) -> int:
        return sum(self.counts)

    def __add__(self, other: Histogram) -> Histogram:
        return Histogram(tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)))

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in hours (linear inside the bucket), ``None`` when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("a quantile is between 0 and 1")
        total = self.total
        if total == 0:
            return None
        target = q * total
        seen = 0
        for index, count in enumerate(self.counts):
            if count and seen + count >= target:
                low = HOUR_EDGES[index - 1] if index > 0 else 0.0
                high = HOUR_EDGES[index] if index < len(HOUR_EDGES) else low * 1.5
                return low + (high - low) * ((target - seen) / count)
            seen += count
        return HOUR_EDGES[-1]


class Milestone(StrEnum):
    """Where a remaining-time distribution starts (an estimate is re-made at each of them)."""

    CREATED = "created"
    PICKED_UP = "picked_up"
    ARRIVED_AT_DESTINATION_CITY = "arrived"
    OUT_FOR_DELIVERY = "out_for_delivery"


class Outcome(StrEnum):
    """How a shipment ended (a delivery fact is written once, at the end)."""

    DELIVERED = "delivered"
    RETURNED = "returned"
    LOST = "lost"
    CANCELLED_AFTER_PICKUP = "cancelled_after_pickup"


@dataclass(frozen=True, slots=True)
class Lane:
    """Origin → destination, at city precision; coarser levels are derived from it."""

    origin_province: str
    origin_city: str
    destination_province: str
    destination_city: str

    @property
    def city_key(self) -> str:
        return f"{self.origin_province}/{self.origin_city}>{self.destination_province}/{self.destination_city}"

    @property
    def province_key(self) -> str:
        return f"{self.origin_province}>{self.destination_province}"


class LaneLevel(StrEnum):
    """How precise a lane statistic is (estimates fall back from city to province to national)."""

    CITY = "city"
    PROVINCE = "province"
    NATIONAL = "national"
    #: carrier x destination province, whatever the origin (the scorecards' roll-up; estimates skip it)
    DESTINATION = "destination"


def lane_key(lane: Lane, level: LaneLevel) -> str:
    if level is LaneLevel.CITY:
        return lane.city_key
    if level is LaneLevel.PROVINCE:
        return lane.province_key
    if level is LaneLevel.DESTINATION:
        return lane.destination_province
    return "*"


@dataclass(frozen=True, slots=True)
class DeliveryFact:
    """One ended shipment, derived from its committed timeline (written once, idempotent by shipment)."""

    shipment_id: str
    carrier: str
    provider: str
    service: str
    lane: Lane
    outcome: Outcome
    created_at: datetime
    picked_up_at: datetime | None = None
    arrived_at: datetime | None = None  # first arrival at the destination city
    out_for_delivery_at: datetime | None = None
    first_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    ended_at: datetime | None = None  # delivered, returned, lost or cancelled: when the shipment ended
    attempts: int = 0
    exception_reasons: tuple[str, ...] = ()
    #: the estimate promised at waybill creation (``None`` when none was made)
    promised_latest: datetime | None = None
    promised_most_likely: datetime | None = None
    cost_fen: int | None = None  # cost in fen (0.01 CNY)
    cost_billed: bool = False  # True when the provider billed it, False when priced from the tariff
    #: the estimated weight used for the cost (kg)
    weight_kg: float | None = None

    def milestone_at(self, milestone: Milestone) -> datetime | None:
        return {
            Milestone.CREATED: self.created_at,
            Milestone.PICKED_UP: self.picked_up_at,
            Milestone.ARRIVED_AT_DESTINATION_CITY: self.arrived_at,
            Milestone.OUT_FOR_DELIVERY: self.out_for_delivery_at,
        }[milestone]


@dataclass(frozen=True, slots=True)
class LaneStats:
    """What a scorecard cell or an estimate level knows: additive counters and named histograms.

    Counters and histogram buckets only ever grow by a fact's contribution, so the table stores them
    with ``ADD`` and two cells (two weeks, two lanes) merge with ``+``.
    """

    counters: Mapping[str, int] = field(default_factory=dict)
    histograms: Mapping[str, Histogram] = field(default_factory=dict)

    def __add__(self, other: LaneStats) -> LaneStats:
        counters = dict(self.counters)
        for name, value in other.counters.items():
            counters[name] = counters.get(name, 0) + value
        histograms = dict(self.histograms)
        for name, histogram in other.histograms.items():
            histograms[name] = histograms[name] + histogram if name in histograms else histogram
        return LaneStats(counters, histograms)

    def count(self, name: str) -> int:
        return int(self.counters.get(name, 0))

    def histogram(self, name: str) -> Histogram:
        return self.histograms.get(name) or Histogram()


def hours_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    hours = (end - start).total_seconds() / 3600.0
    return hours if math.isfinite(hours) and hours >= 0 else None


def remaining_histogram_name(milestone: Milestone) -> str:
    """The histogram of hours from ``milestone`` to delivery (``remaining_created`` is the transit time)."""
    return f"remaining_{milestone.value}"


def clock_histogram_name(milestone: Milestone) -> str:
    """The histogram of delivery-clock hours (net of weekends and holidays, ``domain.delivery_clock``) from
    ``milestone`` to delivery: what the delivery estimates read."""
    return f"clock_{milestone.value}"


def contribution(fact: DeliveryFact) -> LaneStats:
    """What one fact adds to every scorecard cell and estimate level it belongs to.

    Counters: ``parcels``, ``delivered``, ``returned``, ``lost``, ``on_time`` / ``promised`` (delivered by
    the promised latest), ``first_attempt`` (delivered at the first attempt), ``exceptions`` and
    ``exception:<reason>``, ``cost_fen`` / ``costed``. Histograms: ``pickup`` (created → picked up),
    ``remaining_<milestone>`` (milestone → delivered, wall-clock hours: the scorecards' transit) and
    ``clock_<milestone>`` (the same in delivery-clock hours: the estimates') for each milestone the parcel
    passed.
    """
    counters: dict[str, int] = {"parcels": 1, fact.outcome.value: 1}
    histograms: dict[str, Histogram] = {}
    pickup = hours_between(fact.created_at, fact.picked_up_at)
    if pickup is not None:
        histograms["pickup"] = Histogram.of([pickup])
    if fact.outcome is Outcome.DELIVERED and fact.delivered_at is not None:
        clock = DeliveryClock()
        for milestone in Milestone:
            started = fact.milestone_at(milestone)
            remaining = hours_between(started, fact.delivered_at)
            if started is not None and remaining is not None:
                histograms[remaining_histogram_name(milestone)] = Histogram.of([remaining])
                histograms[clock_histogram_name(milestone)] = Histogram.of([clock.hours(started, fact.delivered_at)])
        if fact.promised_latest is not None:
            counters["promised"] = 1
            counters["on_time"] = int(fact.delivered_at <= fact.promised_latest)
        if fact.attempts <= 1:
            counters["first_attempt"] = 1
    if fact.exception_reasons:
        counters["exceptions"] = 1
        for reason in sorted(set(fact.exception_reasons)):
            counters[f"exception:{reason}"] = 1
    if fact.cost_fen is not None:
        counters["cost_fen"] = fact.cost_fen
        counters["costed"] = 1
    return LaneStats(counters, histograms)
