"""Faults on demand inside the local stack: an AWS call of a function that fails, or a function killed
in the middle of its work (``POST /_local/faults``; the carrier sandboxes have their own faults).

``{"failures": [{"function": "WaybillTasksFunction", "call": "s3.PutObject", "rate": 1.0, "times": 30,
"code": "InternalError"}], "kills": [{"function": "WaybillTasksFunction", "call": "s3.PutObject",
"rate": 0.5, "times": 10}]}``

* a *failure* answers the call with AWS's error (``code``, HTTP 500 unless a 4xx code is named) before it
  reaches moto - the label store failing, say;
* a *kill* stops the invocation right there, as Lambda does when a function times out or its runtime
  dies: nothing after that point runs, and the invocation ends with ``Sandbox.Timedout`` (the error
  Step Functions reports for a Lambda task that timed out) - a task killed after the provider created the
  order but before the label was stored, say.

``call`` is ``<service>.<Operation>`` as the metrics name it; ``rate`` the chance that a matching call is
hit; ``times`` how many hits at most (then the fault is spent). Every hit is counted
(``/_local/metrics`` -> ``faults_hit``).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sandbox.local.metrics import current_function

#: the Lambda error type of an invocation the runner killed (a timed-out function)
KILLED_ERROR = "Sandbox.Timedout"


class TaskKilled(BaseException):
    """The runner killed the invocation (not an ``Exception``: like a timeout, nothing catches it)."""


@dataclass
class Fault:
    kind: str  # "failure" | "kill"
    function: str | None
    call: str
    rate: float = 1.0
    times: int | None = None
    code: str = "InternalError"
    hits: int = 0

    def strikes(self, function: str, call: str, draw: float) -> bool:
        if self.call != call or (self.function is not None and self.function != function):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return draw < self.rate


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.faults: list[Fault] = []
        self.hit: Counter[str] = Counter()

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        faults = [_fault("failure", f) for f in body.get("failures", [])] + [
            _fault("kill", f) for f in body.get("kills", [])
        ]
        with self._lock:
            self.faults = faults
        return self.describe()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": [f.__dict__ for f in self.faults], "faults_hit": dict(self.hit)}

    def register(self, events: Any) -> None:
        events.register("before-call", self._before_call)

    def _before_call(self, model: Any = None, **_: Any) -> Any:
        function = current_function()
        if function is None or model is None or not self.faults:
            return None
        call = f"{model.service_model.service_name}.{model.name}"
        with self._lock:
            struck = next((f for f in self.faults if f.strikes(function, call, self._random.random())), None)
            if struck is None:
                return None
            struck.hits += 1
            self.hit[f"{struck.kind}:{call}"] += 1
        if struck.kind == "kill":
            raise TaskKilled(f"{function} killed before {call}")
        return _error_response(struck.code)


def _fault(kind: str, spec: dict[str, Any]) -> Fault:
    return Fault(
        kind=kind,
        function=spec.get("function"),
        call=str(spec["call"]),
        rate=float(spec.get("rate", 1.0)),
        times=None if spec.get("times") is None else int(spec["times"]),
        code=str(spec.get("code", "InternalError")),
    )


def _error_response(code: str) -> Any:
    from botocore.awsrequest import AWSResponse

    status = 400 if code.endswith(("Exception", "Denied")) and "Internal" not in code else 500
    http = AWSResponse("https://local.invalid/", status, {}, None)  # type: ignore[arg-type]
    parsed = {
        "Error": {"Code": code, "Message": f"injected fault: {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return http, parsed
