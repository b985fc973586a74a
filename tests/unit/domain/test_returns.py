"""The return's flow: allowed moves, terminal states, and the tracking fold's order independence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from parcelhub.domain.returns import (
    PickupWindow,
    ReturnReason,
    ReturnState,
    ReturnTransitionRefused,
    advance,
    fold,
    forward_return,
    item_problems,
    transition,
    window_problems,
)
from parcelhub.domain.status import Status, SubStatus

R = ReturnState
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)

scans = st.lists(st.tuples(st.sampled_from(list(Status)), st.sampled_from(list(SubStatus))), max_size=12)


@given(start=st.sampled_from(list(ReturnState)), events=scans, data=st.data())
def test_given_any_scans_when_folded_shuffled_and_duplicated_then_the_same_state(start, events, data) -> None:
    # Given a set of scans, and the same scans shuffled with some repeated
    shuffled = data.draw(st.permutations(events))
    repeated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=5) if events else st.just([]))
    # When both are folded from the same state / Then the state is the same
    assert fold(start, events) == fold(start, repeated)


@given(events=scans)
def test_given_a_terminal_state_when_scans_arrive_then_it_stays(events) -> None:
    for terminal in (R.RECEIVED, R.CANCELLED, R.EXPIRED):
        assert fold(terminal, events) == terminal


def test_given_in_transit_when_an_older_pickup_scan_arrives_late_then_it_does_not_move_back() -> None:
    assert advance(R.IN_TRANSIT, Status.PICKED_UP) == R.IN_TRANSIT
    assert advance(R.IN_TRANSIT, Status.EXCEPTION, SubStatus.DELAYED) == R.IN_TRANSIT


def test_given_a_booked_pickup_when_the_parcel_is_tracked_then_it_walks_the_flow() -> None:
    state = R.PICKUP_BOOKED
    state = advance(state, Status.WAYBILL_CREATED, SubStatus.AWAITING_PICKUP)
    assert state == R.COURIER_ASSIGNED
    state = advance(state, Status.PICKED_UP)
    assert state == R.PICKED_UP
    state = advance(state, Status.ARRIVED_AT_DESTINATION_CITY)
    assert state == R.IN_TRANSIT
    assert advance(state, Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT) == R.RECEIVED


def test_given_a_failed_pickup_when_the_courier_collects_after_all_then_picked_up() -> None:
    assert advance(R.PICKUP_FAILED, Status.PICKED_UP) == R.PICKED_UP
    assert advance(R.PICKUP_FAILED, Status.WAYBILL_CREATED, SubStatus.AWAITING_PICKUP) == R.PICKUP_FAILED


def test_given_a_picked_up_return_when_cancelled_then_refused() -> None:
    with pytest.raises(ReturnTransitionRefused):
        transition(R.PICKED_UP, R.CANCELLED)
    assert transition(R.PICKUP_BOOKED, R.CANCELLED) == R.CANCELLED
    assert transition(R.CANCELLED, R.CANCELLED) == R.CANCELLED  # a retried cancel is a no-op


@pytest.mark.parametrize("terminal", [R.RECEIVED, R.CANCELLED, R.EXPIRED])
def test_given_a_terminal_state_then_no_move_is_allowed(terminal) -> None:
    for wanted in ReturnState:
        if wanted != terminal:
            with pytest.raises(ReturnTransitionRefused):
                transition(terminal, wanted)


def test_given_forward_tracking_when_refused_or_returned_then_a_linked_return() -> None:
    assert forward_return(Status.RETURNING, SubStatus.REFUSED) == (R.IN_TRANSIT, ReturnReason.REFUSED)
    assert forward_return(Status.RETURNED, SubStatus.NONE) == (R.RECEIVED, ReturnReason.RETURNED_TO_SENDER)
    assert forward_return(Status.DELIVERED, SubStatus.NONE) is None


def test_given_a_window_when_validated_then_it_must_be_ordered_future_and_near() -> None:
    later = NOW + timedelta(hours=2)
    assert "the pickup window must end after it starts" in window_problems(PickupWindow(start=later, end=later), NOW, 7)
    with pytest.raises(ValidationError):
        PickupWindow(start=NOW.replace(tzinfo=None), end=NOW.replace(tzinfo=None) + timedelta(hours=2))
    ok = PickupWindow(start=NOW + timedelta(hours=2), end=NOW + timedelta(hours=4))
    assert window_problems(ok, NOW, 7) == []
    past = PickupWindow(start=NOW - timedelta(hours=2), end=NOW + timedelta(hours=1))
    assert window_problems(past, NOW, 7) == ["the pickup window must start in the future"]
    far = PickupWindow(start=NOW + timedelta(days=9), end=NOW + timedelta(days=9, hours=2))
    assert window_problems(far, NOW, 7) == ["the pickup window must start within 7 days"]


def test_given_returned_items_then_they_must_be_a_subset_of_the_shipped_ones() -> None:
    shipped = [("护肤品", 2), ("面膜", 1)]
    assert item_problems([("护肤品", 1)], shipped) == []
    assert item_problems([("护肤品", 3)], shipped) == ["item '护肤品': 3 returned, 2 shipped"]
    assert item_problems([("鞋子", 1)], shipped) == ["item '鞋子' was not in the shipment"]
