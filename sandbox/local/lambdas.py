"""The template's functions, run in this process with their real handlers.

* CodeUri ``functions/<dir>`` + Handler ``handler.lambda_handler`` -> ``functions.<dir>.handler``.
* All functions share the process, so the UNION of their resolved environments goes into
  ``os.environ`` (:func:`environment_union` refuses a variable with two different values).
* moto's single Lambda invocation point, ``LambdaFunction._invoke_lambda``, is replaced by a call of
  the real handler: Step Functions Lambda tasks, direct ``Invoke`` and SNS->Lambda run our code. An
  exception becomes a Lambda function error whose payload is ``{"errorType": <exception class name>,
  "errorMessage", "stackTrace"}`` - moto's Step Functions interpreter takes ``errorType`` as the
  error name, so ASL ``Retry``/``Catch`` on ``CarrierUnavailable`` match exactly as on AWS.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sandbox.local.faults import KILLED_ERROR, FunctionKilled
from sandbox.local.metrics import Metrics, invocation
from sandbox.local.template import Function

log = logging.getLogger("parcelhub.local")


class EnvironmentConflict(Exception):
    pass


def environment_union(functions: Mapping[str, Function]) -> dict[str, str]:
    """One environment for every function; a variable two functions set differently is an error."""
    union: dict[str, str] = {}
    owner: dict[str, str] = {}
    conflicts: list[str] = []
    for logical, function in sorted(functions.items()):
        for name, value in function.environment.items():
            if name in union and union[name] != value:
                conflicts.append(f"{name}: {owner[name]}={union[name]!r} vs {logical}={value!r}")
            else:
                union[name] = value
                owner[name] = logical
    if conflicts:
        raise EnvironmentConflict("functions disagree on environment variables: " + "; ".join(conflicts))
    return union


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """A handler raised; carries Lambda's error payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload['errorType']}: {payload['errorMessage']}")
        self.payload = payload


class Functions:
    """Import and invoke the template's functions in-process."""

    def __init__(
        self, functions: Mapping[str, Function], metrics: Metrics, base_dir: Path | None = None, concurrency: int = 4
    ) -> None:
        self.functions = dict(functions)
        self.base_dir = (base_dir or Path.cwd()).resolve()
        self.by_name = {f.name: f for f in functions.values()}
        self.metrics = metrics
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._import_lock = threading.Lock()
        # Lambda runs a function in several execution environments at once, each handed one event at a
        # time, so handlers must not keep per-invocation state in module globals. A function with
        # ReservedConcurrentExecutions runs that many at once, as on AWS (the waybill tasks' 50: a cap of 4
        # here queued the demo's workflow tasks behind each other for most of their order -> waybill time);
        # any other function up to `concurrency` (the account's pool, which the local stack cannot share).
        self._slots = {
            logical: threading.BoundedSemaphore(f.reserved_concurrency or concurrency)
            for logical, f in functions.items()
        }

    # ------------------------------------------------------------------ handlers
    def handler(self, logical: str) -> Callable[..., Any]:
        with self._import_lock:
            if logical not in self._handlers:
                module = load_handler_module(self.functions[logical], self.base_dir)
                self._handlers[logical] = getattr(module, self.functions[logical].attribute)
            return self._handlers[logical]

    def preload(self) -> dict[str, str]:
        """Import every handler now; returns ``{logical: problem}`` for those that cannot be imported."""
        problems: dict[str, str] = {}
        for logical, function in self.functions.items():
            try:
                self.handler(logical)
            except ModuleNotFoundError as exc:
                problems[logical] = f"{function.module} not found ({exc.name})"
            except Exception as exc:  # report and keep going: the other functions still run
                problems[logical] = f"{function.module}: {exc.__class__.__name__}: {exc}"
        return problems

    # ------------------------------------------------------------------ invocation
    def invoke(self, logical: str, event: Any) -> Any:
        """Run the handler like Lambda does; raises :class:`FunctionError` when it raises."""
        function = self.functions[logical]
        slot = self._slots[logical]
        slot.acquire()
        self.metrics.begin(logical)
        started = time.monotonic()
        errored = False
        try:
            request_id = str(uuid.uuid4())
            context = LambdaContext(
                function_name=function.name,
                function_version="$LATEST",
                invoked_function_arn=function.arn,
                memory_limit_in_mb=function.memory,
                aws_request_id=request_id,
                log_group_name=f"/aws/lambda/{function.name}",
                log_stream_name=time.strftime("%Y/%m/%d") + f"/[$LATEST]{request_id.replace('-', '')}",
                deadline=started + function.timeout,
            )
            with invocation(logical):
                try:
                    handler = self.handler(logical)
                    return handler(event, context)
                except FunctionKilled as killed:  # the runner stopped it mid-step (an injected fault)
                    errored = True
                    raise FunctionError(
                        {
                            "errorType": KILLED_ERROR,
                            "errorMessage": f"{request_id} Task timed out ({killed})",
                            "requestId": request_id,
                            "stackTrace": [],
                        }
                    ) from None
                except Exception as exc:
                    errored = True
                    raise FunctionError(
                        {
                            "errorType": exc.__class__.__name__,
                            "errorMessage": str(exc),
                            "requestId": request_id,
                            "stackTrace": traceback.format_exception(exc)[-5:],
                        }
                    ) from exc
        finally:
            elapsed = time.monotonic() - started
            slot.release()
            self.metrics.record_invocation(logical, elapsed, function.memory, errored)
            if elapsed > function.timeout:
                log.warning(
                    "%s ran %.1f s, over its %d s timeout (Lambda would have killed it)",
                    logical,
                    elapsed,
                    function.timeout,
                )

    # ------------------------------------------------------------------ moto's invocation point
    def invoke_for_moto(self, function_name: str, event: Any) -> tuple[str, bool]:
        """What moto's Lambda invocation point must return: ``(JSON payload, is_error)``."""
        function = self.by_name.get(function_name)
        if function is None:
            missing = {
                "errorType": "ResourceNotFoundException",
                "errorMessage": f"{function_name} is not a template function",
            }
            return json.dumps(missing), True
        payload = json.loads(event) if isinstance(event, str | bytes) and event else event
        try:
            result = self.invoke(function.logical, payload if payload is not None else {})
        except FunctionError as exc:
            log.info("%s raised %s", function.logical, exc)
            return json.dumps(exc.payload), True
        return json.dumps(result), False


def load_handler_module(function: Function, base_dir: Path) -> ModuleType:
    """The handler's module: imported by its dotted name (``functions.<dir>.handler``) when that name
    is the template's file; otherwise (a fixture template outside the installed packages) loaded from
    the file itself under a private name."""
    source = (base_dir / function.source).resolve()
    try:
        spec = importlib.util.find_spec(function.module)
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.origin and Path(spec.origin).resolve() == source:
        return importlib.import_module(function.module)
    if not source.is_file():
        raise ModuleNotFoundError(f"no handler file {source}", name=function.module)
    name = "_parcelhub_local_" + hashlib.sha256(str(source).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    file_spec = importlib.util.spec_from_file_location(name, source)
    assert file_spec is not None
    assert file_spec.loader is not None
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module
    try:
        file_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
