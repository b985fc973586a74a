"""From a recorded run to the figures the summary and the HTML report show (pure functions).

The record is a JSON document the runner writes to ``var/demo-run.json``; ``python -m sandbox.demo
--render var/demo-run.json`` re-renders the report from it.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.demo.invariants import FINAL, InvariantResult, check_all

#: the happy path, as the status funnel shows it
FUNNEL: tuple[tuple[str, str], ...] = (
    ("ORDERED", "orders sent"),
    ("ACCEPTED", "accepted (valid)"),
    ("WAYBILL_CREATED", "waybill issued"),
    ("PICKED_UP", "picked up"),
    ("IN_TRANSIT", "in transit"),
    ("ARRIVED_AT_DESTINATION_CITY", "at destination city"),
    ("OUT_FOR_DELIVERY", "out for delivery"),
    ("DELIVERED", "delivered"),
)
_PROGRESS = {status: n for n, (status, _) in enumerate(FUNNEL)}

#: providers whose sandboxes issue waybills (Kuaidi100 only tracks)
WAYBILL_PROVIDERS = ("kdniao", "sf")

_SHIPMENT = re.compile(r"Shipment: (\S+)")
_CIRCUIT = re.compile(r"\[Circuit opened\] (\w+)")
_RULE = re.compile(r"^Rule: .*\((\w+)\)$", re.M)
_STATUS = re.compile(r"^Status: (\w+)$", re.M)
_LAST = re.compile(r"^Last event: (.*)$", re.M)


# ------------------------------------------------------------------------------------------ helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class LatencyFigures:
    name: str
    samples: tuple[float, ...]
    note: str = ""

    @property
    def p50(self) -> float | None:
        return percentile(self.samples, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.samples, 95)

    @property
    def max(self) -> float | None:
        return max(self.samples) if self.samples else None


def epoch(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def parse_alert(line: Mapping[str, Any]) -> dict[str, Any]:
    """An ``alerts.jsonl`` line -> ``{time, kind, shipment_id, provider, title, text}``."""
    text = str(line.get("text") or line.get("message") or "")
    english = next((row for row in text.splitlines() if row.startswith("[")), "")
    kind = "other"
    if "[Parcel stalled]" in text:
        kind = "stall"
    elif "[Waybill failed]" in text:
        kind = "waybill_failed"
    elif "[Circuit opened]" in text:
        kind = "circuit_opened"
    shipment = _SHIPMENT.search(text)
    circuit = _CIRCUIT.search(text)
    title = english or (line.get("subject") or text.splitlines()[0] if text else "")
    rule, status, last = (m.group(1) if (m := p.search(text)) else None for p in (_RULE, _STATUS, _LAST))
    return {
        "time": epoch(str(line.get("time"))) if line.get("time") else None,
        "kind": kind,
        "shipment_id": shipment.group(1) if shipment else None,
        "provider": circuit.group(1) if circuit else None,
        "title": str(title),
        "text": text,
        "status": status if kind == "stall" else None,
        "episode": f"{rule}|{status}|{last}" if kind == "stall" and rule else None,
    }


# ------------------------------------------------------------------------------------------ the summary


@dataclass
class Summary:
    run_id: str
    orders_sent: int
    accepted: int
    rejected: list[dict[str, Any]]
    replays: int
    replays_same_shipment: int
    send_errors: list[str]
    waybills: Counter[tuple[str, str]]
    failovers: list[dict[str, Any]]
    final_statuses: Counter[str]
    stalled: list[str]
    stall_alerts: int
    #: parcels not planted, alerted as stalled: quiet past the threshold (late), or alerted while a newer scan
    #: the carrier had pushed was still on its way through the local stack (lagged): ``unplanted_stalls``
    late_stalls: list[str]
    lagged_stalls: list[str]
    alerts: Counter[str]
    pushes: dict[str, int]
    aws_per_shipment: dict[str, float]
    lambda_per_shipment: dict[str, float]
    order_to_waybill: LatencyFigures
    push_to_visible: LatencyFigures
    webhook_ack: LatencyFigures
    funnel: list[tuple[str, int]]
    timeline: dict[str, Any]
    invariants: list[InvariantResult]
    duration_seconds: float
    stack_ready_seconds: float
    outage: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.invariants)


def issued_waybills(sandboxes: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Shipment id -> tracking numbers the carriers issued for it that are still live (an order not kept
    and cancelled with its provider does not count; provider order ids are ``<shipment id>[-<n>]``)."""
    issued: dict[str, set[str]] = defaultdict(set)
    for provider in WAYBILL_PROVIDERS:
        for parcel in (sandboxes.get(provider) or {}).get("parcels", []):
            if parcel.get("order_id") and not parcel.get("cancelled"):
                issued[str(parcel["order_id"]).split("-")[0]].add(parcel["tracking_number"])
    return {order: sorted(numbers) for order, numbers in issued.items()}


def stalled_parcels(
    sandboxes: Mapping[str, Mapping[str, Any]], shipments: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Shipments whose parcel the carrier stopped moving: a stall point reached and never delivered."""
    stalled: set[str] = set()
    for box in sandboxes.values():
        for parcel in box.get("parcels", []):
            after = parcel.get("stall_after")
            if after is None or parcel.get("cancelled"):
                continue
            scans = parcel.get("scans") or []
            if len(scans) >= after and "delivered" not in scans and parcel.get("order_id") in shipments:
                stalled.add(parcel["order_id"])
    return sorted(stalled)


def unplanted_stalls(
    alerts: Sequence[Mapping[str, Any]],
    shipments: Mapping[str, Mapping[str, Any]],
    sandboxes: Mapping[str, Mapping[str, Any]],
    stalled: Iterable[str],
) -> tuple[list[str], list[str]]:
    """The parcels the carriers did not stop that were alerted as stalled, as (late, lagged).

    Lagged: before the alert, the carrier had pushed (and the webhook accepted) a scan newer than the state
    the alert names, so the sweep judged a state the hub had not yet moved on from. That is the local stack
    behind the demo's accelerated clock, not the parcel. Late: no newer scan was pushed before the alert;
    the parcel really went quiet for the rule's threshold. A parcel is lagged only when each of its alerts is."""
    planted = set(stalled)
    pushed: dict[str, list[tuple[float, float]]] = defaultdict(list)  # number -> (sent at, scan time)
    for box in sandboxes.values():
        for push in box.get("pushes", []):
            if push.get("status") != 200 or push.get("sent_at") is None:
                continue
            for _stage, at in push.get("scans") or []:
                if (moment := epoch(at)) is not None:
                    pushed[str(push.get("tracking_number"))].append((float(push["sent_at"]), moment))
    verdicts: dict[str, list[bool]] = defaultdict(list)
    for alert in alerts:
        sid = alert.get("shipment_id")
        if alert.get("kind") != "stall" or not sid or sid in planted or alert.get("time") is None:
            continue
        view = shipments.get(sid) or {}
        raised = float(alert["time"])
        verdicts[sid].append(
            _pushed_newer(alert.get("status"), raised, view, pushed.get(str(view.get("tracking_number"))))
        )
    late = sorted(sid for sid, lagged in verdicts.items() if not all(lagged))
    return late, sorted(sid for sid, lagged in verdicts.items() if all(lagged))


def _pushed_newer(
    status: str | None, raised: float, view: Mapping[str, Any], pushes: list[tuple[float, float]] | None
) -> bool:
    """Had the carrier pushed a scan newer than the alert's state (``status``) before ``raised``?"""
    if not pushes:
        return False
    since: float | None = None
    if status != "WAYBILL_CREATED":  # a no-pickup alert: any scan moves it on
        times = [
            moment
            for event in view.get("events") or []
            if event.get("status") == status and (moment := epoch(event.get("occurred_at"))) is not None
            if moment <= raised
        ]
        if not times:
            return False  # the state's scan is not in the timeline: no evidence of a lag
        since = max(times)
    return any(sent < raised and (since is None or moment > since) for sent, moment in pushes)


def push_figures(
    sandboxes: Mapping[str, Mapping[str, Any]], shipments: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, int], list[float]]:
    """Duplicates and out-of-order pushes the hub absorbed, and webhook ACK times (seconds)."""
    sent = duplicates = out_of_order = shuffled = rejected = 0
    scans_by_number: dict[str, set[float]] = defaultdict(set)
    acks: list[float] = []
    for box in sandboxes.values():
        newest_seen: dict[str, float] = {}
        for push in box.get("pushes", []):
            number = push.get("tracking_number")
            if not number:
                continue
            sent += 1
            if push.get("status") != 200:
                rejected += 1
                continue
            if push.get("sent_at") is not None:
                acks.append(float(push["time"]) - float(push["sent_at"]))
            duplicates += bool(push.get("duplicate"))
            times = [epoch(at) or 0.0 for _, at in push.get("scans", [])]
            if times != sorted(times):
                shuffled += 1
            newest = max(times, default=0.0)
            if newest < newest_seen.get(number, 0.0):
                out_of_order += 1
            newest_seen[number] = max(newest, newest_seen.get(number, 0.0))
            scans_by_number[number].update(times)
    by_number = {v.get("tracking_number"): v for v in shipments.values() if v.get("tracking_number")}
    matching = distinct = stored = 0
    for number, pushed in scans_by_number.items():
        view = by_number.get(number)
        if view is None:
            continue
        stored_times = {epoch(e.get("occurred_at")) or 0.0 for e in view.get("events", [])}
        distinct += len(pushed)
        stored += len(view.get("events", []))
        matching += stored_times == pushed
    figures = {
        "sent": sent,
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "shuffled_snapshots": shuffled,
        "not_accepted": rejected,
        "distinct_scans": distinct,
        "stored_events": stored,
        "timelines": len([n for n in scans_by_number if n in by_number]),
        "timelines_matching": matching,
    }
    return figures, acks


def push_failures(sandboxes: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """``"<provider> HTTP <status>" -> pushes`` the webhooks did not accept (a broken webhook shows here)."""
    failures: Counter[str] = Counter()
    for provider, box in sandboxes.items():
        for push in box.get("pushes", []):
            if push.get("status") != 200:
                failures[f"{provider} HTTP {push.get('status')}"] += 1
    return dict(failures)


def aws_figures(metrics: Mapping[str, Any], accepted: int) -> tuple[dict[str, float], dict[str, float]]:
    """AWS requests per accepted shipment by service, and Lambda invocations per shipment by function.

    The demo's own read polling (``GET /v1/shipments/...``: the API function's DynamoDB reads and its
    invocations) is left out: an OMS that listens to the callbacks does not poll.
    """
    if not metrics or accepted <= 0:
        return {}, {}
    by_service: Counter[str] = Counter()
    for function, calls in (metrics.get("aws_calls_by_function") or {}).items():
        for key, count in calls.items():
            service, _, operation = key.partition(".")
            if function == "ShipmentsApiFunction" and service == "dynamodb" and operation in {"GetItem", "Query"}:
                continue
            by_service[service] += count
    gets = sum(n for route, n in (metrics.get("http_requests") or {}).items() if route.startswith("GET "))
    invocations: dict[str, float] = {}
    for function, figures in (metrics.get("lambda") or {}).items():
        count = figures.get("invocations", 0) - (gets if function == "ShipmentsApiFunction" else 0)
        invocations[function] = round(max(count, 0) / accepted, 2)
    return {s: round(n / accepted, 2) for s, n in sorted(by_service.items())}, invocations


def funnel(orders: Sequence[Mapping[str, Any]], shipments: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, int]]:
    reached: Counter[str] = Counter()
    reached["ORDERED"] = len(orders)
    for view in shipments.values():
        statuses = {view.get("status")} | {e.get("status") for e in view.get("events", [])}
        if view.get("tracking_number"):
            statuses.add("WAYBILL_CREATED")
        furthest = max((_PROGRESS[s] for s in statuses if s in _PROGRESS), default=_PROGRESS["ACCEPTED"])
        furthest = max(furthest, _PROGRESS["ACCEPTED"])
        for status, n in _PROGRESS.items():
            if 0 < n <= furthest:  # "ORDERED" counts orders, not shipments
                reached[status] += 1
    return [(label, reached[status]) for status, label in FUNNEL]


def failovers(shipments: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for shipment_id, view in shipments.items():
        attempts = view.get("waybill_attempts") or []
        failed = [a for a in attempts if a.get("outcome") != "created"]
        if not failed:
            continue
        winner = next((a for a in attempts if a.get("outcome") == "created"), None)
        first = failed[0]
        found.append(
            {
                "shipment_id": shipment_id,
                "from": f"{first['carrier']} via {first['provider']}",
                "to": f"{winner['carrier']} via {winner['provider']}" if winner else "WAYBILL_FAILED",
                "reason": first.get("outcome"),
                "at": epoch(first.get("at")),
                "attempts": len(attempts),
            }
        )
    return sorted(found, key=lambda f: f["at"] or 0.0)


def timeline(record: Mapping[str, Any], bucket: float = 2.0) -> dict[str, Any]:
    """Waybills issued per provider and failed attempts per bucket of seconds since the first order."""
    start = float(record.get("orders_started_at") or record.get("started_at") or 0.0)
    created: dict[str, Counter[int]] = defaultdict(Counter)
    failed: Counter[int] = Counter()
    skipped: Counter[int] = Counter()
    last = 0
    for view in (record.get("shipments") or {}).values():
        for attempt in view.get("waybill_attempts") or []:
            at = epoch(attempt.get("at"))
            if at is None:
                continue
            slot = max(0, int((at - start) // bucket))
            last = max(last, slot)
            if attempt.get("outcome") == "created":
                created[attempt["provider"]][slot] += 1
            elif attempt.get("outcome") == "skipped_circuit_open":
                skipped[slot] += 1
            else:
                failed[slot] += 1
    marks = []
    for event in record.get("chaos") or []:
        if event.get("kind") in {"outage_on", "outage_off"}:
            label = f"{event['provider']} {event['kind'].replace('_', ' ')}"
            marks.append({"t": float(event["at"]) - start, "label": label})
    for alert in record.get("alerts") or []:
        if alert.get("kind") == "circuit_opened" and alert.get("time"):
            marks.append({"t": float(alert["time"]) - start, "label": f"circuit opened: {alert.get('provider')}"})
    slots = last + 1
    return {
        "bucket": bucket,
        "slots": slots,
        "created": {p: [c[i] for i in range(slots)] for p, c in sorted(created.items())},
        "failed": [failed[i] for i in range(slots)],
        "skipped": [skipped[i] for i in range(slots)],
        "marks": sorted(marks, key=lambda m: m["t"]),
    }


def push_to_visible(record: Mapping[str, Any]) -> list[float]:
    """For the probe shipments: first push carrying a scan -> first API read showing it (upper bound)."""
    first_seen: Mapping[str, Mapping[str, float]] = record.get("first_seen") or {}
    shipments = record.get("shipments") or {}
    numbers = {v.get("tracking_number"): sid for sid, v in shipments.items() if sid in first_seen}
    first_push: dict[tuple[str, float], float] = {}
    for box in (record.get("sandboxes") or {}).values():
        for push in box.get("pushes", []):
            sid = numbers.get(push.get("tracking_number"))
            if sid is None or push.get("status") != 200:
                continue
            for _, at in push.get("scans", []):
                key = (sid, epoch(at) or 0.0)
                sent = float(push.get("sent_at") or push["time"])
                first_push[key] = min(sent, first_push.get(key, sent))
    samples = []
    for sid, seen in first_seen.items():
        for occurred, visible in seen.items():
            pushed = first_push.get((sid, epoch(occurred) or 0.0))
            if pushed is not None:
                samples.append(max(0.0, float(visible) - pushed))
    return samples


def order_to_waybill(shipments: Mapping[str, Mapping[str, Any]]) -> list[float]:
    samples = []
    for view in shipments.values():
        created = next((a for a in view.get("waybill_attempts") or [] if a.get("outcome") == "created"), None)
        start, end = epoch(view.get("created_at")), epoch(created.get("at")) if created else None
        if start is not None and end is not None:
            samples.append(max(0.0, end - start))
    return samples


def handler_time(
    metrics: Mapping[str, Any], shipments: int, pushes: int, batch_window: float | None = None
) -> dict[str, str]:
    """How much of each latency our handlers ran (their AWS calls to the emulator and carrier calls
    included), from the stack's per-function invocation counts and durations; the rest of a latency is the
    local stack's queues (SQS polling, moto's Step Functions scheduling, the emulator's Lambda concurrency).

    order -> waybill: the waybill tasks' time per shipment (one execution runs them one after another) plus
    the dispatch's; push -> visible: the webhook's time per push plus one normalizer batch, and the
    normalizer's batching window (``batch_window``: a configured wait, up to that long) when known."""
    functions: Mapping[str, Mapping[str, Any]] = metrics.get("lambda") or {}

    def per(name: str, divisor: int) -> float:
        duration = float((functions.get(name) or {}).get("duration_ms") or 0) / 1000
        return duration / divisor if divisor else 0.0

    def per_call(name: str) -> float:
        return per(name, int((functions.get(name) or {}).get("invocations") or 0))

    notes: dict[str, str] = {}
    if shipments and functions.get("WaybillTasksFunction"):
        tasks, dispatch = per("WaybillTasksFunction", shipments), per("WaybillDispatchFunction", shipments)
        calls = int(functions["WaybillTasksFunction"].get("invocations") or 0) / shipments
        notes["order_to_waybill"] = (
            f"our handlers ran {tasks + dispatch:.1f} s of it per shipment ({calls:.1f} waybill tasks of "
            f"{per_call('WaybillTasksFunction'):.2f} s, dispatch {dispatch:.2f} s; their AWS calls to the emulator "
            "and carrier calls included); the rest is the local stack's queues"
        )
    if pushes and functions.get("CarrierWebhookFunction"):
        webhook, batch = per_call("CarrierWebhookFunction"), per_call("TrackingNormalizerFunction")
        waits = (
            f"; the normalizer's batching window, a configured wait, gathers pushes for up to {batch_window:g} s"
            if batch_window
            else ""
        )
        notes["push_to_visible"] = (
            f"our handlers ran {webhook + batch:.1f} s of it (webhook {webhook:.2f} s per push, one normalizer "
            f"batch {batch:.2f} s, AWS calls included){waits}; the rest is the local stack's queues and the "
            "probe's polling"
        )
    return notes


def summarize(record: Mapping[str, Any]) -> Summary:
    orders: Sequence[Mapping[str, Any]] = record.get("orders") or []
    shipments: Mapping[str, Mapping[str, Any]] = record.get("shipments") or {}
    sandboxes: Mapping[str, Mapping[str, Any]] = record.get("sandboxes") or {}
    alerts = [a if "kind" in a else parse_alert(a) for a in record.get("alerts") or []]
    sent = [o for o in orders if o.get("status_code") is not None]
    rejected = [
        {
            "order_id": o["order_id"],
            "status_code": o["status_code"],
            "field": (o.get("error") or {}).get("field", ""),
            "reason": (o.get("error") or {}).get("message", ""),
            "planted": o.get("bad_input"),
        }
        for o in sent
        if o["status_code"] == 422
    ]
    replays = [o for o in orders if o.get("resend") and o.get("replay_status_code") is not None]
    waybills: Counter[tuple[str, str]] = Counter(
        (v["provider"], v["carrier"]) for v in shipments.values() if v.get("tracking_number")
    )
    stalled = stalled_parcels(sandboxes, shipments)
    stall_alerted = [a["shipment_id"] for a in alerts if a["kind"] == "stall"]
    late_stalls, lagged_stalls = unplanted_stalls(alerts, shipments, sandboxes, stalled)
    pushes, acks = push_figures(sandboxes, shipments)
    aws, invocations = aws_figures(record.get("metrics") or {}, len(shipments))
    observations = record.get("observations") or {}
    invariant_results = check_all(
        shipments,
        issued_waybills(sandboxes),
        observations,
        stalled,
        alerts,
        iam_denials=(record.get("metrics") or {}).get("iam_denials", []),
        iam_checked=int((record.get("metrics") or {}).get("iam_checked") or 0),
    )
    outage = {
        e["kind"]: e["at"] - float(record.get("orders_started_at") or 0)
        for e in record.get("chaos") or []
        if e.get("kind") in {"outage_on", "outage_off"}
    }
    probes, interval = len(record.get("first_seen") or {}), (record.get("settings") or {}).get("probe_interval", "?")
    probe_note = f"carrier push sent -> first GET showing the scan; {probes} probe shipments polled every {interval} s"
    split = handler_time(record.get("metrics") or {}, len(shipments), len(acks), record.get("tracking_batch_window_s"))
    if "push_to_visible" in split:
        probe_note += "; " + split["push_to_visible"]
    return Summary(
        run_id=str(record.get("run_id", "")),
        orders_sent=len(sent),
        accepted=len(shipments),
        rejected=rejected,
        replays=len(replays),
        replays_same_shipment=sum(1 for o in replays if o.get("replay_shipment_id") == o.get("shipment_id")),
        send_errors=[f"{o['order_id']}: {o.get('send_error')}" for o in orders if o.get("send_error")],
        waybills=waybills,
        failovers=failovers(shipments),
        final_statuses=Counter(str(v.get("status")) for v in shipments.values()),
        stalled=stalled,
        stall_alerts=len(stall_alerted),
        late_stalls=late_stalls,
        lagged_stalls=lagged_stalls,
        alerts=Counter(a["kind"] for a in alerts),
        pushes=pushes,
        aws_per_shipment=aws,
        lambda_per_shipment=invocations,
        order_to_waybill=LatencyFigures(
            "order -> waybill",
            tuple(order_to_waybill(shipments)),
            "; ".join(
                ["shipment accepted -> waybill recorded (server clocks), all accepted orders"]
                + [split[k] for k in ("order_to_waybill",) if k in split]
            ),
        ),
        push_to_visible=LatencyFigures("push -> visible in the API", tuple(push_to_visible(record)), probe_note),
        webhook_ack=LatencyFigures("webhook ACK", tuple(acks), "push sent -> carrier got our ACK (all pushes)"),
        funnel=funnel(orders, shipments),
        timeline=timeline({**record, "alerts": alerts}),
        invariants=invariant_results,
        duration_seconds=float(record.get("finished_at", 0) or 0) - float(record.get("started_at", 0) or 0),
        stack_ready_seconds=float(record.get("stack_ready_seconds") or 0),
        outage=outage,
        extra={
            "not_final": sorted(
                sid for sid, v in shipments.items() if v.get("status") not in FINAL and sid not in stalled
            ),
            "callbacks": record.get("callbacks", 0),
            "sweeps": len(record.get("sweeps") or []),
            "alert_titles": [a["title"] for a in alerts],
            "push_failures": push_failures(sandboxes),
            "tracking_links": tracking_links(shipments, stalled),
            "scorecards": record.get("scorecards"),
            "selection": selection_figures(shipments),
        },
    )


#: the statuses whose tracking page the summary links first (one parcel each, in this order)
SHOWCASE = ("DELIVERED", "OUT_FOR_DELIVERY", "IN_TRANSIT", "EXCEPTION", "AVAILABLE_FOR_PICKUP", "WAYBILL_CREATED")


def tracking_links(
    shipments: Mapping[str, Mapping[str, Any]], stalled: Iterable[str], count: int = 4
) -> list[dict[str, str]]:
    """A few parcels' customer tracking pages: a stalled one, then one per showcase status (when the
    shipment views carry ``tracking_url``: a record from before the tracking page has none)."""
    linked = {sid: v for sid, v in sorted(shipments.items()) if v.get("tracking_url")}
    chosen = [sid for sid in stalled if sid in linked][:1]
    for status in SHOWCASE:
        chosen += [sid for sid, v in linked.items() if v.get("status") == status and sid not in chosen][:1]
    return [
        {
            "order_id": str(linked[sid].get("order_id")),
            "status": str(linked[sid].get("status")),
            "url": str(linked[sid]["tracking_url"]),
        }
        for sid in chosen[:count]
    ]


_FULL = frozenset({"cap_reached", "balance_exhausted"})


def selection_figures(shipments: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Under the smart strategy: parcels per carrier that issued the waybill and why (the choice's reason,
    the chosen carrier refusing at its create because it was full, or failing over; "no waybill" when every
    candidate failed), the carriers passed over and why (an open circuit, a reached daily cap, a lane
    record), the saving against what the fixed rules would have chosen (tariff prices, fen; only parcels whose
    rules choice was not full, since the rules could not have used it either), and the choices that could not
    meet the promise."""
    by_choice: Counter[tuple[str, str]] = Counter()
    passed: Counter[tuple[str, str]] = Counter()
    saving = priced = unmet = chosen = 0
    for view in shipments.values():
        record = view.get("selection")
        if not record:
            continue
        chosen += 1
        unmet += 0 if record.get("promise_met", True) else 1
        actual = str(view.get("carrier") or "")
        provider = str(view.get("provider") or "")
        attempts = list(view.get("waybill_attempts") or [])
        refused = [
            a
            for a in attempts
            if a.get("carrier") == record["carrier"] and str(a.get("error_code")).startswith("CAPACITY_")
        ]
        if actual == record["carrier"]:
            why = str(record["reason"])
        elif refused:
            why = f"{record['carrier']} full at its create"
        else:  # the chosen carrier failed (an open circuit, an outage): the workflow's failover
            why = f"{record['carrier']} {(attempts[0] if attempts else {}).get('outcome') or 'failed'}"
        issued = f"{actual} via {provider}" if actual else "no waybill"
        by_choice[(issued, why)] += 1
        full = {str(c) for c, reason in record.get("passed_over") or [] if reason in _FULL}
        passed.update((str(c), str(reason)) for c, reason in record.get("passed_over") or [])
        if refused:
            full.add(str(record["carrier"]))
        prices = record.get("prices") or {}
        mine, rules = prices.get(actual), record.get("rules_price_fen")
        if mine is not None and rules is not None and record.get("rules_carrier") not in full:
            saving += int(rules) - int(mine)
            priced += 1
    return {
        "shipments": chosen,
        "by_choice": [[carrier, reason, n] for (carrier, reason), n in sorted(by_choice.items())],
        "passed_over": [[carrier, why, n] for (carrier, why), n in sorted(passed.items())],
        "saving_fen": saving,
        "priced": priced,
        "promise_not_met": unmet,
    }
