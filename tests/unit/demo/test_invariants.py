"""The demo's invariants as pure functions: they pass on a healthy run and name what broke otherwise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.domain.models import Carrier, Provider, TrackingEvent
from parcelhub.domain.status import Status, fold
from sandbox.demo.analysis import issued_waybills, parse_alert, stalled_parcels
from sandbox.demo.invariants import (
    all_settled,
    check_all,
    no_denials,
    no_regression,
    observation_key,
    one_waybill_per_order,
    stalls_alerted_once,
)

pytestmark = pytest.mark.unit


def _view(status: str, number: str | None, outcomes: tuple[str, ...] = ("created",)) -> dict[str, Any]:
    return {
        "status": status,
        "tracking_number": number,
        "waybill_attempts": [{"outcome": outcome, "provider": "kdniao", "carrier": "ZTO"} for outcome in outcomes],
    }


# ------------------------------------------------------------------------------------ one waybill per order


def test_one_waybill_each_passes() -> None:
    # Given two shipments, each with one waybill that the carriers issued exactly once
    shipments = {"s1": _view("DELIVERED", "7001"), "s2": _view("IN_TRANSIT", "7002", ("unavailable", "created"))}
    # When checked
    result = one_waybill_per_order(shipments, {"s1": ["7001"], "s2": ["7002"]}, [])
    # Then it holds
    assert result.ok
    assert result.checked == 2


def test_a_second_waybill_at_a_carrier_is_named() -> None:
    # Given a carrier that issued two waybills for the same order (a duplicated create)
    shipments = {"s1": _view("DELIVERED", "7001")}
    # When checked
    result = one_waybill_per_order(shipments, {"s1": ["7001", "7009"]}, [])
    # Then it fails and says which shipment and numbers
    assert not result.ok
    assert "s1" in result.problems[0]
    assert "7009" in result.problems[0]
    assert result.line().startswith("FAIL")


def test_waybill_failed_needs_an_alert_and_no_waybill() -> None:
    # Given a WAYBILL_FAILED shipment
    shipments = {"s1": _view("WAYBILL_FAILED", None, ("unavailable", "unavailable"))}
    # When it was alerted, it holds; when not, it fails; when a carrier issued one anyway, it fails
    assert one_waybill_per_order(shipments, {}, ["s1"]).ok
    assert "without an ops alert" in one_waybill_per_order(shipments, {}, []).problems[0]
    assert not one_waybill_per_order(shipments, {"s1": ["7001"]}, ["s1"]).ok


def test_still_pending_fails() -> None:
    result = one_waybill_per_order({"s1": _view("PENDING", None, ())}, {}, [])
    assert not result.ok
    assert "PENDING" in result.problems[0]


# ------------------------------------------------------------------------------------ no regression


def test_forward_observations_hold_and_a_step_back_is_named() -> None:
    # Given observations moving forward, then a delivered parcel shown in transit again
    t = "2024-11-11T02:00:{:02d}Z"
    forward = [
        (1, "PENDING", None),
        (2, "WAYBILL_CREATED", None),
        (3, "IN_TRANSIT", t.format(3)),
        (4, "DELIVERED", t.format(4)),
    ]
    back = [*forward, (5, "IN_TRANSIT", t.format(5))]
    # When checked, Then the first holds and the second fails naming both statuses
    assert no_regression({"s1": forward}).ok
    result = no_regression({"s1": back})
    assert not result.ok
    assert "DELIVERED then IN_TRANSIT" in result.problems[0]


def test_a_later_exception_after_out_for_delivery_is_not_a_regression() -> None:
    # Given the precedence model: within a phase the later event wins, whatever its rank
    seen = [(1, "OUT_FOR_DELIVERY", "2024-11-11T02:00:01Z"), (2, "DELIVERY_FAILED", "2024-11-11T02:00:05Z")]
    assert no_regression({"s1": seen}).ok
    # and an older winning event shown later is a regression
    assert not no_regression(
        {"s1": [(1, "IN_TRANSIT", "2024-11-11T02:00:09Z"), (2, "ARRIVED_AT_DESTINATION_CITY", "2024-11-11T02:00:05Z")]}
    ).ok


def test_waybill_created_before_tracking() -> None:
    assert observation_key("PENDING", None) < observation_key("WAYBILL_CREATED", None)
    assert observation_key("WAYBILL_CREATED", None) < observation_key("PICKED_UP", "2024-11-11T02:00:00Z")


STAGES = (
    Status.PICKED_UP,
    Status.IN_TRANSIT,
    Status.ARRIVED_AT_DESTINATION_CITY,
    Status.OUT_FOR_DELIVERY,
    Status.DELIVERED,
)


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(5)), dupes=st.lists(st.integers(0, 4), max_size=6), late=st.booleans())
def test_observing_the_real_fold_never_flags_a_regression(order: list[int], dupes: list[int], late: bool) -> None:
    # Given a parcel's scans arriving shuffled and duplicated, plus maybe a late in-transit re-scan
    base = datetime(2024, 11, 11, 10, 0, tzinfo=UTC)
    scans = [
        TrackingEvent(
            carrier=Carrier.ZTO,
            provider=Provider.KDNIAO,
            tracking_number="73100000000301",
            occurred_at=base + timedelta(minutes=10 * n),
            status=status,
            raw_code=str(n),
        )
        for n, status in enumerate(STAGES)
    ]
    if late:
        scans.append(
            TrackingEvent(
                carrier=Carrier.ZTO,
                provider=Provider.KDNIAO,
                tracking_number="73100000000301",
                occurred_at=base + timedelta(hours=5),
                status=Status.IN_TRANSIT,
                raw_code="late",
            )
        )
    arrivals = [scans[i] for i in order] + [scans[i] for i in dupes] + scans[5:]
    # When the OMS observes the stored state after every arrival (the store folds incrementally)
    state = None
    observations: list[tuple[float, str, str | None]] = [(0, "WAYBILL_CREATED", None)]
    for n, event in enumerate(arrivals, 1):
        state = fold([event], state)
        assert state is not None
        observations.append((n, state.status.value, state.occurred_at.isoformat()))
    # Then the check finds no regression
    assert no_regression({"s": observations}).ok


# ------------------------------------------------------------------------------------ stalls


def _stall(sid: str, status: str, last: str = "10:00 scan") -> dict[str, Any]:
    return {"shipment_id": sid, "status": status, "episode": f"rule|{status}|{last}"}


def test_each_stalled_parcel_alerted_exactly_once() -> None:
    # Given two parcels stopped in transit, each alerted once
    assert stalls_alerted_once(
        {"s1": "IN_TRANSIT", "s2": "PICKED_UP"}, [_stall("s1", "IN_TRANSIT"), _stall("s2", "PICKED_UP")]
    ).ok
    # When one is alerted twice for the same episode, or never
    twice = stalls_alerted_once({"s1": "IN_TRANSIT"}, [_stall("s1", "IN_TRANSIT"), _stall("s1", "IN_TRANSIT")])
    never = stalls_alerted_once({"s1": "IN_TRANSIT"}, [])
    # Then it fails, saying how many times
    assert not twice.ok
    assert "alerted 2 times for the same stall" in twice.problems[0]
    assert not never.ok
    assert never.problems == ("s1 stopped in IN_TRANSIT: alerted 0 times",)


def test_an_earlier_resolved_episode_is_not_a_repeat() -> None:
    # Given a parcel alerted "not picked up" under load, then picked up, then stuck in transit and alerted again
    alerts = [_stall("s1", "WAYBILL_CREATED", "no scan yet"), _stall("s1", "IN_TRANSIT")]
    # Then that is one alert where it stopped, not a repeat
    assert stalls_alerted_once({"s1": "IN_TRANSIT"}, alerts).ok
    # but a repeat of any episode, even of a parcel that moved on, is named
    assert not stalls_alerted_once({}, [_stall("s2", "PICKED_UP"), _stall("s2", "PICKED_UP")]).ok


def test_settled_means_final_or_stalled_and_alerted() -> None:
    shipments = {"a": {"status": "DELIVERED"}, "b": {"status": "IN_TRANSIT"}, "c": {"status": "WAYBILL_CREATED"}}
    assert not all_settled(shipments, ["b"], []).ok
    result = all_settled(shipments, ["b"], ["b"])
    assert not result.ok
    assert result.problems == ("1 shipment(s) still WAYBILL_CREATED",)
    assert all_settled({k: v for k, v in shipments.items() if k != "c"}, ["b"], ["b"]).ok


# ------------------------------------------------------------------------------------ from a record


def test_check_all_on_a_recorded_run(record: dict[str, Any]) -> None:
    # Given a recorded run where every order got one waybill and the stalled parcel was alerted once
    alerts = [parse_alert(line) for line in record["alerts"]]
    results = check_all(
        record["shipments"],
        issued_waybills(record["sandboxes"]),
        record["observations"],
        stalled_parcels(record["sandboxes"], record["shipments"]),
        alerts,
    )
    # Then all four hold
    assert [r.ok for r in results] == [True, True, True, True, True], [r.line() for r in results]


def test_check_all_names_a_double_stall_alert(
    record: dict[str, Any], alert_of: Callable[[str, str], dict[str, Any]]
) -> None:
    # Given the same stalled parcel alerted a second time (an overlapping sweep without the claim)
    alerts = [parse_alert(line) for line in [*record["alerts"], alert_of("stall", "shp_c")]]
    results = check_all(
        record["shipments"],
        issued_waybills(record["sandboxes"]),
        record["observations"],
        stalled_parcels(record["sandboxes"], record["shipments"]),
        alerts,
    )
    failed = [r for r in results if not r.ok]
    # Then exactly the stall invariant fails, naming the shipment
    assert [r.name for r in failed] == ["every stalled parcel alerted exactly once"]
    assert failed[0].problems == (
        "shp_c alerted 2 times for the same stall (no_update_in_transit)",
        "shp_c stopped in IN_TRANSIT: alerted 2 times",
    )


def test_no_denials_counts_the_calls_checked_and_names_each_denied_call() -> None:
    # Given a run whose 120 AWS calls were all allowed, Then the invariant holds and reports 120 checked
    clean = no_denials([], 120)
    assert clean.ok
    assert clean.checked == 120
    # Given one call denied (twice), Then it fails naming the principal, the action and the resource once
    denied = {"principal": "ShipmentsApiFunction", "action": "kms:GenerateDataKey", "resource": "arn:aws:kms:k"}
    broken = no_denials([denied, denied], 120)
    assert not broken.ok
    assert broken.problems == ("ShipmentsApiFunction may not kms:GenerateDataKey on arn:aws:kms:k",)
