"""Delivery-date estimates for a shipment: at waybill creation and when tracking passes a milestone.

The waybill step estimates once the carrier is known (``WaybillService.record_waybill``: the estimate and,
the first time, the promise ride in the write that records the waybill); the tracking fold re-estimates when
its winning state is a milestone — picked up, arrived at the destination city, out for delivery — and the
estimate rides in the same conditional update as the state (``TrackingWriter``). Each estimate reads the
lane's statistics once (``LaneHistory.lane_stats``: one batched read). The lane's own history wins over
the carrier's estimated delivery time a scan may carry; that is taken (basis ``carrier``) where no lane
level has enough deliveries and the estimate would otherwise rest on the configured defaults.

The tracking fold reads the lanes through a per-warm-process cache (``cache_seconds``, bounded to
``LANE_CACHE_SIZE`` lanes): a lane's cells read less than ``LANE_CACHE_SECONDS`` ago — by the ingest's own
clock, the ``now`` of the estimate — are used again. The cells are all-time aggregates of thousands of
deliveries, so an estimate made from cells up to a minute old differs from a fresh one by at most the
deliveries recorded in that minute; the waybill step reads them fresh.

An estimate is never worth failing a waybill or a tracking update for: a store error while reading the
lanes is logged and counted (``EstimateFailed``) and the write goes ahead without a new estimate.
``EstimatedDeliveryChanged`` is announced by the stream relay from the committed change (``app.outbox``).
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from parcelhub.domain.estimate import EstimateRequest, EstimateSettings, estimate
from parcelhub.domain.lanes import Lane, LaneLevel, LaneStats, Milestone
from parcelhub.domain.models import CHINA_TZ, DeliveryWindow, Shipment
from parcelhub.domain.status import Status
from parcelhub.ports.analytics import LaneHistory
from parcelhub.ports.errors import StoreError

#: the statuses whose arrival re-estimates, and the milestone each one is
MILESTONES: dict[Status, Milestone] = {
    Status.PICKED_UP: Milestone.PICKED_UP,
    Status.ARRIVED_AT_DESTINATION_CITY: Milestone.ARRIVED_AT_DESTINATION_CITY,
    Status.OUT_FOR_DELIVERY: Milestone.OUT_FOR_DELIVERY,
}
#: how long (by the estimate's ``now``) the tracking fold uses a lane's cells again, and how many lanes it keeps
LANE_CACHE_SECONDS = 60.0
LANE_CACHE_SIZE = 512
_Cells = Mapping[tuple[str, LaneLevel], LaneStats]
#: lanes port -> (carrier, service, lane) -> (read at, cells); per warm process
_LANE_CACHE: weakref.WeakKeyDictionary[Any, collections.OrderedDict[tuple[str, str, Lane], tuple[datetime, _Cells]]]
_LANE_CACHE = weakref.WeakKeyDictionary()
CARRIER_BASIS = "carrier"
DEFAULT_BASIS = "default"


@dataclass(frozen=True, slots=True)
class LaneFacts:
    """What an estimate needs of a shipment (none of it changes after creation)."""

    service: str
    lane: Lane
    created_at: datetime

    @classmethod
    def of(cls, shipment: Shipment) -> LaneFacts:
        lane = Lane(
            shipment.origin_province, shipment.origin_city, shipment.destination_province, shipment.destination_city
        )
        return cls(service=shipment.service.value, lane=lane, created_at=shipment.created_at)


def carrier_window(at: datetime) -> DeliveryWindow:
    """The carrier's own estimated delivery time as a window: a date (local midnight) is that whole day."""
    local = at.astimezone(CHINA_TZ)
    if local.time() == time(0):
        end = local + timedelta(days=1) - timedelta(seconds=1)
        return DeliveryWindow(earliest=local, most_likely=local + timedelta(hours=14), latest=end, basis=CARRIER_BASIS)
    return DeliveryWindow(earliest=at, most_likely=at, latest=at, basis=CARRIER_BASIS)


class DeliveryEstimator:
    """Estimates over the lane-history port (cheap to build)."""

    def __init__(
        self,
        lanes: LaneHistory,
        settings: Callable[[], EstimateSettings],
        *,
        metric: Callable[..., None] | None = None,
        log: Callable[[], Any] | None = None,
        cache_seconds: float = 0.0,
    ) -> None:
        self.lanes = lanes
        self.settings = settings
        self._metric = metric
        self._log = log
        self.cache_seconds = cache_seconds

    def at_creation(self, facts: LaneFacts, carrier: str, now: datetime) -> DeliveryWindow | None:
        """The estimate once the waybill names the carrier (from the order's creation, the cutoff applied)."""
        return self._estimate(facts, carrier, Milestone.CREATED, facts.created_at, now)

    def at_scan(
        self,
        facts: LaneFacts,
        carrier: str,
        status: Status,
        occurred_at: datetime,
        now: datetime,
        *,
        carrier_estimate: datetime | None = None,
    ) -> DeliveryWindow | None:
        """The new estimate a winning milestone scan brings: the lane's from that milestone, or the carrier's
        own (when the scan carries one) instead of configured defaults; ``None`` for any other status (the
        estimate stays)."""
        milestone = MILESTONES.get(status)
        if milestone is None:
            return None
        window = self._estimate(facts, carrier, milestone, occurred_at, now)
        if carrier_estimate is not None and (window is None or (window.basis or "").startswith(DEFAULT_BASIS)):
            return carrier_window(carrier_estimate)
        return window

    def _estimate(
        self, facts: LaneFacts, carrier: str, milestone: Milestone, at: datetime, now: datetime
    ) -> DeliveryWindow | None:
        try:
            stats = self._cells(carrier, facts, now)
        except StoreError as error:
            self._count("EstimateFailed", stage="lanes", error=type(error).__name__)
            if self._log is not None:
                self._log().warning("estimate skipped: lane history unreadable", extra={"error": str(error)[:200]})
            return None
        window = estimate(EstimateRequest(carrier, milestone, at, as_of=max(at, now)), stats, self.settings())
        self._count("DeliveryEstimated", milestone=milestone.value, basis=(window.basis or "").split(":")[0])
        return window

    def _cells(self, carrier: str, facts: LaneFacts, now: datetime) -> _Cells:
        """The lane's cells: read (one batched read), or cached when ``cache_seconds`` allows."""
        if self.cache_seconds <= 0:
            return self.lanes.lane_stats([carrier], facts.service, facts.lane)
        try:
            cache = _LANE_CACHE.setdefault(self.lanes, collections.OrderedDict())
        except TypeError:  # a port that cannot be weakly referenced: no cache
            cache = collections.OrderedDict()
        key = (carrier, facts.service, facts.lane)
        hit = cache.get(key)
        if hit is not None and timedelta(0) <= now - hit[0] <= timedelta(seconds=self.cache_seconds):
            return hit[1]
        cells = self.lanes.lane_stats([carrier], facts.service, facts.lane)
        cache[key] = (now, cells)
        cache.move_to_end(key)
        while len(cache) > LANE_CACHE_SIZE:
            cache.popitem(last=False)
        return cells

    def _count(self, name: str, **dimensions: str) -> None:
        if self._metric is not None:
            self._metric(name, 1, **dimensions)
