"""The demo run's pacing: its budget is a target, never a cut-off for parcels still on their way."""

from __future__ import annotations

import pytest

from sandbox.demo.runner import Demo, DemoSettings

pytestmark = pytest.mark.unit


def _demo(settle_seconds: float = 90.0) -> Demo:
    return Demo(DemoSettings(orders=10, settle_seconds=settle_seconds))


def test_the_budget_deadline_holds_when_the_last_order_was_answered_early() -> None:
    # Given the last order was answered at t=10 and the budget ends at t=140
    demo = _demo()
    demo.state.orders.append({"answered_at": 10.0})
    # Then the drain ends with the budget
    assert demo.drain_deadline(140.0) == 140.0


def test_a_late_last_order_gets_its_settle_time_past_the_budget() -> None:
    # Given a slow machine answered the last order only at t=200 (the budget ended at t=140)
    demo = _demo(settle_seconds=90.0)
    demo.state.orders += [{"answered_at": 12.0}, {"answered_at": 200.0}, {"status_code": None}]
    # Then the drain waits until t=290 for its journey (stages, a stall threshold, a sweep) to settle
    assert demo.drain_deadline(140.0) == 290.0


def test_no_answered_order_keeps_the_budget() -> None:
    assert _demo().drain_deadline(140.0) == 140.0
