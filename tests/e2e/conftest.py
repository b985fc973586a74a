"""The e2e tier's local stack: ``python -m sandbox.local`` started once per test session.

The ``local_stack`` fixture starts the runner through :class:`sandbox.local.client.LocalStackClient`
(a subprocess in its own session, ``PARCELHUB_PORT=0``, a tmp ``PARCELHUB_LOCAL_DIR``), yields the
client, and at the end sends SIGTERM and asserts the runner exits cleanly and leaves no process behind.
Tests talk to it over HTTP only (the API, the sandboxes' control API, moto's endpoint like a client
would talk to AWS).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.local.client import STOP_TIMEOUT, LocalStackClient


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackClient]:
    stack = LocalStackClient.start(tmp_path_factory.mktemp("local-stack"))
    yield stack
    stopped = stack.stop()
    assert stopped.code == 0, f"runner did not exit cleanly on SIGTERM (code {stopped.code})"
    assert not stopped.left_behind, "runner left a process behind"
    assert stopped.seconds < STOP_TIMEOUT


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., LocalStackClient]]:
    """Start a private local stack with its own configuration: ``stack_factory(config, **env)``."""
    started: list[LocalStackClient] = []

    def start(config: dict[str, Any] | None = None, **env: str) -> LocalStackClient:
        stack = LocalStackClient.start(
            tmp_path / f"stack-{len(started)}", {"PARCELHUB_CONFIG": json.dumps(config or {}), **env}
        )
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()
