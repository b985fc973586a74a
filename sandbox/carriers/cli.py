"""Run one carrier sandbox in the foreground: ``python -m sandbox.carriers.<provider> --port 8701``."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any


def serve(
    provider: str,
    build: Callable[..., Any],
    credentials: Mapping[str, str | None],
    argv: list[str] | None = None,
    *,
    extra: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Parse ``--<credential>`` options (fake defaults) plus the common ones, start, wait for a signal."""
    parser = argparse.ArgumentParser(description=f"the {provider} carrier sandbox (a real HTTP server on loopback)")
    for name, default in credentials.items():
        parser.add_argument(f"--{name.replace('_', '-')}", default=default)
    for name, choices in (extra or {}).items():
        parser.add_argument(f"--{name.replace('_', '-')}", choices=choices, default=choices[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--stage-seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=None)
    options = vars(parser.parse_args(argv))
    sandbox = build(**options).start()
    print(f"{provider} sandbox on {sandbox.url}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()
