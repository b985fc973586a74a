"""The local runner runs a function as many times at once as Lambda would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox.local.lambdas import Functions
from sandbox.local.metrics import Metrics
from sandbox.local.template import Function

pytestmark = pytest.mark.unit

HANDLER = """
import threading

# every invocation waits here until six run at once (or fails after 5 s)
TOGETHER = threading.Barrier(6, timeout=5)


def handler(event, context):
    TOGETHER.wait()
    return event
"""


def function(tmp_path: Path, reserved: int | None) -> Function:
    (tmp_path / "wide_handler_fixture.py").write_text(HANDLER)
    return Function(
        logical="Wide",
        name="fixture-wide",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fixture-wide",
        code_uri=".",
        handler="wide_handler_fixture.handler",
        module="wide_handler_fixture",
        attribute="handler",
        source="wide_handler_fixture.py",
        timeout=30,
        memory=128,
        environment={},
        reserved_concurrency=reserved,
    )


def test_a_function_with_reserved_concurrency_runs_that_many_at_once(tmp_path: Path) -> None:
    """Given a function with ReservedConcurrentExecutions 6 on a runner whose default is 2 at once, when six
    invocations arrive together, then all six run at the same time, as six Lambda environments would (the
    waybill tasks' 50 were once capped at the runner's default, queueing the demo's workflows)."""
    functions = Functions({"Wide": function(tmp_path, reserved=6)}, Metrics(), base_dir=tmp_path, concurrency=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda n: functions.invoke("Wide", {"n": n}), range(6)))
    assert answers == [{"n": n} for n in range(6)]
