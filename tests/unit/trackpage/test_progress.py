"""The customer's milestones: how far a parcel got, whatever interrupted it."""

from __future__ import annotations

import pytest

from parcelhub.domain.progress import MILESTONE_OF, Milestone, progress, shows_estimate
from parcelhub.domain.status import Status


def test_every_status_is_placed() -> None:
    assert set(MILESTONE_OF) == set(Status)


@pytest.mark.parametrize(
    ("status", "history", "reached", "interrupted"),
    [
        (Status.PENDING, [], Milestone.ORDERED, False),
        (Status.WAYBILL_CREATED, [], Milestone.ORDERED, False),
        (Status.IN_TRANSIT, [Status.PICKED_UP, Status.IN_TRANSIT], Milestone.IN_TRANSIT, False),
        (Status.AVAILABLE_FOR_PICKUP, [Status.OUT_FOR_DELIVERY], Milestone.OUT_FOR_DELIVERY, False),
        (Status.DELIVERED, [Status.OUT_FOR_DELIVERY], Milestone.DELIVERED, False),
        # an exception keeps the progress made before it
        (Status.EXCEPTION, [Status.PICKED_UP, Status.ARRIVED_AT_DESTINATION_CITY], Milestone.IN_DESTINATION_CITY, True),
        (Status.DELIVERY_FAILED, [Status.IN_TRANSIT], Milestone.OUT_FOR_DELIVERY, True),
        (Status.RETURNED, [Status.IN_TRANSIT, Status.RETURNING], Milestone.IN_TRANSIT, True),
        (Status.CANCELLED, [], Milestone.ORDERED, True),
    ],
)
def test_progress(status: Status, history: list[Status], reached: Milestone, interrupted: bool) -> None:
    result = progress(status, history)
    assert (result.reached, result.interrupted) == (reached, interrupted)


@pytest.mark.parametrize("status", list(Status))
def test_an_estimate_only_while_on_the_way(status: Status) -> None:
    on_the_way = {
        Status.PENDING,
        Status.WAYBILL_CREATED,
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.ARRIVED_AT_DESTINATION_CITY,
        Status.OUT_FOR_DELIVERY,
        Status.AVAILABLE_FOR_PICKUP,
    }
    assert shows_estimate(status) is (status in on_the_way)
