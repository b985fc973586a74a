"""tracking_poller: the scheduled sweep of the sparse ``poll`` index (EventBridge Scheduler).

Thin: wires Powertools, runs :meth:`parcelhub.app.poller.Poller.run` within the invocation's time
budget, and returns a small summary (the local runner's ``/_local/invoke`` shows it).
"""

from __future__ import annotations

from typing import Any

from parcelhub import composition
from parcelhub.observability import add_metric, instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def time_left() -> float:
        return float(remaining()) / 1000 if callable(remaining) else 60.0

    report = composition.poller().run(time_left=time_left)
    add_metric("TrackingPolled", report.polled)
    add_metric("TrackingPollFailures", len(report.failures))
    return {
        "batches": report.batches,
        "polled": report.polled,
        "with_events": report.with_events,
        "events": report.events,
        "failures": len(report.failures),
        "skipped": report.skipped,
        "waited_seconds": round(report.waited_seconds, 3),
        "per_provider": report.per_provider,
    }
