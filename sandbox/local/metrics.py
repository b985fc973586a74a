"""Count every AWS request the functions make, by service and operation (the benchmark's bill).

botocore ``before-call``/``after-call`` handlers are registered on every client created while the
stack runs (``botocore.session.Session.create_client`` is wrapped, so clients of any session -
boto3's default one, Powertools' own - are seen). A call is attributed to the function whose
invocation is running on the calling thread (:func:`invocation`); calls the runner itself makes
(provisioning, pollers, rule delivery, Step Functions' own Lambda calls) are not counted as function
calls. Lambda invocations (count, duration, GB-seconds) and HTTP API requests are counted too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session

_local = threading.local()


@contextlib.contextmanager
def invocation(function: str) -> Iterator[None]:
    """Mark the current thread as running ``function`` (nested calls restore the outer one)."""
    previous = getattr(_local, "function", None)
    _local.function = function
    try:
        yield
    finally:
        _local.function = previous


def current_function() -> str | None:
    return getattr(_local, "function", None)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._original_create_client: Any = None
        #: called with every client created while installed (the fault injector registers its hooks)
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.started = time.time()
            self.calls: Counter[str] = Counter()  # "dynamodb.PutItem" -> n
            self.calls_by_function: dict[str, Counter[str]] = defaultdict(Counter)
            self.errors: Counter[str] = Counter()
            self.capacity: dict[str, dict[str, float]] = defaultdict(lambda: {"read": 0.0, "write": 0.0, "total": 0.0})
            self.invocations: Counter[str] = Counter()
            self.invocation_errors: Counter[str] = Counter()
            self.duration_ms: defaultdict[str, float] = defaultdict(float)
            self.gb_seconds: defaultdict[str, float] = defaultdict(float)
            self.http_requests: Counter[str] = Counter()
            #: requests to function URLs (no API Gateway: each is only the function's invocation)
            self.function_url_requests: Counter[str] = Counter()
            #: SQS requests the event source mappings made for their batches (ReceiveMessage, DeleteMessageBatch)
            self.event_source_requests: dict[str, Counter[str]] = defaultdict(Counter)
            if not hasattr(self, "in_flight"):  # running invocations survive a reset
                self.in_flight: Counter[str] = Counter()

    # ------------------------------------------------------------------ botocore hooks
    def install(self, register: Callable[[Any], None] | None = None) -> None:
        """Count the calls of every client created from now on; ``register(events)`` adds more hooks
        (the IAM enforcer)."""
        if self._original_create_client is not None:
            return
        original = botocore.session.Session.create_client
        metrics = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("after-call", metrics._after_call)
            if register is not None:
                register(client.meta.events)
            return client

        self._original_create_client = original
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original_create_client is not None:
            botocore.session.Session.create_client = self._original_create_client  # type: ignore[method-assign]
            self._original_create_client = None

    def _after_call(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        function = current_function()
        if function is None or model is None:
            return
        key = f"{model.service_model.service_name}.{model.name}"
        status = getattr(http_response, "status_code", 200)
        with self._lock:
            self.calls[key] += 1
            self.calls_by_function[function][key] += 1
            if status >= 400:
                self.errors[key] += 1
            consumed = (parsed or {}).get("ConsumedCapacity") if isinstance(parsed, dict) else None
            for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
                table = str(entry.get("TableName", "?"))
                self.capacity[table]["total"] += float(entry.get("CapacityUnits", 0) or 0)
                self.capacity[table]["read"] += float(entry.get("ReadCapacityUnits", 0) or 0)
                self.capacity[table]["write"] += float(entry.get("WriteCapacityUnits", 0) or 0)

    # ------------------------------------------------------------------ runner events
    def begin(self, function: str) -> None:
        """An invocation of ``function`` started (``record_invocation`` ends it)."""
        with self._lock:
            self.in_flight[function] += 1

    def record_invocation(self, function: str, seconds: float, memory_mb: int, errored: bool) -> None:
        with self._lock:
            self.in_flight[function] -= 1
            self.invocations[function] += 1
            self.duration_ms[function] += round(seconds * 1000, 3)
            self.gb_seconds[function] += seconds * memory_mb / 1024
            if errored:
                self.invocation_errors[function] += 1

    def record_http(self, route_key: str) -> None:
        with self._lock:
            self.http_requests[route_key] += 1

    def record_function_url(self, key: str) -> None:
        with self._lock:
            self.function_url_requests[key] += 1

    def record_event_source(self, function: str, receives: int, deletes: int) -> None:
        """The SQS requests an event source mapping made for one batch of ``function``."""
        with self._lock:
            self.event_source_requests[function]["ReceiveMessage"] += receives
            self.event_source_requests[function]["DeleteMessageBatch"] += deletes

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "since": self.started,
                "aws_calls": dict(sorted(self.calls.items())),
                "aws_calls_total": sum(self.calls.values()),
                "aws_calls_by_function": {
                    f: dict(sorted(c.items())) for f, c in sorted(self.calls_by_function.items())
                },
                "aws_errors": dict(self.errors),
                "consumed_capacity": {t: dict(v) for t, v in self.capacity.items()},
                "lambda": {
                    function: {
                        "invocations": self.invocations[function],
                        "errors": self.invocation_errors[function],
                        "duration_ms": round(self.duration_ms[function], 3),
                        "gb_seconds": round(self.gb_seconds[function], 6),
                    }
                    for function in sorted(self.invocations)
                },
                "http_requests": dict(sorted(self.http_requests.items())),
                "function_url_requests": dict(sorted(self.function_url_requests.items())),
                "event_source_requests": {f: dict(c) for f, c in sorted(self.event_source_requests.items())},
                "in_flight": {f: n for f, n in sorted(self.in_flight.items()) if n},
            }
