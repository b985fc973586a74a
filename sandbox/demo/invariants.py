"""The demo's own invariants, as pure functions over what it recorded.

1. **One waybill per order**: every accepted order has exactly one waybill - one tracking number in
   the API, one ``created`` attempt, and one waybill issued across all the carriers' systems (the
   sandboxes) - or it is ``WAYBILL_FAILED`` with no waybill issued and an ops alert naming it.
2. **No regression**: the statuses the OMS observed over time for a shipment never go backwards by
   the precedence model (``parcelhub.domain.status``: sticky phase, then the winning event's time, then
   progress rank). Before tracking starts, PENDING < WAYBILL_CREATED / WAYBILL_FAILED < any tracking status.
3. **Stalls alerted once**: every parcel the carriers stopped moving is alerted exactly once (repeated
   and overlapping sweeps must not alert again).
4. **Everything settles**: by the end every accepted shipment is delivered (or otherwise final), failed
   with an alert, or stalled and alerted - nothing is left silently half-way (a broken webhook shows here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parcelhub.domain.status import PHASE, RANK, TRACKING_STATUSES, Status

#: statuses after which nothing more is expected of a shipment in the demo
FINAL: frozenset[str] = frozenset({"DELIVERED", "RETURNED", "CANCELLED", "WAYBILL_FAILED"})


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    checked: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    def line(self) -> str:
        if self.ok:
            return f"PASS  {self.name} ({self.checked} checked)"
        more = f"; ... {len(self.problems) - 5} more" if len(self.problems) > 5 else ""
        shown = "; ".join(self.problems[:5]) + more
        return f"FAIL  {self.name}: {len(self.problems)} of {self.checked} - {shown}"


# ----------------------------------------------------------------------------------------- 1. waybills


def one_waybill_per_order(
    shipments: Mapping[str, Mapping[str, Any]],
    issued: Mapping[str, Sequence[str]],
    failure_alerts: Iterable[str],
) -> InvariantResult:
    """``shipments``: shipment id -> final API view; ``issued``: shipment id (the provider order id) ->
    tracking numbers the carriers' systems issued for it; ``failure_alerts``: shipment ids named by a
    ``[Waybill failed]`` alert."""
    alerted = Counter(failure_alerts)
    problems: list[str] = []
    for shipment_id, view in sorted(shipments.items()):
        status = view.get("status")
        numbers = sorted(set(issued.get(shipment_id, ())))
        created = [a for a in view.get("waybill_attempts") or [] if a.get("outcome") == "created"]
        if status == Status.WAYBILL_FAILED:
            if numbers:
                problems.append(f"{shipment_id} is WAYBILL_FAILED but a carrier issued {', '.join(numbers)}")
            if alerted[shipment_id] < 1:
                problems.append(f"{shipment_id} is WAYBILL_FAILED without an ops alert")
            continue
        if status == Status.PENDING:
            problems.append(f"{shipment_id} is still PENDING (no waybill, no failure)")
            continue
        if not view.get("tracking_number"):
            problems.append(f"{shipment_id} ({status}) has no tracking number")
        elif len(numbers) != 1 or numbers[0] != view["tracking_number"]:
            shown = ", ".join(numbers) or "nothing"
            problems.append(f"{shipment_id}: carriers issued {shown}, the API shows {view['tracking_number']}")
        if len(created) != 1:
            problems.append(f"{shipment_id} has {len(created)} 'created' waybill attempts")
    return InvariantResult(
        "every accepted order has exactly one waybill or WAYBILL_FAILED + alert",
        not problems,
        len(shipments),
        tuple(problems),
    )


# ----------------------------------------------------------------------------------------- 2. regressions


def _instant(value: str | None) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return f"{moment.timestamp():018.6f}"


def observation_key(status: str, last_event_at: str | None) -> tuple[int, int, str, int]:
    """Where an observed (status, winning event time) sits in the precedence order."""
    current = Status(status)
    if current not in TRACKING_STATUSES or (current is Status.WAYBILL_CREATED and not last_event_at):
        tier = {Status.PENDING: 0, Status.WAYBILL_CREATED: 1, Status.WAYBILL_FAILED: 1}.get(current, 1)
        return (tier, 0, "", 0)
    return (2, PHASE[current], _instant(last_event_at), RANK[current])


def no_regression(observations: Mapping[str, Sequence[Sequence[Any]]]) -> InvariantResult:
    """``observations``: shipment id -> ``[(time, status, last_event_at), ...]`` in the order observed."""
    problems: list[str] = []
    for shipment_id, seen in sorted(observations.items()):
        best: tuple[int, int, str, int] | None = None
        best_status = ""
        for _, status, last_event_at in sorted(seen, key=lambda o: o[0]):
            key = observation_key(status, last_event_at)
            if best is not None and key < best:
                problems.append(f"{shipment_id}: {best_status} then {status} (event {last_event_at})")
                break
            if best is None or key > best:
                best, best_status = key, status
    return InvariantResult("no shipment regressed", not problems, len(observations), tuple(problems))


# ----------------------------------------------------------------------------------------- 3. stalls


def stalls_alerted_once(stalled: Mapping[str, str], stall_alerts: Iterable[Mapping[str, Any]]) -> InvariantResult:
    """``stalled``: shipment id -> the status its parcel stopped in (the carrier stopped moving it);
    ``stall_alerts``: every ``[Parcel stalled]`` alert (``shipment_id``, ``status``, ``episode`` = rule,
    status and last event), repeats included.

    Each stalled parcel has exactly one alert for where it stopped, and no stall episode of any parcel is
    alerted twice. (Under load a parcel may also be alerted earlier - say, not picked up yet - and that
    episode resolved by its next scan: a different episode, not a repeat.)
    """
    alerts = list(stall_alerts)
    problems: list[str] = []
    repeats = Counter((a["shipment_id"], a.get("episode") or "") for a in alerts)
    for (shipment_id, episode), n in sorted(repeats.items()):
        if n > 1:
            problems.append(f"{shipment_id} alerted {n} times for the same stall ({episode.split('|')[0] or '?'})")
    for shipment_id, status in sorted(stalled.items()):
        where = [a for a in alerts if a["shipment_id"] == shipment_id and a.get("status") in (status, None)]
        if len(where) != 1:
            problems.append(f"{shipment_id} stopped in {status}: alerted {len(where)} times")
    return InvariantResult("every stalled parcel alerted exactly once", not problems, len(stalled), tuple(problems))


# ----------------------------------------------------------------------------------------- 4. settled


def all_settled(
    shipments: Mapping[str, Mapping[str, Any]], stalled: Iterable[str], stall_alerts: Iterable[str]
) -> InvariantResult:
    """Every shipment is final, or is a stalled parcel with a stall alert."""
    alerted, stalled = set(stall_alerts), set(stalled)
    stuck = Counter(
        str(view.get("status"))
        for shipment_id, view in shipments.items()
        if view.get("status") not in FINAL and not (shipment_id in stalled and shipment_id in alerted)
    )
    problems = [f"{n} shipment(s) still {status}" for status, n in stuck.most_common()]
    return InvariantResult(
        "every shipment delivered, failed with an alert, or stalled and alerted",
        not problems,
        len(shipments),
        tuple(problems),
    )


def no_denials(denials: Sequence[Mapping[str, Any]], checked: int) -> InvariantResult:
    """The local stack checked every AWS call (``checked`` of them) against the function's role as deployed:
    none was denied."""
    seen = sorted({f"{d.get('principal')} may not {d.get('action')} on {d.get('resource')}" for d in denials})
    return InvariantResult("no AWS call denied by the roles sam deploy creates", not seen, checked, tuple(seen))


def check_all(
    shipments: Mapping[str, Mapping[str, Any]],
    issued: Mapping[str, Sequence[str]],
    observations: Mapping[str, Sequence[Sequence[Any]]],
    stalled: Iterable[str],
    alerts: Iterable[Mapping[str, Any]],
    *,
    iam_denials: Sequence[Mapping[str, Any]] = (),
    iam_checked: int = 0,
) -> list[InvariantResult]:
    alerts = list(alerts)
    failed = [a["shipment_id"] for a in alerts if a.get("kind") == "waybill_failed" and a.get("shipment_id")]
    stalls = [a for a in alerts if a.get("kind") == "stall" and a.get("shipment_id")]
    where = {sid: str((shipments.get(sid) or {}).get("status")) for sid in stalled}
    return [
        one_waybill_per_order(shipments, issued, failed),
        no_regression(observations),
        stalls_alerted_once(where, stalls),
        all_settled(shipments, where, [a["shipment_id"] for a in stalls]),
        no_denials(iam_denials, iam_checked),
    ]
