"""The e2e tier's local stack: ``python -m sandbox.local`` started once per test session.

The ``local_stack`` fixture starts the runner through :class:`sandbox.local.client.LocalStackClient`
(a subprocess in its own session, ``PARCELHUB_PORT=0``, a tmp ``PARCELHUB_LOCAL_DIR``), yields the
client, and at the end sends SIGTERM and asserts the runner exits cleanly and leaves no process behind.
Tests talk to it over HTTP only (the API, the sandboxes' control API, moto's endpoint like a client
would talk to AWS).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.local.client import STOP_TIMEOUT, LocalStackClient


def wait_until(check: Callable[[], Any], timeout: float = 30) -> Any:
    """``check()`` until it answers something truthy, or ``timeout`` seconds; its last answer."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(0.3)
        value = check()
    return value


def assert_no_denials(stack: LocalStackClient) -> None:
    """The committed template gives every function what it calls: not one call was denied."""
    metrics = stack.metrics()
    denied = sorted({(d["principal"], d["action"], d["resource"]) for d in metrics.get("iam_denials", [])})
    assert metrics.get("iam_denials_total", 0) == 0, f"IAM denied calls on the local stack: {denied}"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackClient]:
    stack = LocalStackClient.start(tmp_path_factory.mktemp("local-stack"))
    yield stack
    try:
        assert_no_denials(stack)
    finally:  # a failed check must not leave the stack running (it would slow every run after it)
        stopped = stack.stop()
    assert stopped.code == 0, f"runner did not exit cleanly on SIGTERM (code {stopped.code})"
    assert not stopped.left_behind, "runner left a process behind"
    assert stopped.seconds < STOP_TIMEOUT


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., LocalStackClient]]:
    """Start a private local stack with its own configuration: ``stack_factory(config, **env)``; at the end
    each is checked for IAM denials (none expected with the committed template) and stopped."""
    started: list[tuple[LocalStackClient, bool]] = []

    def start(config: dict[str, Any] | None = None, **env: str) -> LocalStackClient:
        stack = LocalStackClient.start(
            tmp_path / f"stack-{len(started)}", {"PARCELHUB_CONFIG": json.dumps(config or {}), **env}
        )
        started.append((stack, "PARCELHUB_TEMPLATE" not in env))  # a test's own template may be meant to deny
        return stack

    yield start
    try:
        for stack, committed_template in started:
            if committed_template and stack.process.poll() is None:
                assert_no_denials(stack)
    finally:
        for stack, _ in started:
            stack.stop()


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
