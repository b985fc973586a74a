"""Stall rules: when does a parcel in a given state count as stalled? (pure; ARCHITECTURE §3)

The normalizer (on every status change) and the waybill workflow (on WAYBILL_CREATED) compute the
*due time* with :func:`stall_due` and store it in the sparse stall index; the detector only reads what
is due. A stall *episode* is one (shipment, winning state, rule): its id is stable, so overlapping or
repeated sweeps alert at most once per episode, and a new event (a new winning state) starts a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from parcelhub.domain.policy import StallRules
from parcelhub.domain.status import Status, SubStatus, is_terminal


class StallRule(StrEnum):
    """Rule names as the ``ShipmentStalled`` contract spells them (texts: ``parcelhub.events.alerts.STALL_RULES``)."""

    NO_PICKUP = "no_pickup"
    NO_UPDATE_IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY_TOO_LONG = "out_for_delivery"
    UNCOLLECTED_AT_PICKUP_POINT = "at_pickup_point"
    CARRIER_REPORTED_TIMEOUT = "carrier_timeout"


#: sub-statuses by which a provider itself reports a timeout: they count at once
CARRIER_TIMEOUTS: frozenset[SubStatus] = frozenset(
    {
        SubStatus.CARRIER_TIMEOUT_NOT_SIGNED,
        SubStatus.CARRIER_TIMEOUT_NO_UPDATE,
        SubStatus.CARRIER_TIMEOUT_LOCKER,
        SubStatus.CARRIER_TRACKING_ABORTED,
    }
)


@dataclass(frozen=True, slots=True)
class StallDue:
    rule: StallRule
    threshold_seconds: int
    due_at: datetime
    episode: str


def episode_id(shipment_id: str, state_key: str, rule: StallRule) -> str:
    digest = hashlib.sha256(f"{shipment_id}|{state_key}|{rule}".encode()).hexdigest()[:16]
    return f"{rule}:{digest}"


def stall_due(
    *,
    shipment_id: str,
    status: Status,
    sub_status: SubStatus,
    since: datetime,
    state_key: str,
    destination_province: str,
    rules: StallRules,
) -> StallDue | None:
    """When the shipment counts as stalled if nothing happens, or ``None`` when it cannot stall.

    ``since`` is the time of the winning event (or the waybill's creation for WAYBILL_CREATED);
    ``state_key`` is the winning state's precedence key (the waybill id for WAYBILL_CREATED).
    """
    if is_terminal(status) or status in (Status.PENDING, Status.WAYBILL_FAILED):
        return None
    if sub_status in CARRIER_TIMEOUTS:
        rule, hours = StallRule.CARRIER_REPORTED_TIMEOUT, 0.0
    elif status is Status.WAYBILL_CREATED:
        rule, hours = StallRule.NO_PICKUP, rules.no_pickup_hours
    elif status is Status.OUT_FOR_DELIVERY:
        rule, hours = StallRule.OUT_FOR_DELIVERY_TOO_LONG, rules.out_for_delivery_hours
    elif status is Status.AVAILABLE_FOR_PICKUP:
        rule, hours = StallRule.UNCOLLECTED_AT_PICKUP_POINT, rules.at_pickup_point_hours
    else:
        rule = StallRule.NO_UPDATE_IN_TRANSIT
        hours = rules.in_transit_hours_by_province.get(destination_province, rules.in_transit_hours)
    threshold = timedelta(hours=hours * rules.time_scale)
    return StallDue(
        rule=rule,
        threshold_seconds=int(threshold.total_seconds()),
        due_at=since + threshold,
        episode=episode_id(shipment_id, state_key, rule),
    )
