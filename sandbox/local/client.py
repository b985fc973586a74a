"""The one client of the local stack: ``python -m sandbox.local`` as a child process, talked to over HTTP.

The demo, the benchmark and the e2e tests all start the stack with it::

    with LocalStackClient.start(tmp_dir, {"PARCELHUB_CONFIG": "{}"}) as stack:
        stack.post_order(body)
        stack.metrics()

:meth:`LocalStackClient.start` runs the runner in its own session (``PARCELHUB_PORT=0`` unless given,
``PARCELHUB_LOCAL_DIR``, the caller's extra environment; output to a log file) and waits until
``local-stack.json`` names this process and ``GET /v1/health`` answers 200. It raises
:class:`LocalStackError` with the tail of the log when the runner dies or is not ready in time.
:meth:`LocalStackClient.stop` sends SIGTERM, waits, kills the whole process group after a timeout and
reports how it went (:class:`Stopped`). Everything else is the stack's public surface: the API, the
runner's ``/_local`` routes, moto through boto3, the JSONL files and the carrier sandboxes' control API.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
#: variables of the caller's environment that would point the runner's boto3 away from its own moto
_DROPPED_ENV = ("AWS_ENDPOINT_URL", "AWS_PROFILE")


class LocalStackError(RuntimeError):
    """The local stack did not start, died, or refused a control call."""


@dataclass(frozen=True)
class Stopped:
    """How the runner ended: its exit code (None when it had to be killed), how long SIGTERM took,
    and whether any process of its group outlived it (killed then, so none is left either way)."""

    code: int | None
    seconds: float
    left_behind: bool


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a file (none when it does not exist yet)."""
    return JsonlTail(path).read()


class JsonlTail:
    """The JSON lines appended to a file since the last :meth:`read` (thread-safe: each line once).

    A half-written last line waits for the next read; a line that is not JSON is skipped."""

    def __init__(self, path: Path, *, from_end: bool = False) -> None:
        self.path = path
        self.offset = _size(path) if from_end else 0
        self._lock = threading.Lock()

    def read(self) -> list[dict[str, Any]]:
        with self._lock:
            try:
                with self.path.open("rb") as handle:
                    handle.seek(self.offset)
                    data = handle.read()
            except OSError:
                return []
            end = data.rfind(b"\n") + 1
            self.offset += end
        lines = []
        for raw in data[:end].splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines


@dataclass
class EventCapture:
    """A catch-all rule of the caller's own on the hub's bus, into a queue: every event published."""

    stack: LocalStackClient
    rule: str
    queue_url: str

    def drain(self) -> list[dict[str, Any]]:
        """The events captured since the last drain (the queue is emptied)."""
        sqs = self.stack.aws("sqs")
        found: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            found += [json.loads(message["Body"]) for message in batch]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return found


@dataclass
class LocalStackClient:
    """A running ``python -m sandbox.local`` (started by :meth:`start`) and what its handle file says."""

    process: subprocess.Popen[bytes]
    handle: dict[str, Any]
    local_dir: Path
    log_path: Path
    ready_seconds: float
    http: requests.Session = field(default_factory=requests.Session)
    stopped: Stopped | None = None

    # ------------------------------------------------------------------ start and stop
    @classmethod
    def start(
        cls,
        local_dir: Path,
        env: dict[str, str] | None = None,
        *,
        log_path: Path | None = None,
        stderr_path: Path | None = None,
        timeout: float = READY_TIMEOUT,
    ) -> LocalStackClient:
        """Start the runner with ``local_dir`` as ``PARCELHUB_LOCAL_DIR`` and wait until it is ready.

        Its stdout (the functions' log lines) goes to ``log_path`` (default ``<local_dir>/runner.log``),
        its stderr (the runner's own log) to ``stderr_path``, or to the same file when that is None."""
        local_dir = local_dir.resolve()
        local_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_path or local_dir / "runner.log"
        full_env = {key: value for key, value in os.environ.items() if key not in _DROPPED_ENV}
        full_env.update(
            {"PARCELHUB_PORT": "0", "PARCELHUB_LOCAL_DIR": str(local_dir), "PYTHONUNBUFFERED": "1", **(env or {})}
        )
        began = time.monotonic()
        with contextlib.ExitStack() as files:
            out = files.enter_context(log_path.open("wb"))
            err = files.enter_context(stderr_path.open("wb")) if stderr_path else out
            process = subprocess.Popen(
                [sys.executable, "-m", "sandbox.local"],
                cwd=ROOT,
                env=full_env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # Ctrl-C in a terminal reaches the caller, which stops the stack
            )
        stack = cls(process, {}, local_dir, log_path, 0.0)
        try:
            stack._wait_ready(began + timeout, stderr_path or log_path)
        except BaseException:
            _stop(process, timeout=5)
            raise
        stack.ready_seconds = time.monotonic() - began
        return stack

    def _wait_ready(self, deadline: float, runner_log: Path) -> None:
        """Until ``local-stack.json`` names this process and the API's health check answers 200."""
        handle_file = self.local_dir / "local-stack.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise LocalStackError(f"the local stack exited with {code} ({runner_log}):\n{tail(runner_log)}")
            try:
                handle: dict[str, Any] = json.loads(handle_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                handle = {}
            if handle.get("pid") == self.process.pid:  # not a stale file of an earlier run in the same directory
                self.handle = handle
                with contextlib.suppress(requests.RequestException):
                    self.health(timeout=2)
                    return
            time.sleep(0.1)
        raise LocalStackError(f"the local stack was not ready in time ({runner_log}):\n{tail(runner_log)}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> Stopped:
        """SIGTERM the runner and wait; kill its whole process group when it takes longer than ``timeout``
        or leaves a process behind. Calling it again returns the first result."""
        if self.stopped is None:
            self.stopped = _stop(self.process, timeout)
        return self.stopped

    def __enter__(self) -> LocalStackClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ where things are
    @property
    def api(self) -> str:
        """The API's base URL, stage included (``http://127.0.0.1:<port>/dev``)."""
        return str(self.handle["api_url"]).rstrip("/")

    @property
    def webhooks(self) -> str:
        """The carrier webhooks' base URL: the webhook function's URL (``http://127.0.0.1:<port>``)."""
        return str(self.handle["webhook_url"]).rstrip("/")

    @property
    def root(self) -> str:
        """The runner's own server (its ``/_local`` routes live at the root, not under the stage)."""
        parts = urlsplit(self.api)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": str(self.handle["api_key"])}

    @property
    def sandboxes(self) -> dict[str, str]:
        return {provider: str(url).rstrip("/") for provider, url in self.handle["sandboxes"].items()}

    def sandbox(self, provider: str) -> str:
        return self.sandboxes[provider]

    def resource(self, logical_id: str) -> str:
        """The physical name, URL or ARN of a template resource."""
        return str(self.handle["resources"][logical_id])

    def aws(self, service: str) -> Any:
        """A boto3 client of the stack's moto (fake credentials), as any AWS client would talk to it."""
        from sandbox.local.stack import moto_client

        return moto_client(service, str(self.handle["moto_url"]))

    # ------------------------------------------------------------------ the runner's routes
    def health(self, timeout: float = 10) -> dict[str, Any]:
        """``GET /v1/health`` (no API key); raises unless it answers 200."""
        reply = self.http.get(f"{self.api}/v1/health", timeout=timeout)
        reply.raise_for_status()
        return dict(reply.json())

    def metrics(self) -> dict[str, Any]:
        """AWS calls by operation and by function, Lambda invocations, HTTP requests per route."""
        reply = self.http.get(f"{self.root}/_local/metrics", timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def reset_metrics(self) -> None:
        self.http.post(f"{self.root}/_local/metrics/reset", timeout=30).raise_for_status()

    def invoke(self, logical_id: str, timeout: float = 120) -> Any:
        """Run a function now (a scheduled one gets its scheduled event); returns the handler's result."""
        reply = self.http.post(f"{self.root}/_local/invoke/{logical_id}", timeout=timeout)
        reply.raise_for_status()
        return reply.json()["result"]

    def faults(self, rules: list[dict[str, Any]] | None = None, **options: Any) -> dict[str, Any]:
        """Replace the injected faults (``sandbox/local/faults.py``: rules, ``sqs_redelivery``, ``seed``);
        no argument switches them all off. Returns what is injected and how often so far."""
        reply = self.http.post(f"{self.root}/_local/faults", json={"rules": rules or [], **options}, timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def fault_stats(self) -> dict[str, Any]:
        reply = self.http.get(f"{self.root}/_local/faults", timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def reset_caches(self) -> None:
        """Every function forgets its cached configuration (as after a deployment)."""
        self.http.post(f"{self.root}/_local/reset-caches", timeout=30).raise_for_status()

    # ------------------------------------------------------------------ files
    def jsonl(self, name: str) -> list[dict[str, Any]]:
        """Every line of a JSONL file in the stack's directory (``alerts.jsonl``, ``oms-callbacks.jsonl``)."""
        return read_jsonl(self.local_dir / name)

    def alerts(self) -> list[dict[str, Any]]:
        return self.jsonl("alerts.jsonl")

    def wait_for_alert(self, needle: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for a in self.alerts() if needle in json.dumps(a, ensure_ascii=False)]
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"no alert containing {needle!r}: {self.alerts()}")

    def log_offset(self) -> int:
        return _size(self.log_path)

    # ------------------------------------------------------------------ the carrier sandboxes
    def sandbox_post(self, provider: str, path: str, body: dict[str, Any]) -> Any:
        """A control call (``/_sandbox/...``); a 4xx/5xx answer raises :class:`LocalStackError`."""
        reply = self.http.post(self.sandbox(provider) + path, json=body, timeout=60)
        if reply.status_code >= 400:
            raise LocalStackError(f"{provider} {path} answered {reply.status_code}: {reply.text[:200]}")
        return reply.json()

    def sandbox_get(self, provider: str, path: str) -> Any:
        reply = self.http.get(self.sandbox(provider) + path, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def fault(self, provider: str, **faults: Any) -> None:
        """``outage``, ``error_rate``, ``latency_ms``, ``reject``, ``after_create`` (``latency``/``lost``/``5xx``
        once the order exists) with ``after_create_rate`` and ``after_create_latency_ms``: what is not given
        is switched off."""
        self.sandbox_post(provider, "/_sandbox/faults", faults)

    def order_book(self, provider: str) -> list[dict[str, Any]]:
        """Every order the provider's sandbox holds (``order_id``, ``tracking_number``, ``carrier``, ``cancelled``)."""
        return list(self.sandbox_get(provider, "/_sandbox/orders"))

    def push_mode(self, provider: str, **mode: Any) -> None:
        """``mode`` (auto/manual), ``duplicate_rate``, ``shuffle``."""
        self.sandbox_post(provider, "/_sandbox/push-mode", mode)

    def push(self, provider: str, tracking_number: str, stages: list[str]) -> None:
        """The sandbox pushes these lifecycle stages of a parcel it issued to the hub's webhook."""
        self.sandbox_post(provider, "/_sandbox/push", {"tracking_number": tracking_number, "stages": stages})

    def requests_seen(self, provider: str) -> list[dict[str, Any]]:
        return list(self.sandbox_get(provider, "/_sandbox/requests"))

    # ------------------------------------------------------------------ the OMS side of the API
    def post_order(self, body: dict[str, Any], timeout: float = 30) -> requests.Response:
        return self.http.post(f"{self.api}/v1/shipments", json=body, headers=self.headers, timeout=timeout)

    def shipment(self, shipment_id: str) -> dict[str, Any]:
        reply = self.http.get(f"{self.api}/v1/shipments/{shipment_id}", headers=self.headers, timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def wait_for(self, shipment_id: str, statuses: set[str], timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        current: dict[str, Any] = {}
        while time.monotonic() < deadline:
            current = self.shipment(shipment_id)
            if current["status"] in statuses:
                return current
            time.sleep(0.5)
        raise AssertionError(f"{shipment_id} still {current.get('status')} after {timeout}s: {current}")

    # ------------------------------------------------------------------ the bus
    def capture_events(self, name: str) -> EventCapture:
        """Every event later published on the hub's bus, through a rule ``name`` and a queue of its own."""
        sqs, events = self.aws("sqs"), self.aws("events")
        queue_url = sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.resource("EventBus")
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["parcelhub"]}))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
        return EventCapture(self, name, str(queue_url))


# ---------------------------------------------------------------------------------------------- internals


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(process: subprocess.Popen[bytes], timeout: float) -> Stopped:
    """SIGTERM to the runner (it stops what it started: threads, servers, its moto process), then SIGKILL
    to the group when it is too slow or anything of it is left. The runner leads its own process group."""
    began = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.monotonic() - began
    left = _group_alive(process.pid)
    if code is None or left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # never leave a runner behind, even when failing
        process.wait(timeout=5)
    return Stopped(code, seconds, left)
