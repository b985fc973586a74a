"""The e2e tier's local stack: ``python -m sandbox.local`` started once per test session.

The ``local_stack`` fixture starts the runner as a subprocess (own session, ``PARCELHUB_PORT=0``, a
tmp ``PARCELHUB_LOCAL_DIR``), waits for ``local-stack.json`` and ``GET /v1/health``, yields a
:class:`LocalStackHandle`, and at the end sends SIGTERM and asserts the runner exits cleanly and leaves
no process behind. Tests talk to it over HTTP only (the API, the sandboxes' control API, moto's
endpoint like a client would talk to AWS).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass
class LocalStackHandle:
    handle: dict[str, Any]
    local_dir: Path
    process: subprocess.Popen[bytes]
    ready_seconds: float

    @property
    def api(self) -> str:
        return str(self.handle["api_url"]).rstrip("/")

    @property
    def root(self) -> str:
        """The runner's own base URL (``/_local/...`` routes)."""
        return self.api.rsplit("/", 1)[0] if self.api.count("/") > 2 else self.api

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": str(self.handle["api_key"])}

    def aws(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.handle["moto_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def jsonl(self, name: str) -> list[dict[str, Any]]:
        path = self.local_dir / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    # ------------------------------------------------------------------ client helpers (HTTP only)
    def sandbox(self, provider: str) -> str:
        return str(self.handle["sandboxes"][provider]).rstrip("/")

    def fault(self, provider: str, **faults: Any) -> None:
        requests.post(f"{self.sandbox(provider)}/_sandbox/faults", json=faults, timeout=10).raise_for_status()

    def push_mode(self, provider: str, **mode: Any) -> None:
        requests.post(f"{self.sandbox(provider)}/_sandbox/push-mode", json=mode, timeout=10).raise_for_status()

    def requests_seen(self, provider: str) -> list[dict[str, Any]]:
        reply = requests.get(f"{self.sandbox(provider)}/_sandbox/requests", timeout=10)
        reply.raise_for_status()
        return list(reply.json())

    def post_order(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.api}/v1/shipments", json=body, headers=self.headers, timeout=30)

    def shipment(self, shipment_id: str) -> dict[str, Any]:
        reply = requests.get(f"{self.api}/v1/shipments/{shipment_id}", headers=self.headers, timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def wait_for(self, shipment_id: str, statuses: set[str], timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        current: dict[str, Any] = {}
        while time.monotonic() < deadline:
            current = self.shipment(shipment_id)
            if current["status"] in statuses:
                return current
            time.sleep(0.5)
        raise AssertionError(f"{shipment_id} still {current.get('status')} after {timeout}s: {current}")

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

    def invoke(self, logical_id: str) -> Any:
        """Run a scheduled function now (the runner's control route); returns the handler's result."""
        reply = requests.post(f"{self.root}/_local/invoke/{logical_id}", timeout=60)
        reply.raise_for_status()
        return reply.json()["result"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_local_stack(local_dir: Path, extra_env: dict[str, str] | None = None) -> LocalStackHandle:
    env = {
        **os.environ,
        "PARCELHUB_PORT": "0",
        "PARCELHUB_LOCAL_DIR": str(local_dir),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    env.pop("AWS_ENDPOINT_URL", None)
    log = (local_dir / "runner.log").open("wb")
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.local"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle_file = local_dir / "local-stack.json"
    deadline = began + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"runner exited with {process.returncode}:\n{(local_dir / 'runner.log').read_text()[-3000:]}"
            )
        if handle_file.exists():
            handle = json.loads(handle_file.read_text(encoding="utf-8"))
            try:
                health = requests.get(f"{str(handle['api_url']).rstrip('/')}/v1/health", timeout=2)
            except requests.RequestException:
                health = None
            if health is not None and health.status_code == 200:
                return LocalStackHandle(handle, local_dir, process, time.monotonic() - began)
        time.sleep(0.1)
    stop_local_stack_process(process)
    raise RuntimeError(f"runner not ready in {READY_TIMEOUT} s:\n{(local_dir / 'runner.log').read_text()[-3000:]}")


def stop_local_stack_process(process: subprocess.Popen[bytes]) -> tuple[int | None, float, bool]:
    """SIGTERM; returns (exit code, seconds to exit, whether any process of its group is left)."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code: int | None = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.monotonic() - began
    left = _group_alive(process.pid)
    if code is None or left:
        os.killpg(process.pid, signal.SIGKILL)  # never leave a runner behind, even when failing
        process.wait(timeout=5)
    return code, seconds, left


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    stack = start_local_stack(tmp_path_factory.mktemp("local-stack"))
    yield stack
    code, seconds, left = stop_local_stack_process(stack.process)
    assert code == 0, f"runner did not exit cleanly on SIGTERM (code {code})"
    assert not left, "runner left a process behind"
    assert seconds < STOP_TIMEOUT


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., LocalStackHandle]]:
    """Start a private local stack with its own configuration: ``stack_factory(config, **env)``."""
    started: list[LocalStackHandle] = []

    def start(config: dict[str, Any] | None = None, **env: str) -> LocalStackHandle:
        local_dir = tmp_path / f"stack-{len(started)}"
        local_dir.mkdir()
        stack = start_local_stack(local_dir, {"PARCELHUB_CONFIG": json.dumps(config or {}), **env})
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stop_local_stack_process(stack.process)


# ------------------------------------------------------------------------------------ the browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; ``apt-get install -y chromium`` when it is missing (skip only if that cannot work)."""
    found = _chromium()
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed and cannot be installed here (no apt-get or not root)")
    # pytest-xdist workers ask at the same time: one installs, the others wait for it (dpkg takes one at a time)
    with (Path(tempfile.gettempdir()) / "parcelhub-chromium-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _chromium() or _install_chromium()


def _install_chromium() -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    if install.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600, check=False)
        install = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
    found = _chromium()
    if not found:
        pytest.skip(f"chromium could not be installed: {install.stderr.strip()[-300:]}")
    return found
