"""The canonical status model (ARCHITECTURE §4) and the order-independent fold.

The one rule: a shipment's tracking status is a pure function of the *set* of its tracking events,
never of their arrival order. We get that by giving every event a *precedence key* — a total order
— and defining the status as the event with the greatest key. ``max`` over a total order is
commutative, associative and idempotent, so any permutation and any duplication of the same event
set gives the same answer, and the store can apply it incrementally with one conditional update
(``SET ... IF status_key < :new_key``) instead of re-reading the timeline.

The key is ``(phase, occurred_at, rank, content_hash)``:

* ``phase`` makes outcomes sticky. A delivered parcel cannot be moved back by an in-transit scan that
  is stamped later (carrier clock skew, a late re-scan); only a return can follow a delivery, and a
  completed return is final.
* ``occurred_at`` (UTC) lets later progress clear an earlier exception and vice versa.
* ``rank`` (progress rank) breaks ties between events stamped in the same second: the further one wins.
* ``content_hash`` makes the order total, so two different events never compare equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from parcelhub.domain.models import TrackingEvent


class Status(StrEnum):
    """Top-level shipment statuses."""

    PENDING = "PENDING"
    WAYBILL_CREATED = "WAYBILL_CREATED"
    WAYBILL_FAILED = "WAYBILL_FAILED"
    PICKED_UP = "PICKED_UP"
    IN_TRANSIT = "IN_TRANSIT"
    ARRIVED_AT_DESTINATION_CITY = "ARRIVED_AT_DESTINATION_CITY"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    AVAILABLE_FOR_PICKUP = "AVAILABLE_FOR_PICKUP"
    DELIVERED = "DELIVERED"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    EXCEPTION = "EXCEPTION"
    RETURNING = "RETURNING"
    RETURNED = "RETURNED"
    CANCELLED = "CANCELLED"


class SubStatus(StrEnum):
    """Refinement of a status: exception reasons and notable variants. ``NONE`` when plain."""

    NONE = "NONE"
    UNMAPPED = "UNMAPPED"  # the carrier sent a code we have no mapping for (a metric fires too)
    # waiting
    NO_TRACE_YET = "NO_TRACE_YET"
    AWAITING_PICKUP = "AWAITING_PICKUP"
    # transit
    AT_TRANSIT_HUB = "AT_TRANSIT_HUB"
    AT_DELIVERY_STATION = "AT_DELIVERY_STATION"
    REDIRECTED = "REDIRECTED"
    FORWARDED = "FORWARDED"  # handed to another carrier
    CUSTOMS = "CUSTOMS"
    CUSTOMS_CLEARED = "CUSTOMS_CLEARED"
    REDELIVERY = "REDELIVERY"
    # delivered
    SIGNED_BY_RECIPIENT = "SIGNED_BY_RECIPIENT"
    SIGNED_BY_PROXY = "SIGNED_BY_PROXY"
    SIGNED_AT_LOCKER = "SIGNED_AT_LOCKER"
    SIGNED_AFTER_EXCEPTION = "SIGNED_AFTER_EXCEPTION"
    # exceptions
    ADDRESS_PROBLEM = "ADDRESS_PROBLEM"
    WRONG_PHONE = "WRONG_PHONE"
    RECIPIENT_UNREACHABLE = "RECIPIENT_UNREACHABLE"
    REFUSED = "REFUSED"
    DAMAGED = "DAMAGED"
    LOST = "LOST"
    HELD = "HELD"
    DELAYED = "DELAYED"
    MISSORTED = "MISSORTED"
    OUT_OF_SERVICE_AREA = "OUT_OF_SERVICE_AREA"
    CUSTOMS_EXCEPTION = "CUSTOMS_EXCEPTION"
    INTERCEPTED = "INTERCEPTED"
    CANCELLED_BY_SENDER = "CANCELLED_BY_SENDER"
    NO_INFO_AFTER_SHIPPING = "NO_INFO_AFTER_SHIPPING"
    # carrier-detected timeouts (count as a stall at once, see domain.stall)
    CARRIER_TIMEOUT_NOT_SIGNED = "CARRIER_TIMEOUT_NOT_SIGNED"
    CARRIER_TIMEOUT_NO_UPDATE = "CARRIER_TIMEOUT_NO_UPDATE"
    CARRIER_TIMEOUT_LOCKER = "CARRIER_TIMEOUT_LOCKER"
    CARRIER_TRACKING_ABORTED = "CARRIER_TRACKING_ABORTED"


#: Progress rank: how far along the happy path a status is. Used to break same-second ties.
RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.WAYBILL_FAILED: 0,
    Status.WAYBILL_CREATED: 1,
    Status.EXCEPTION: 2,
    Status.DELIVERY_FAILED: 5,
    Status.PICKED_UP: 3,
    Status.IN_TRANSIT: 4,
    Status.ARRIVED_AT_DESTINATION_CITY: 6,
    Status.OUT_FOR_DELIVERY: 7,
    Status.AVAILABLE_FOR_PICKUP: 8,
    Status.DELIVERED: 9,
    Status.RETURNING: 10,
    Status.RETURNED: 11,
    Status.CANCELLED: 12,
}

#: Phase: the sticky part of the precedence key. Anything in a higher phase beats anything in a lower
#: one regardless of time, so outcomes never regress.
PHASE: dict[Status, int] = dict.fromkeys(Status, 0) | {
    Status.DELIVERED: 1,
    Status.RETURNING: 2,
    Status.RETURNED: 3,
    Status.CANCELLED: 4,
}

#: Statuses after which a shipment leaves the stall index and stops being polled.
TERMINAL: frozenset[Status] = frozenset({Status.DELIVERED, Status.RETURNED, Status.CANCELLED, Status.WAYBILL_FAILED})

#: Statuses a carrier event can carry (the rest are set by the waybill workflow).
TRACKING_STATUSES: frozenset[Status] = frozenset(Status) - {
    Status.PENDING,
    Status.WAYBILL_FAILED,
}


def is_terminal(status: Status) -> bool:
    return status in TERMINAL


def to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    return moment.astimezone(UTC)


def precedence_key(status: Status, occurred_at: datetime, content_hash: str) -> str:
    """The total order of events as a string that sorts the same way (DynamoDB compares strings).

    ``"<phase>|<UTC ISO, fixed width>|<rank, 2 digits>|<hash>"``.
    """
    stamp = to_utc(occurred_at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{PHASE[status]}|{stamp}|{RANK[status]:02d}|{content_hash}"


class TrackingState(NamedTuple):
    """What the fold yields: the winning event's status and the key the store conditions on."""

    status: Status
    sub_status: SubStatus
    occurred_at: datetime
    key: str
    event_hash: str


def state_of(event: TrackingEvent) -> TrackingState:
    return TrackingState(
        status=event.status,
        sub_status=event.sub_status,
        occurred_at=event.occurred_at,
        key=precedence_key(event.status, event.occurred_at, event.content_hash),
        event_hash=event.content_hash,
    )


def fold(events: Iterable[TrackingEvent], current: TrackingState | None = None) -> TrackingState | None:
    """Fold tracking events into the shipment's tracking state.

    Pure, order-independent and idempotent: ``fold(a + b) == fold(b, fold(a))`` for any split, any
    permutation and any duplication. ``None`` when there are no events.
    """
    best = current
    for event in events:
        candidate = state_of(event)
        if best is None or candidate.key > best.key:
            best = candidate
    return best


def supersedes(candidate: TrackingState, current_key: str | None) -> bool:
    """Would ``candidate`` replace a stored state whose key is ``current_key``?"""
    return current_key is None or candidate.key > current_key
