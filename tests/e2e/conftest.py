"""The e2e tier's local stack: ``python -m sandbox.local`` started once per test session.

The ``local_stack`` fixture starts the runner as a subprocess (own session, ``PARCELHUB_PORT=0``, a
tmp ``PARCELHUB_LOCAL_DIR``), waits for ``local-stack.json`` and ``GET /v1/health``, yields a
:class:`LocalStackHandle`, and at the end sends SIGTERM and asserts the runner exits cleanly and leaves
no process behind. Tests talk to it over HTTP only (the API, the sandboxes' control API, moto's
endpoint like a client would talk to AWS).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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
