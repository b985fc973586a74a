"""Scheduled stall sweep: reads only the due part of the sparse stall index and claims one alert per
episode (the stream relay announces each claim), within the invocation's time budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from parcelhub import composition
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def time_left() -> float:
        return float(remaining()) / 1000 if callable(remaining) else 60.0

    return composition.stall_sweeper().sweep(datetime.now(UTC), time_left=time_left).as_dict()
