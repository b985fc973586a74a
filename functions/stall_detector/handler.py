"""Scheduled stall sweep: reads only the due part of the sparse stall index and alerts once per episode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from parcelhub import composition
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return composition.stall_sweeper().sweep(datetime.now(UTC)).as_dict()
