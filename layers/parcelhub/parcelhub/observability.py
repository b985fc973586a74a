"""The one Logger / Tracer / Metrics, built lazily.

Nothing happens at import: Powertools reads its environment when a Logger, Tracer or Metrics is
constructed, so they are built on first use (``logger()``, ``metrics()``, ``tracer()``) and a handler
is wrapped with :func:`instrumented`, which applies the decorator stack
``inject_lambda_context -> log_metrics -> capture_lambda_handler`` on the first invocation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def logger() -> Logger:
    """The one logger; its handler redacts personal data (phones, names, addresses, signers in scan texts)
    from every record's message, arguments and extra fields before anything is written."""
    from aws_lambda_powertools import Logger

    from parcelhub.security.masking import RedactingFilter

    log = Logger(service="parcelhub")
    log.registered_handler.addFilter(RedactingFilter())
    return log


@functools.cache
def metrics() -> Metrics:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace="parcelhub", service="parcelhub")


#: what the tracer patches when it is built: the AWS SDK. Not Powertools' default (every library the X-Ray SDK
#: supports that is installed: requests, sqlite3 ...): the carriers' HTTP calls are patched when the first
#: carrier session is made (:func:`trace_requests`), so a function that never calls a carrier does not import
#: requests for its tracer (about 25 ms of CPU on a cold start)
TRACED_MODULES = ("botocore",)


@functools.cache
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service="parcelhub", patch_modules=TRACED_MODULES)


def trace_requests() -> None:
    """Trace ``requests`` calls from now on (a no-op when tracing is off, and after the first call)."""
    tracer().patch(["requests"])


def add_metric(name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
    """Emit one EMF metric, with its own dimensions when given (a single-metric block)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    if dimensions:
        with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace="parcelhub") as metric:
            for key, dim in dimensions.items():
                metric.add_dimension(name=key, value=dim)
        return
    metrics().add_metric(name=name, unit=MetricUnit(unit), value=value)


def instrumented(correlation_id_path: str | None = None) -> Callable[[F], F]:
    """Decorate a Lambda entry point with the Powertools stack, built on first call."""

    def decorate(handler: F) -> F:
        built: list[Callable[..., Any]] = []

        @functools.wraps(handler)
        def entry(event: Any, context: Any) -> Any:
            if not built:
                # responses carry presigned label links and masked views, and an exception's arguments
                # can quote its input: neither is recorded in traces (errors are logged, redacted)
                fn = tracer().capture_lambda_handler(handler, capture_response=False, capture_error=False)
                fn = metrics().log_metrics(capture_cold_start_metric=True)(fn)
                fn = logger().inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)(fn)
                built.append(fn)
            return built[0](event, context)

        return entry  # type: ignore[return-value]

    return decorate
