"""Returns (issue #19 item 2): the return's own flow, and how its parcel's tracking advances it. Pure.

A return IS a shipment of kind ``RETURN``, tracked by the same pipeline as any parcel; its
``return_state`` is the customer-facing flow::

    requested -> pickup_booked -> courier_assigned -> picked_up -> in_transit -> received
                 side states: pickup_failed (the courier could not collect), cancelled, expired

Two writers move it: the returns use case (booking, cancel, the provider's courier/failed notices) with
:func:`transition`, and the parcel's canonical tracking ``Status``/``SubStatus`` with :func:`advance`.
``advance`` is monotone - it only ever moves *forward* along the flow's rank and never leaves a terminal
state - so folding a set of scans gives the same state in any order and with any duplicates (a late,
older scan never moves a return back; tests/unit/domain/test_returns.py checks it with hypothesis).

This module imports nothing of ours but ``domain.status``: ``domain.models`` builds ``ReturnRequest`` and
``PickupBooking`` from the types here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

from parcelhub.domain.status import Status, SubStatus


class ReturnState(StrEnum):
    REQUESTED = "requested"
    PICKUP_BOOKED = "pickup_booked"
    COURIER_ASSIGNED = "courier_assigned"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    PICKUP_FAILED = "pickup_failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ReturnReason(StrEnum):
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    SIZE_OR_FIT = "size_or_fit"
    NO_LONGER_NEEDED = "no_longer_needed"
    #: the receiver refused the forward parcel (linked from its tracking, not asked for)
    REFUSED = "refused"
    #: the carrier sent the forward parcel back (undeliverable), linked from its tracking
    RETURNED_TO_SENDER = "returned_to_sender"
    OTHER = "other"


#: states nothing moves out of
TERMINAL: frozenset[ReturnState] = frozenset({ReturnState.RECEIVED, ReturnState.CANCELLED, ReturnState.EXPIRED})

#: how far along the flow a state is (the order ``advance`` moves in); pickup_failed sits beside
#: courier_assigned: a pickup scan after it still counts
RANK: dict[ReturnState, int] = {
    ReturnState.REQUESTED: 0,
    ReturnState.PICKUP_BOOKED: 1,
    ReturnState.COURIER_ASSIGNED: 2,
    ReturnState.PICKUP_FAILED: 2,
    ReturnState.PICKED_UP: 3,
    ReturnState.IN_TRANSIT: 4,
    ReturnState.RECEIVED: 5,
    ReturnState.CANCELLED: 6,
    ReturnState.EXPIRED: 6,
}

#: the moves the returns use case may make (tracking moves through ``advance``)
ALLOWED: dict[ReturnState, frozenset[ReturnState]] = {
    ReturnState.REQUESTED: frozenset(
        {ReturnState.PICKUP_BOOKED, ReturnState.CANCELLED, ReturnState.EXPIRED, ReturnState.PICKUP_FAILED}
    ),
    ReturnState.PICKUP_BOOKED: frozenset(
        {
            ReturnState.COURIER_ASSIGNED,
            ReturnState.PICKED_UP,
            ReturnState.PICKUP_FAILED,
            ReturnState.CANCELLED,
            ReturnState.EXPIRED,
        }
    ),
    ReturnState.COURIER_ASSIGNED: frozenset(
        {ReturnState.PICKED_UP, ReturnState.PICKUP_FAILED, ReturnState.CANCELLED, ReturnState.EXPIRED}
    ),
    ReturnState.PICKUP_FAILED: frozenset(
        {ReturnState.PICKUP_BOOKED, ReturnState.PICKED_UP, ReturnState.CANCELLED, ReturnState.EXPIRED}
    ),
    ReturnState.PICKED_UP: frozenset({ReturnState.IN_TRANSIT, ReturnState.RECEIVED}),
    ReturnState.IN_TRANSIT: frozenset({ReturnState.RECEIVED}),
    ReturnState.RECEIVED: frozenset(),
    ReturnState.CANCELLED: frozenset(),
    ReturnState.EXPIRED: frozenset(),
}

#: before the parcel is in the carrier's hands: the pickup can still be cancelled
CANCELLABLE: frozenset[ReturnState] = frozenset(
    {ReturnState.REQUESTED, ReturnState.PICKUP_BOOKED, ReturnState.COURIER_ASSIGNED, ReturnState.PICKUP_FAILED}
)


class ReturnTransitionRefused(ValueError):
    """A move the flow does not allow (e.g. cancelling a return already picked up)."""

    def __init__(self, current: ReturnState, wanted: ReturnState) -> None:
        super().__init__(f"a return cannot move from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


def transition(current: ReturnState, wanted: ReturnState) -> ReturnState:
    """The state after the use case's move; the same state again is a no-op (retries are safe)."""
    if wanted == current:
        return current
    if wanted not in ALLOWED[current]:
        raise ReturnTransitionRefused(current, wanted)
    return wanted


def is_terminal(state: ReturnState) -> bool:
    return state in TERMINAL


#: the statuses of a parcel in the carrier's hands on its way (or held on its way) to the warehouse; an
#: exception is one too (the carrier has the parcel to report on it)
_MOVING = frozenset(
    {
        Status.IN_TRANSIT,
        Status.ARRIVED_AT_DESTINATION_CITY,
        Status.OUT_FOR_DELIVERY,
        Status.AVAILABLE_FOR_PICKUP,
        Status.DELIVERY_FAILED,
        Status.EXCEPTION,
        Status.RETURNING,
    }
)


def from_tracking(status: Status, sub_status: SubStatus = SubStatus.NONE) -> ReturnState | None:
    """What one canonical scan of the return's parcel says about the return, or None (nothing).

    A created waybill awaiting pickup (Kdniao StateEx 10 待揽件, Kuaidi100 102 待揽收) is the courier
    assigned; the carrier closing the order (CANCELLED: intercepted, cancelled) before it collected is
    the pickup failed."""
    if status is Status.WAYBILL_CREATED and sub_status is SubStatus.AWAITING_PICKUP:
        return ReturnState.COURIER_ASSIGNED
    if status is Status.PICKED_UP:
        return ReturnState.PICKED_UP
    if status in _MOVING:
        return ReturnState.IN_TRANSIT
    if status in (Status.DELIVERED, Status.RETURNED):
        return ReturnState.RECEIVED
    if status is Status.CANCELLED:
        return ReturnState.PICKUP_FAILED
    return None


def advance(state: ReturnState, status: Status, sub_status: SubStatus = SubStatus.NONE) -> ReturnState:
    """The return's state after a scan: forward only, never out of a terminal state; a failed pickup
    counts only while nothing was collected (a pickup scan after it still moves it on)."""
    target = from_tracking(status, sub_status)
    if target is None or state in TERMINAL:
        return state
    if target is ReturnState.PICKUP_FAILED:
        return target if RANK[state] < RANK[ReturnState.PICKED_UP] else state
    return target if RANK[target] > RANK[state] else state


def fold(state: ReturnState, scans: Iterable[tuple[Status, SubStatus]]) -> ReturnState:
    """Every scan applied with ``advance``: the same answer for any order and any duplicates."""
    for status, sub_status in scans:
        state = advance(state, status, sub_status)
    return state


def forward_return(status: Status, sub_status: SubStatus) -> tuple[ReturnState, ReturnReason] | None:
    """A forward parcel's own return signal: refused by the receiver (RETURNING/REFUSED) or sent back
    (RETURNING with any reason, RETURNED) links a return to its shipment; None when it says nothing."""
    if status is Status.RETURNED:
        reason = ReturnReason.REFUSED if sub_status is SubStatus.REFUSED else ReturnReason.RETURNED_TO_SENDER
        return ReturnState.RECEIVED, reason
    if status is Status.RETURNING:
        reason = ReturnReason.REFUSED if sub_status is SubStatus.REFUSED else ReturnReason.RETURNED_TO_SENDER
        return ReturnState.IN_TRANSIT, reason
    return None


class PickupWindow(BaseModel):
    """When the courier may come (aware datetimes). Whether it is bookable - the end after the start, in the
    future, soon enough - is :func:`window_problems`' (after the shipment is found and returnable: a 404 or
    409 comes first, as the OpenAPI contract's fuzzing expects of schema-valid input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("a pickup window's times must carry a timezone")
        return value


def window_problems(window: PickupWindow, now: datetime, max_days: int) -> list[str]:
    """Why a pickup window cannot be booked now (empty when it can): it must lie in the future and start
    within ``max_days`` (the providers book a few days ahead at most)."""
    problems: list[str] = []
    if window.end <= window.start:
        problems.append("the pickup window must end after it starts")
    if window.start <= now:
        problems.append("the pickup window must start in the future")
    if window.start > now + timedelta(days=max_days):
        problems.append(f"the pickup window must start within {max_days} days")
    return problems


def item_problems(wanted: Iterable[tuple[str, int]], shipped: Iterable[tuple[str, int]]) -> list[str]:
    """Why the returned items are not a subset of the shipped ones (by name and quantity)."""
    available: dict[str, int] = {}
    for name, quantity in shipped:
        available[name] = available.get(name, 0) + quantity
    asked: dict[str, int] = {}
    for name, quantity in wanted:
        asked[name] = asked.get(name, 0) + quantity
    problems = []
    for name, quantity in asked.items():
        if name not in available:
            problems.append(f"item {name!r} was not in the shipment")
        elif quantity > available[name]:
            problems.append(f"item {name!r}: {quantity} returned, {available[name]} shipped")
    return problems


__all__ = [
    "ALLOWED",
    "CANCELLABLE",
    "RANK",
    "TERMINAL",
    "PickupWindow",
    "ReturnReason",
    "ReturnState",
    "ReturnTransitionRefused",
    "advance",
    "fold",
    "forward_return",
    "from_tracking",
    "is_terminal",
    "item_problems",
    "transition",
    "window_problems",
]
