"""One cold start, in the fresh interpreter ``bench.cold_start`` spawns (``python -m bench.cold_probe``).

    python -m bench.cold_probe handler <input.json> <output.json>   # import the handler, serve ONE event
    python -m bench.cold_probe minimal <input.json> <output.json>   # import boto3, make the recorded calls
    python -m bench.cold_probe boto3 <input.json> <output.json>     # import boto3 alone

Only the standard library is imported before the clock starts. Two patches are put in place the moment
botocore's own modules are imported (an import hook: nothing of botocore is imported early, so the import
time stays the handler's): ``Endpoint._send`` is timed (the time spent waiting on AWS: the HTTP round trip
of every request, retries included) and ``BaseClient._make_api_call`` records each call (service,
operation, parameters), so the minimal handler can make exactly the same calls with plain boto3.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import importlib
import json
import sys
import time
from types import ModuleType
from typing import Any

#: the time spent in ``Endpoint._send`` (ms) and the calls made, in order
WAITED: list[float] = []
CALLS: list[dict[str, Any]] = []


def _patch_endpoint(module: ModuleType) -> None:
    send = module.Endpoint._send

    def timed_send(self: Any, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return send(self, request)
        finally:
            WAITED.append((time.perf_counter() - started) * 1000)

    module.Endpoint._send = timed_send


def _patch_client(module: ModuleType) -> None:
    make_api_call = module.BaseClient._make_api_call

    def recorded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        call = {"service": self.meta.service_model.service_name, "operation": operation_name}
        call["params"] = copy.deepcopy(api_params)
        waited_before, started = sum(WAITED), time.perf_counter()
        try:
            return make_api_call(self, operation_name, api_params)
        except Exception as exc:
            call["error"] = type(exc).__name__
            raise
        finally:
            call["ms"] = (time.perf_counter() - started) * 1000
            call["waited_ms"] = sum(WAITED) - waited_before
            CALLS.append(call)

    module.BaseClient._make_api_call = recorded


PATCHES = {"botocore.endpoint": _patch_endpoint, "botocore.client": _patch_client}


class _PatchOnImport:
    """A meta path finder that lets the normal finders load a module, then patches it."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module = _patched(spec.loader.exec_module, PATCHES[name])  # type: ignore[method-assign]
                return spec
        return None


def _patched(exec_module: Any, patch: Any) -> Any:
    def load(module: ModuleType) -> None:
        exec_module(module)
        patch(module)

    return load


class Context:
    """The attributes of the Python runtime's Lambda context object."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.function_name = fields["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]
        self.aws_request_id = fields["aws_request_id"]
        self.log_group_name = fields["log_group_name"]
        self.log_stream_name = fields["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + fields["remaining_ms"] / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# ------------------------------------------------------------------------------- parameters as JSON


def encode(value: Any) -> Any:
    """Call parameters as JSON (bytes and datetimes tagged, a readable stream read)."""
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        return {"__datetime__": value.isoformat()}
    if hasattr(value, "getvalue"):
        return encode(value.getvalue())
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        if set(value) == {"__datetime__"}:
            return dt.datetime.fromisoformat(value["__datetime__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------- modes


def run_handler(spec: dict[str, Any]) -> dict[str, Any]:
    cpu, started = time.process_time(), time.perf_counter()
    module = importlib.import_module(spec["module"])
    imported = time.perf_counter()
    loaded = len(sys.modules)
    boto3_at_import = "boto3" in sys.modules
    out: dict[str, Any] = {}
    try:
        out["result"] = getattr(module, spec["attribute"])(spec["event"], Context(spec["context"]))
    except Exception as exc:
        out["error"] = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
    done = time.perf_counter()
    return out | {
        "cpu_ms": (time.process_time() - cpu) * 1000,
        "import_ms": (imported - started) * 1000,
        "invoke_ms": (done - imported) * 1000,
        "modules_at_import": loaded,
        "modules_after_invoke": len(sys.modules),
        "boto3_at_import": boto3_at_import,
    }


def run_minimal(spec: dict[str, Any]) -> dict[str, Any]:
    """The hand-written handler: ``import boto3``, a client per service, the recorded calls in order (an
    error answer is what the handler got too, or a condition the replayed state now refuses: still one
    request waited on)."""
    cpu, started = time.process_time(), time.perf_counter()
    import boto3
    from botocore import xform_name
    from botocore.exceptions import ClientError

    imported = time.perf_counter()
    clients: dict[str, Any] = {}
    for call in spec["calls"]:
        service = call["service"]
        if service not in clients:
            clients[service] = boto3.client(service)
        client = clients[service]
        method = getattr(client, xform_name(call["operation"]))
        with contextlib.suppress(ClientError):
            method(**decode(call["params"]))
    done = time.perf_counter()
    return {
        "cpu_ms": (time.process_time() - cpu) * 1000,
        "import_ms": (imported - started) * 1000,
        "invoke_ms": (done - imported) * 1000,
    }


def run_boto3(_: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    import boto3  # noqa: F401

    return {"import_ms": (time.perf_counter() - started) * 1000, "invoke_ms": 0.0}


MODES = {"handler": run_handler, "minimal": run_minimal, "boto3": run_boto3}


def main(argv: list[str]) -> int:
    mode, source, target = argv
    with open(source, encoding="utf-8") as file:
        spec = json.load(file)
    sys.meta_path.insert(0, _PatchOnImport())
    out = MODES[mode](spec)
    out["aws_wait_ms"] = sum(WAITED)
    out["aws_requests"] = len(WAITED)
    out["calls"] = [call | {"params": encode(call["params"])} for call in CALLS]
    with open(target, "w", encoding="utf-8") as file:
        json.dump(out, file, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
