"""Property tests of the order-independent status fold (ARCHITECTURE §4).

Events are drawn from a Kdniao-style code table (REFERENCE.md §1.7): the status follows from the
carrier's code, the content hash from (carrier, tracking number, time, code, text) — so drawing the same
code at the same time twice is exactly a duplicate push. Times sit on a coarse 30-minute grid so that
ties (same second, different scan) happen often.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.domain import status as status_model
from parcelhub.domain.models import CHINA_TZ, Carrier, Provider, TrackingEvent
from parcelhub.domain.status import Status, SubStatus, TrackingState

pytestmark = pytest.mark.unit

TRACKING_NUMBER = "78912345678901"
BASE = datetime(2025, 11, 11, 8, 0, tzinfo=CHINA_TZ)

# (Kdniao Action code, trace text, canonical status, sub-status)
CODES: list[tuple[str, str, Status, SubStatus]] = [
    ("1", "【杭州市】【萧山区】快件已由【杭州萧山网点】揽收", Status.PICKED_UP, SubStatus.NONE),
    ("2", "快件离开【杭州转运中心】，正发往【上海转运中心】", Status.IN_TRANSIT, SubStatus.NONE),
    ("204", "快件已到达【上海转运中心】", Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),
    ("201", "快件已到达【上海市】", Status.ARRIVED_AT_DESTINATION_CITY, SubStatus.NONE),
    ("202", "【上海浦东张江网点】派件员：王师傅 13800001111 正在派件", Status.OUT_FOR_DELIVERY, SubStatus.NONE),
    ("211", "快件已放入【丰巢智能柜】，请凭取件码取件", Status.AVAILABLE_FOR_PICKUP, SubStatus.NONE),
    ("405", "派件异常，收件人电话无人接听", Status.DELIVERY_FAILED, SubStatus.RECIPIENT_UNREACHABLE),
    ("4", "问题件：收件地址不详", Status.EXCEPTION, SubStatus.ADDRESS_PROBLEM),
    ("414", "快件外包装破损", Status.EXCEPTION, SubStatus.DAMAGED),
    ("3", "已签收，签收人：本人", Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT),
    ("304", "已签收，由【菜鸟驿站】代收", Status.DELIVERED, SubStatus.SIGNED_BY_PROXY),
    ("404", "收件人拒收，快件退回", Status.RETURNING, SubStatus.REFUSED),
    ("406", "退货已签收", Status.RETURNED, SubStatus.NONE),
]
RETURN_STATUSES = {Status.RETURNING, Status.RETURNED}
OUTCOMES = {Status.DELIVERED, Status.RETURNED}
PROGRESS = {
    Status.PICKED_UP,
    Status.IN_TRANSIT,
    Status.ARRIVED_AT_DESTINATION_CITY,
    Status.OUT_FOR_DELIVERY,
    Status.AVAILABLE_FOR_PICKUP,
    Status.DELIVERED,
}


def trace(code: tuple[str, str, Status, SubStatus], at: datetime) -> TrackingEvent:
    raw_code, text, status, sub_status = code
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number=TRACKING_NUMBER,
        occurred_at=at,
        status=status,
        sub_status=sub_status,
        raw_code=raw_code,
        raw_text=text,
        location="上海市",
    )


def events_from(codes: list[tuple[str, str, Status, SubStatus]], *, slots: tuple[int, int] = (0, 200)):
    moments = st.integers(*slots).map(lambda slot: BASE + timedelta(minutes=30 * slot))
    return st.builds(trace, st.sampled_from(codes), moments)


def fold(events: list[TrackingEvent], current: TrackingState | None = None) -> TrackingState | None:
    # looked up at call time, so a mutant of the fold installed in the module is what gets tested
    return status_model.fold(events, current)


ANY_EVENT = events_from(CODES)
NON_RETURN = [c for c in CODES if c[2] not in RETURN_STATUSES]
PHASE0 = [c for c in CODES if c[2] not in RETURN_STATUSES | {Status.DELIVERED}]


@given(st.lists(ANY_EVENT, min_size=1, max_size=30), st.data())
def test_any_permutation_and_duplication_gives_the_same_state(events: list[TrackingEvent], data: st.DataObject):
    # Given a set of carrier events, and the same events re-pushed (some twice) in another order
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=20), label="duplicates")
    arrival = data.draw(st.permutations(events + duplicates), label="arrival order")
    # When both are folded
    # Then the state is the same
    assert fold(arrival) == fold(events)


@given(st.lists(ANY_EVENT, max_size=30), st.lists(ANY_EVENT, max_size=30))
def test_split_and_refold_equals_one_fold(first: list[TrackingEvent], second: list[TrackingEvent]):
    # Given events arriving in two batches (an increment after a snapshot; batches may overlap)
    # When the second batch is folded onto the state of the first
    # Then it is the state of folding everything at once
    assert fold(second, fold(first)) == fold(first + second)


@given(
    st.lists(events_from(NON_RETURN, slots=(0, 100)), max_size=20),
    events_from([c for c in CODES if c[2] in OUTCOMES], slots=(0, 100)),
    st.lists(events_from(NON_RETURN, slots=(101, 200)), min_size=1, max_size=10),
)
def test_delivered_and_returned_never_regress_on_a_later_event(
    history: list[TrackingEvent], outcome: TrackingEvent, late: list[TrackingEvent]
):
    # Given a parcel whose history ends in an outcome (delivered, or a completed return)
    state = fold([*history, outcome])
    assert state is not None
    assert state.status in OUTCOMES
    # When scans stamped later than everything arrive (clock skew, a stray re-scan), none of them a return
    after = fold(late, state)
    # Then the outcome stands
    assert after is not None
    assert after.status == state.status


@given(
    st.lists(events_from(PHASE0, slots=(0, 100)), max_size=20),
    events_from([c for c in CODES if c[2] == Status.EXCEPTION], slots=(101, 150)),
    events_from([c for c in CODES if c[2] in PROGRESS], slots=(151, 200)),
)
def test_an_exception_is_cleared_by_later_progress(
    history: list[TrackingEvent], exception: TrackingEvent, progress: TrackingEvent
):
    # Given a parcel in transit that then reports a problem
    state = fold([*history, exception])
    assert state is not None
    assert state.status == Status.EXCEPTION
    # When a later scan shows it moving again (or delivered)
    after = fold([progress], state)
    # Then the exception is cleared: the parcel has the progress status and its sub-status
    assert after is not None
    assert (after.status, after.sub_status) == (progress.status, progress.sub_status)


@given(
    st.lists(events_from(PHASE0, slots=(0, 200)), max_size=20),
    events_from([c for c in CODES if c[2] == Status.DELIVERED], slots=(100, 200)),
    st.lists(events_from([c for c in CODES if c[2] == Status.IN_TRANSIT], slots=(0, 99)), min_size=1, max_size=5),
)
def test_a_late_arriving_earlier_in_transit_never_changes_a_delivered_state(
    history: list[TrackingEvent], delivered: TrackingEvent, stragglers: list[TrackingEvent]
):
    # Given a delivered parcel
    state = fold([*history, delivered])
    assert state is not None
    assert state.status == Status.DELIVERED
    # When in-transit scans stamped before the delivery arrive late (a carrier's delayed batch)
    # Then nothing changes, not even the winning event
    assert fold(stragglers, state) == state


@settings(max_examples=50)
@given(st.lists(ANY_EVENT, min_size=1, max_size=30))
def test_supersedes_agrees_with_fold(events: list[TrackingEvent]):
    # Given events applied one by one the way the store does (conditional on the stored key)
    stored: TrackingState | None = None
    for event in events:
        candidate = status_model.state_of(event)
        if status_model.supersedes(candidate, stored.key if stored else None):
            stored = candidate
    # Then the stored state is the fold of the set
    assert stored == fold(events)


def test_no_events_fold_to_nothing_and_keep_a_given_state():
    # Given no events / a state and no events
    state = fold([trace(CODES[0], BASE)])
    # Then folding nothing yields nothing, and folding nothing onto a state keeps it
    assert fold([]) is None
    assert fold([], state) == state
