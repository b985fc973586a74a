"""A shipment's journey as the customer sees it: the canonical milestones and how far it got (pure).

The progress bar of the tracking page shows :data:`MILESTONES` in order. The milestone reached is the
furthest one that the current status or any stored scan stands for, so an exception, a failed delivery
or a return does not erase the progress made before it (it interrupts it: :attr:`Progress.interrupted`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from parcelhub.domain.status import Status


class Milestone(StrEnum):
    ORDERED = "ORDERED"
    PICKED_UP = "PICKED_UP"
    IN_TRANSIT = "IN_TRANSIT"
    IN_DESTINATION_CITY = "IN_DESTINATION_CITY"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"


MILESTONES: tuple[Milestone, ...] = tuple(Milestone)

#: The milestone a status stands for (``None``: it says nothing about progress).
MILESTONE_OF: dict[Status, Milestone | None] = {
    Status.PENDING: Milestone.ORDERED,
    Status.WAYBILL_CREATED: Milestone.ORDERED,
    Status.WAYBILL_FAILED: Milestone.ORDERED,
    Status.PICKED_UP: Milestone.PICKED_UP,
    Status.IN_TRANSIT: Milestone.IN_TRANSIT,
    Status.ARRIVED_AT_DESTINATION_CITY: Milestone.IN_DESTINATION_CITY,
    Status.OUT_FOR_DELIVERY: Milestone.OUT_FOR_DELIVERY,
    Status.AVAILABLE_FOR_PICKUP: Milestone.OUT_FOR_DELIVERY,
    Status.DELIVERY_FAILED: Milestone.OUT_FOR_DELIVERY,  # a delivery was attempted
    Status.DELIVERED: Milestone.DELIVERED,
    Status.EXCEPTION: None,
    Status.RETURNING: None,
    Status.RETURNED: None,
    Status.CANCELLED: None,
}

#: Statuses that stop the journey towards the receiver, for now or for good.
INTERRUPTING: frozenset[Status] = frozenset(
    {Status.EXCEPTION, Status.DELIVERY_FAILED, Status.RETURNING, Status.RETURNED, Status.CANCELLED}
)
#: Statuses after which an estimated delivery window means nothing (hidden on the page).
NO_ESTIMATE: frozenset[Status] = INTERRUPTING | {Status.DELIVERED, Status.WAYBILL_FAILED}


@dataclass(frozen=True, slots=True)
class Progress:
    reached: Milestone
    interrupted: bool

    @property
    def index(self) -> int:
        return MILESTONES.index(self.reached)


def progress(status: Status, history: Iterable[Status] = ()) -> Progress:
    """How far a shipment in ``status`` got, given the statuses of its stored scans."""
    reached = Milestone.ORDERED
    for seen in (status, *history):
        milestone = MILESTONE_OF[seen]
        if milestone is not None and MILESTONES.index(milestone) > MILESTONES.index(reached):
            reached = milestone
    return Progress(reached=reached, interrupted=status in INTERRUPTING)


def shows_estimate(status: Status) -> bool:
    return status not in NO_ESTIMATE
