"""The ``smart`` carrier choice: the cheapest candidate whose estimated delivery keeps the promise (pure).

The candidates are those the rules allow (``domain.selection.allowed_candidates``); each comes as an
:class:`Offer` — its tariff price, its lane estimate at creation, its record on the lane, whether its
provider's circuit is open. Then:

1. **Blocked**: an open circuit (``circuit_open``); the carrier's daily intake cap reached or its
   e-waybill balance used up (``cap_reached``, ``balance_exhausted``: ``domain.capacity``); on a lane
   with at least ``min_deliveries`` deliveries (the city lane, else the province lane), an on-time rate
   below ``min_on_time_rate`` (``lane_on_time``) or an exception rate above ``max_exception_rate``
   (``lane_exceptions``).
2. **The promise** (``promise_for``): the first matching :class:`~parcelhub.domain.policy.PromiseRule` gives
   the days; the parcel is due by the end of that local day. An offer meets it when its window's latest
   moment is no later.
3. **The choice**: the cheapest available offer meeting the promise (``cheapest_meeting_promise``; ties:
   the earlier latest delivery, then the rules' order). If none meets it: the fastest available offer,
   flagged (``fastest_promise_not_met``). If every offer is blocked: the fastest one blocked only by its lane
   record, else the fastest of all, flagged (``all_blocked_fastest``).
4. **The plan** the workflow tries: the choice, then the other available offers in rank order; when none
   of them goes through another provider, the best blocked offer through another provider is kept as the
   backup (the workflow still skips an open circuit when it gets there).

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from parcelhub.domain.capacity import CapacityBlock
from parcelhub.domain.delivery_clock import local_day, local_midnight
from parcelhub.domain.lanes import LaneLevel, LaneStats
from parcelhub.domain.models import CustomerTier, DeliveryWindow, SelectionOption, SelectionRecord, ServiceLevel
from parcelhub.domain.policy import CarrierCandidate, LaneThresholds, PromiseRule, SmartPolicy
from parcelhub.domain.selection import normalize_province

#: an offer without a tariff price sorts after every priced one
_NO_PRICE = 10**12
#: the lane levels whose record can block a carrier, most precise first
_JUDGED_LEVELS = (LaneLevel.CITY, LaneLevel.PROVINCE)


class Reason(StrEnum):
    CHEAPEST_MEETING_PROMISE = "cheapest_meeting_promise"
    FASTEST_PROMISE_NOT_MET = "fastest_promise_not_met"
    ALL_BLOCKED_FASTEST = "all_blocked_fastest"


class Blocked(StrEnum):
    CIRCUIT_OPEN = "circuit_open"
    CAP_REACHED = "cap_reached"
    BALANCE_EXHAUSTED = "balance_exhausted"
    LANE_ON_TIME = "lane_on_time"
    LANE_EXCEPTIONS = "lane_exceptions"


@dataclass(frozen=True, slots=True)
class LaneRecord:
    """A carrier's record on the lane at the most precise level with enough deliveries (else the most
    precise level it has any history at, not judged)."""

    deliveries: int = 0
    on_time_rate: float | None = None
    exception_rate: float | None = None
    judged: bool = False


def lane_record(stats: Mapping[tuple[str, LaneLevel], LaneStats], carrier: str, minimum: int) -> LaneRecord:
    first: LaneRecord | None = None
    for level in _JUDGED_LEVELS:
        cell = stats.get((carrier, level))
        if cell is None:
            continue
        promised, parcels = cell.count("promised"), cell.count("parcels")
        record = LaneRecord(
            deliveries=cell.count("delivered"),
            on_time_rate=round(cell.count("on_time") / promised, 4) if promised else None,
            exception_rate=round(cell.count("exceptions") / parcels, 4) if parcels else None,
            judged=cell.count("delivered") >= minimum,
        )
        if record.judged:
            return record
        first = first or record
    return first or LaneRecord()


@dataclass(frozen=True, slots=True)
class Offer:
    """What is known of one candidate for this order."""

    candidate: CarrierCandidate
    service: ServiceLevel
    price_fen: int | None
    window: DeliveryWindow
    lane: LaneRecord = LaneRecord()
    circuit_open: bool = False
    capacity: CapacityBlock | None = None


@dataclass(frozen=True, slots=True)
class Promise:
    name: str
    by: datetime


@dataclass(frozen=True, slots=True)
class SmartChoice:
    """The record to store and the order the workflow tries the candidates in."""

    record: SelectionRecord
    plan: tuple[CarrierCandidate, ...]


def _matches(rule: PromiseRule, tier: CustomerTier, origin: str, destination: str) -> bool:
    if rule.customer_tier is not None and rule.customer_tier != tier:
        return False
    same = normalize_province(origin) == normalize_province(destination)
    if rule.within_province is not None and rule.within_province != same:
        return False
    wanted = rule.destination_provinces
    return wanted is None or normalize_province(destination) in {normalize_province(p) for p in wanted}


def promise_for(
    policy: SmartPolicy, tier: CustomerTier, origin_province: str, destination_province: str, created_at: datetime
) -> Promise:
    """The first matching promise rule's deadline: the end of the local day ``days`` after the order's."""
    rule = next((r for r in policy.promises if _matches(r, tier, origin_province, destination_province)), None)
    days = rule.days if rule is not None else policy.default_days
    end = local_midnight(local_day(created_at) + timedelta(days=days + 1)) - timedelta(seconds=1)
    return Promise(rule.name if rule is not None else "default", end)


def blocked_by(offer: Offer, thresholds: LaneThresholds) -> Blocked | None:
    if offer.circuit_open:
        return Blocked.CIRCUIT_OPEN
    if offer.capacity is not None:
        return Blocked(offer.capacity.value)
    lane = offer.lane
    if not lane.judged:
        return None
    if lane.on_time_rate is not None and lane.on_time_rate < thresholds.min_on_time_rate:
        return Blocked.LANE_ON_TIME
    if lane.exception_rate is not None and lane.exception_rate > thresholds.max_exception_rate:
        return Blocked.LANE_EXCEPTIONS
    return None


def choose(offers: Sequence[Offer], promise: Promise, policy: SmartPolicy) -> SmartChoice:
    """Rank the offers (given in the rules' order) and pick one, as the module says."""
    if not offers:
        raise ValueError("the smart strategy needs at least one candidate")
    order = {id(o): i for i, o in enumerate(offers)}
    blocked = {id(o): blocked_by(o, policy.lane) for o in offers}
    meets = {id(o): o.window.latest <= promise.by for o in offers}

    def cheap(o: Offer) -> tuple[int, datetime, int]:
        return (o.price_fen if o.price_fen is not None else _NO_PRICE, o.window.latest, order[id(o)])

    def fast(o: Offer) -> tuple[datetime, int, int]:
        return (o.window.latest, o.price_fen if o.price_fen is not None else _NO_PRICE, order[id(o)])

    available = [o for o in offers if blocked[id(o)] is None]
    meeting = sorted((o for o in available if meets[id(o)]), key=cheap)
    late = sorted((o for o in available if not meets[id(o)]), key=fast)
    rest = sorted((o for o in offers if blocked[id(o)] is not None), key=fast)
    if meeting:
        reason = Reason.CHEAPEST_MEETING_PROMISE
    elif late:
        reason = Reason.FASTEST_PROMISE_NOT_MET
    else:
        reason = Reason.ALL_BLOCKED_FASTEST
        # a carrier failing on the lane can still carry it; a full one or an open circuit cannot
        hard = (Blocked.CIRCUIT_OPEN, Blocked.CAP_REACHED, Blocked.BALANCE_EXHAUSTED)
        rest = sorted(rest, key=lambda o: blocked[id(o)] in hard)
    ranked = [*meeting, *late, *rest]
    chosen = ranked[0]

    plan = [o for o in ranked if o is chosen or blocked[id(o)] is None]
    if len({o.candidate.provider for o in plan}) < 2:
        backup = next((o for o in ranked if o.candidate.provider != chosen.candidate.provider), None)
        if backup is not None:
            plan.append(backup)

    record = SelectionRecord(
        strategy="smart",
        provider=chosen.candidate.provider,
        carrier=chosen.candidate.carrier,
        reason=reason.value,
        promise=promise.name,
        promise_by=promise.by,
        promise_met=meets[id(chosen)],
        rules_provider=offers[0].candidate.provider,
        rules_carrier=offers[0].candidate.carrier,
        options=[_option(o, meets[id(o)], blocked[id(o)]) for o in ranked],
    )
    return SmartChoice(record=record, plan=tuple(o.candidate for o in plan))


def _option(offer: Offer, meets: bool, blocked: Blocked | None) -> SelectionOption:
    return SelectionOption(
        provider=offer.candidate.provider,
        carrier=offer.candidate.carrier,
        service=offer.service,
        price_fen=offer.price_fen,
        window=offer.window,
        meets_promise=meets,
        lane_deliveries=offer.lane.deliveries,
        lane_on_time_rate=offer.lane.on_time_rate,
        lane_exception_rate=offer.lane.exception_rate,
        available=blocked is None,
        blocked=blocked.value if blocked is not None else None,
    )
