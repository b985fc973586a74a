"""Delivery-date estimates from a lane's own history.

An estimate starts at the latest milestone the parcel passed (created, picked up, arrived at the destination
city, out for delivery) and reads the lane's distribution of delivery-clock hours from that milestone to
delivery (``domain.lanes.clock_histogram_name``), at the most precise level with enough deliveries: the
carrier's city lane, then its province lane, then the carrier nationally, then configured defaults.

* **Pickup cutoff**: before pickup, the parcel leaves with the warehouse's carrier run — today's when it
  was created before the cutoff hour, else tomorrow's — and the estimate adds the lane's picked-up → delivered
  distribution from that run (the created → delivered one mixes both sides of the cutoff).
* **Calendar**: distributions are in delivery-clock hours (``domain.delivery_clock``: weekends and Chinese
  public holidays count less, adjusted working days count fully), laid out on the calendar from the start,
  so an estimate made before National Day stretches over it. Past the years the holiday data covers the
  clock counts weekends only and the basis says ``calendar=weekends-only``.
* **The window**: the distribution is placed on local dates; the most likely date is the median's, the
  window runs from the date of the low quantile to the date of the high one (whole days, as a customer
  reads it), and the confidence is the share of the lane's deliveries that would fall inside it.
* **After the fact**: a re-estimate made later than the milestone drops what would already have arrived.

Pure: the lane statistics and the settings are handed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from parcelhub.domain.delivery_clock import CHINA_TZ, DeliveryClock, local_day, local_midnight
from parcelhub.domain.lanes import HOUR_EDGES, Histogram, LaneLevel, LaneStats, Milestone, clock_histogram_name
from parcelhub.domain.models import DeliveryWindow

#: milestone -> (low, most likely, high) delivery-clock hours to delivery, when no level has enough history
DEFAULT_HOURS: dict[Milestone, tuple[float, float, float]] = {
    Milestone.PICKED_UP: (24.0, 60.0, 120.0),
    Milestone.ARRIVED_AT_DESTINATION_CITY: (4.0, 14.0, 36.0),
    Milestone.OUT_FOR_DELIVERY: (1.0, 4.0, 12.0),
}
_LAST_EDGE = HOUR_EDGES[-1] * 1.5  # where the open-ended last bucket is taken to end
_POINTS = 4  # points placed per histogram bucket (its mass spread evenly inside it)
_LEVELS = (LaneLevel.CITY, LaneLevel.PROVINCE, LaneLevel.NATIONAL)


@dataclass(frozen=True, slots=True)
class EstimateSettings:
    #: a level needs at least this many deliveries to be used (else the next coarser level)
    min_deliveries: int = 20
    #: orders created before this local hour go on the same day's carrier run
    pickup_cutoff_hour: int = 16
    #: when the day's run collects (local hours after midnight)
    pickup_hour: float = 17.5
    #: the window runs from the date of this quantile to the date of the other
    low_quantile: float = 0.08
    high_quantile: float = 0.92
    #: carrier -> picked-up -> delivered (low, most likely, high) delivery-clock hours when no level has
    #: enough history (other milestones use DEFAULT_HOURS; carriers not listed use DEFAULT_HOURS too)
    carrier_defaults: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EstimateRequest:
    carrier: str
    milestone: Milestone  # the latest milestone passed
    milestone_at: datetime  # when it was passed
    as_of: datetime | None = None  # when the estimate is made (drops what would already have arrived)


def next_pickup_run(created_at: datetime, settings: EstimateSettings) -> datetime:
    """When the warehouse's carrier run collects a parcel created at ``created_at``."""
    local = created_at.astimezone(CHINA_TZ)
    day = local.date() if local.hour < settings.pickup_cutoff_hour else local.date() + timedelta(days=1)
    return max(local_midnight(day) + timedelta(hours=settings.pickup_hour), created_at)


def choose_level(
    carrier: str, milestone: Milestone, stats: Mapping[tuple[str, LaneLevel], LaneStats], minimum: int
) -> tuple[LaneLevel, Histogram] | None:
    """The most precise level whose distribution from ``milestone`` holds at least ``minimum`` deliveries."""
    name = clock_histogram_name(milestone)
    for level in _LEVELS:
        cell = stats.get((carrier, level))
        if cell is not None and cell.histogram(name).total >= max(1, minimum):
            return level, cell.histogram(name)
    return None


def _points(histogram: Histogram) -> list[tuple[float, float]]:
    """(hours, weight) points spreading each bucket's count evenly inside the bucket."""
    points: list[tuple[float, float]] = []
    for index, count in enumerate(histogram.counts):
        if not count:
            continue
        low = HOUR_EDGES[index - 1] if index > 0 else 0.0
        high = HOUR_EDGES[index] if index < len(HOUR_EDGES) else _LAST_EDGE
        for k in range(_POINTS):
            points.append((low + (high - low) * (k + 0.5) / _POINTS, count / _POINTS))
    return points


def _default_points(triple: tuple[float, float, float]) -> list[tuple[float, float]]:
    """A triangular distribution over (low, most likely, high), as weighted points."""
    low, mode, high = triple
    steps = 24
    points = []
    for k in range(steps + 1):
        hours = low + (high - low) * k / steps
        weight = (hours - low) / (mode - low) if hours <= mode and mode > low else 1.0
        if hours > mode:
            weight = (high - hours) / (high - mode) if high > mode else 1.0
        points.append((hours, max(weight, 0.05)))
    return points


def _quantile(points: list[tuple[datetime, float]], q: float) -> datetime:
    total = sum(weight for _, weight in points)
    seen = 0.0
    for moment, weight in points:
        seen += weight
        if seen >= q * total:
            return moment
    return points[-1][0]


def estimate(
    request: EstimateRequest,
    stats: Mapping[tuple[str, LaneLevel], LaneStats],
    settings: EstimateSettings,
    clock: DeliveryClock | None = None,
) -> DeliveryWindow:
    """The delivery window for a parcel that passed ``request.milestone`` at ``request.milestone_at``."""
    clock = clock or DeliveryClock()
    start, milestone = request.milestone_at, request.milestone
    if milestone is Milestone.CREATED:  # the lane from the carrier run that will collect it
        start, milestone = next_pickup_run(request.milestone_at, settings), Milestone.PICKED_UP
    chosen = choose_level(request.carrier, milestone, stats, settings.min_deliveries)
    if chosen is not None:
        level, histogram = chosen
        hour_points = _points(histogram)
        basis = f"lane:{level.value}:{request.milestone.value}"
    else:
        default = settings.carrier_defaults.get(request.carrier) if milestone is Milestone.PICKED_UP else None
        hour_points = _default_points(default or DEFAULT_HOURS[milestone])
        basis = f"default:{request.milestone.value}"
    timeline = clock.timeline(start, max(hours for hours, _ in hour_points))
    placed = [(timeline.at(hours), weight) for hours, weight in hour_points]
    as_of = request.as_of
    if as_of is not None and as_of > start:
        still_ahead = [(moment, weight) for moment, weight in placed if moment >= as_of]
        if not still_ahead:  # later than every comparable parcel: the tail, from now
            return _overdue(as_of, basis)
        placed = still_ahead
    placed.sort(key=lambda point: point[0])
    low_day = local_day(_quantile(placed, settings.low_quantile))
    high_day = local_day(_quantile(placed, settings.high_quantile))
    median = _quantile(placed, 0.5)
    floor = as_of if as_of is not None and as_of > start else start
    earliest = max(local_midnight(low_day), floor)
    latest = max(local_midnight(high_day + timedelta(days=1)) - timedelta(seconds=1), earliest)
    inside = sum(weight for moment, weight in placed if low_day <= local_day(moment) <= high_day)
    confidence = round(inside / sum(weight for _, weight in placed), 3)
    if not clock.covers(start, latest):
        basis += ";calendar=weekends-only"
    return DeliveryWindow(
        earliest=earliest,
        most_likely=min(max(median, earliest), latest),
        latest=latest,
        confidence=confidence,
        basis=basis,
    )


def _overdue(as_of: datetime, basis: str) -> DeliveryWindow:
    """Every comparable parcel would have arrived by now: today or the next working day, low confidence."""
    day: date = local_day(as_of) + timedelta(days=1)
    latest = datetime.combine(day, time(23, 59, 59), CHINA_TZ)
    return DeliveryWindow(earliest=as_of, most_likely=as_of, latest=latest, confidence=0.5, basis=f"{basis};overdue")
