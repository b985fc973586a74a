"""The demo run: start the local stack, play a day of orders against it with an outage and stalled
parcels, watch it like an OMS would, then record everything for the summary and the report."""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sandbox.demo.analysis import parse_alert
from sandbox.demo.invariants import FINAL
from sandbox.demo.orders import PlannedOrder, plan_orders
from sandbox.demo.scorecards import fetch as fetch_scorecards
from sandbox.local.client import JsonlTail, LocalStackClient, LocalStackError

#: hours -> seconds factor for the stall rules: 24 h (no pickup, out for delivery) = 15 s, 48 h in transit = 30 s.
#: A parcel moves every ``stage_seconds``; a scan reaches its state after up to the normalizer's 5 s batching
#: window and its batch: 24 h = 10 s left a busy machine so little margin that the sweep alerted parcels whose
#: next scan was already on its way (the summary names those as the local stack's lag)
STALL_TIME_SCALE = 15 / 86400
#: the function whose SQS event source gathers the pushes into batches
NORMALIZER = "TrackingNormalizerFunction"


@dataclass(frozen=True)
class DemoSettings:
    orders: int = 200
    seed: int = 20241111
    local_dir: Path = Path("var")
    stage_seconds: float = 1.5
    stall_time_scale: float = STALL_TIME_SCALE
    outage_provider: str = "sf"
    outage_from: float = 0.35  # share of the orders sent when the outage starts
    outage_to: float = 0.70
    duplicate_rate: float = 0.3
    probe_interval: float = 1.0
    poll_interval: float = 8.0
    max_reads_per_second: float = 5.0  # the OMS's reads share the stack's one process with everything else
    sweep_interval: float = 6.0
    workers: int = 8
    budget_seconds: float = 170.0  # the whole run, stack start to report, stays under this on a quiet machine
    #: after the last order was answered, the parcels' journeys (stages, a stall threshold, a sweep) get at
    #: least this long to settle: on a slow or busy machine the run takes longer rather than cutting them off
    settle_seconds: float = 90.0
    stack_timeout: float = 60.0
    #: the carrier-selection strategy (``DEMO_STRATEGY``: rules or smart; docs/selection.md)
    strategy: str = "rules"
    #: under ``smart``, capacity planning is on and ZTO takes this many parcels a day (``DEMO_ZTO_DAILY_CAP``):
    #: orders past it go to the next carrier, and the summary shows how many were passed over and why
    zto_daily_cap: int = 60

    @property
    def send_window(self) -> float:
        """Seconds over which the day's orders arrive (about 3 orders a second, at least 6 s)."""
        return min(60.0, max(6.0, self.orders * 0.3))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DemoSettings:
        env = dict(os.environ if env is None else env)
        return cls(
            orders=max(1, int(env.get("DEMO_ORDERS") or 200)),
            seed=int(env.get("DEMO_SEED") or 20241111),
            local_dir=Path(env.get("PARCELHUB_LOCAL_DIR") or "var"),
            strategy=env.get("DEMO_STRATEGY") or "rules",
            zto_daily_cap=max(1, int(env.get("DEMO_ZTO_DAILY_CAP") or 60)),
        )

    def hub_config(self) -> dict[str, Any]:
        """The hub configuration the demo's stack runs with."""
        config: dict[str, Any] = {
            "stall": {"time_scale": self.stall_time_scale},
            "selection": {"strategy": self.strategy},
        }
        if self.strategy == "smart":
            config["capacity"] = {"enabled": True, "carriers": {"ZTO": {"daily_cap": self.zto_daily_cap}}}
        return config


@dataclass
class State:
    """Everything the run observed (guarded by ``lock``); ``record()`` turns it into the JSON record."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    phase: str = "starting the local stack"
    orders: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    observations: dict[str, list[tuple[float, str, str | None]]] = field(default_factory=dict)
    first_seen: dict[str, dict[str, float]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    chaos: list[dict[str, Any]] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    stall_planned: set[str] = field(default_factory=set)
    probes: set[str] = field(default_factory=set)
    outage_active: bool = False

    def counts(self) -> dict[str, int]:
        with self.lock:
            statuses: dict[str, int] = {}
            for order in self.orders:
                sid = order.get("shipment_id")
                if sid:
                    status = self.latest.get(sid, {}).get("status", "PENDING")
                    statuses[status] = statuses.get(status, 0) + 1
            return statuses


class Demo:
    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.state = State()
        self.run_id = f"DEMO{time.strftime('%m%d%H%M%S')}{uuid.uuid4().hex[:4].upper()}"
        self.plan: list[PlannedOrder] = plan_orders(settings.orders, seed=settings.seed, run_id=self.run_id)
        self.started_at = time.time()
        self.orders_started_at = 0.0
        self.stop_event = threading.Event()
        self._stack: LocalStackClient | None = None
        self._alerts: JsonlTail | None = None
        self._callbacks: JsonlTail | None = None
        self._queue: list[tuple[float, str]] = []
        self._queue_lock = threading.Lock()
        self._next_read = 0.0
        self._read_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------ helpers
    @property
    def stack(self) -> LocalStackClient:
        if self._stack is None:
            raise LocalStackError("the local stack is not started")
        return self._stack

    def _start_stack(self) -> None:
        settings = self.settings
        self._stack = LocalStackClient.start(
            settings.local_dir,
            {
                "PARCELHUB_SANDBOX_STAGE_SECONDS": str(settings.stage_seconds),
                "PARCELHUB_CONFIG": json.dumps(settings.hub_config()),
                "PARCELHUB_LOCAL_LOG_LEVEL": "WARNING",
            },
            log_path=settings.local_dir / "demo-stack.log",
            timeout=settings.stack_timeout,
        )
        # the watchers, the sender and the sweeper share the client's session
        self.stack.http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32))
        self._alerts = JsonlTail(Path(self.stack.handle["alerts_file"]), from_end=True)
        self._callbacks = JsonlTail(Path(self.stack.handle["oms_callbacks_file"]), from_end=True)

    def elapsed(self) -> float:
        return time.time() - (self.orders_started_at or self.started_at)

    def _chaos(self, kind: str, provider: str, **detail: Any) -> None:
        with self.state.lock:
            self.state.chaos.append({"at": time.time(), "kind": kind, "provider": provider, **detail})

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """The whole run; returns the record (the stack is stopped whatever happens)."""
        try:
            self._start_stack()
            self._prepare()
            self.orders_started_at = time.time()
            for target, name in (
                (self._watch, "watch-1"),
                (self._watch, "watch-2"),
                (self._watch, "watch-3"),
                (self._sweep, "sweeper"),
                (self._tail_alerts, "alerts"),
            ):
                self._thread(target, name)
            self._send_orders()
            self._drain()
            self.stop_event.set()
            for thread in self._threads:
                thread.join(timeout=5)
            self.state.phase = "collecting the results"
            return self._collect()
        finally:
            self.stop_event.set()
            if self._stack is not None:
                self._stack.stop()

    def _prepare(self) -> None:
        for provider in self.stack.sandboxes:
            self.stack.push_mode(provider, mode="auto", duplicate_rate=self.settings.duplicate_rate, shuffle=True)
            self._chaos("push_mode", provider, duplicate_rate=self.settings.duplicate_rate, shuffle=True)
        self.stack.reset_metrics()

    # ------------------------------------------------------------------------------------ the OMS
    def _send_orders(self) -> None:
        settings = self.settings
        interval = settings.send_window / max(len(self.plan), 1)
        outage_on = int(len(self.plan) * settings.outage_from)
        outage_off = int(len(self.plan) * settings.outage_to)
        self.state.phase = "the OMS is sending the day's orders"
        with ThreadPoolExecutor(settings.workers, thread_name_prefix="oms") as pool:
            for order in self.plan:
                due = self.orders_started_at + order.index * interval
                while (wait := due - time.time()) > 0:
                    time.sleep(min(wait, 0.1))
                if (
                    order.index == outage_on
                    and settings.outage_provider in self.stack.sandboxes
                    and len(self.plan) >= 10
                ):
                    self.stack.fault(settings.outage_provider, outage=True)
                    self._chaos("outage_on", settings.outage_provider)
                    self.state.outage_active = True
                    self.state.phase = f"{settings.outage_provider} is DOWN: watch failovers and the circuit breaker"
                if order.index == outage_off and self.state.outage_active:
                    self.stack.fault(settings.outage_provider, outage=False)
                    self._chaos("outage_off", settings.outage_provider)
                    self.state.outage_active = False
                    self.state.phase = f"{settings.outage_provider} is back: the circuit half-opens after its cool-down"
                pool.submit(self._send, order)
        self.state.phase = "all orders sent: parcels are moving, stalled ones are being detected"

    def _post(self, body: dict[str, Any]) -> tuple[requests.Response | None, int, str | None]:
        error = None
        for attempt in range(5):
            try:
                response = self.stack.post_order(body)
                if response.status_code < 500:
                    return response, attempt + 1, None
                error = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                error = exc.__class__.__name__
            time.sleep(0.3 * 2**attempt)  # an OMS retries with the same order id: the API is idempotent
        return None, 5, error

    def _send(self, order: PlannedOrder) -> None:
        entry: dict[str, Any] = {
            "index": order.index,
            "order_id": order.order_id,
            "customer_tier": order.customer_tier,
            "declared_value": str(order.declared_value),
            "province": order.province,
            "city": order.city,
            "bad_input": order.bad_input,
            "resend": order.resend,
            "stall_after": order.stall_after,
            "probe": order.probe,
            "sent_at": time.time(),
            "status_code": None,
        }
        response, attempts, error = self._post(order.body)
        entry.update(answered_at=time.time(), attempts=attempts, send_error=error)
        if response is not None:
            entry["status_code"] = response.status_code
            body = _json(response)
            if response.status_code in (200, 202):
                entry["shipment_id"] = body.get("shipment_id")
            else:
                fields = body.get("fields") or [{}]
                entry["error"] = {
                    "error": body.get("error"),
                    "field": fields[0].get("field", ""),
                    "message": fields[0].get("message") or body.get("message", ""),
                }
        sid = entry.get("shipment_id")
        if sid and order.stall_after is not None:
            for provider in self.stack.sandboxes:
                self.stack.sandbox_post(provider, "/_sandbox/stall", {"order_id": sid, "after": order.stall_after})
            self._chaos("stall", "all", shipment_id=sid, after=order.stall_after)
        if sid and order.resend:
            replay, _, _ = self._post(order.body)
            if replay is not None:
                entry["replay_status_code"] = replay.status_code
                entry["replay_shipment_id"] = _json(replay).get("shipment_id")
        with self.state.lock:
            self.state.orders.append(entry)
            if sid:
                self.state.observations.setdefault(sid, [])
                if order.stall_after is not None:
                    self.state.stall_planned.add(sid)
                if order.probe:
                    self.state.probes.add(sid)
                    self.state.first_seen.setdefault(sid, {})
        if sid:
            self._schedule(sid, time.time() + 0.5)

    # ------------------------------------------------------------------------------------ watching
    def _schedule(self, sid: str, at: float) -> None:
        with self._queue_lock:
            heapq.heappush(self._queue, (at, sid))

    def _next_due(self) -> str | None:
        with self._queue_lock:
            if self._queue and self._queue[0][0] <= time.time():
                return heapq.heappop(self._queue)[1]
        return None

    def _pace(self) -> None:
        with self._read_lock:
            slot = max(time.time(), self._next_read)
            self._next_read = slot + 1 / self.settings.max_reads_per_second
        time.sleep(max(0.0, slot - time.time()))

    def read(self, sid: str) -> dict[str, Any] | None:
        response = self.stack.http.get(f"{self.stack.api}/v1/shipments/{sid}", headers=self.stack.headers, timeout=30)
        return response.json() if response.status_code == 200 else None

    def _observe(self, sid: str, view: dict[str, Any], at: float) -> None:
        with self.state.lock:
            self.state.latest[sid] = view
            self.state.observations.setdefault(sid, []).append((at, view["status"], view.get("last_event_at")))
            seen = self.state.first_seen.get(sid)
            if seen is not None:
                for event in view.get("events") or []:
                    seen.setdefault(event["occurred_at"], at)

    def settled(self, sid: str) -> bool:
        view = self.state.latest.get(sid) or {}
        if view.get("status") in FINAL:
            return True
        return sid in self.state.stall_planned and any(
            a["kind"] == "stall" and a["shipment_id"] == sid for a in self.state.alerts
        )

    def _watch(self) -> None:
        while not self.stop_event.is_set():
            sid = self._next_due()
            if sid is None:
                self.stop_event.wait(0.05)
                continue
            self._pace()
            try:
                view = self.read(sid)
            except requests.RequestException:
                view = None
            now = time.time()
            if view is not None:
                self._observe(sid, view, now)
            if not self.settled(sid):
                interval = self.settings.probe_interval if sid in self.state.probes else self.settings.poll_interval
                self._schedule(sid, now + interval)

    def _sweep(self) -> None:
        while not self.stop_event.wait(self.settings.sweep_interval):
            try:
                result = self.stack.invoke("StallDetectorFunction", timeout=30) or {}
            except requests.HTTPError:
                result = {}
            except requests.RequestException:
                continue
            with self.state.lock:
                figures = {k: result.get(k) for k in ("due", "alerted", "already_alerted")}
                self.state.sweeps.append({"at": time.time(), **figures})

    def _tail_alerts(self) -> None:
        while not self.stop_event.wait(0.3):
            self.poll_alerts()

    def poll_alerts(self) -> None:
        assert self._alerts is not None
        for line in self._alerts.read():  # the tailer and the final drain both read: each line exactly once
            alert = parse_alert(line)
            with self.state.lock:
                self.state.alerts.append(alert)

    def _drain(self) -> None:
        """Wait until every accepted shipment is delivered, failed or alerted as stalled (or the budget ends)."""
        deadline = self.started_at + self.settings.budget_seconds - 30  # collecting and stopping take ~20 s
        while time.time() < self.drain_deadline(deadline):
            with self.state.lock:
                sids = [o["shipment_id"] for o in self.state.orders if o.get("shipment_id")]
            if len(self.state.orders) == len(self.plan) and all(self.settled(sid) for sid in sids):
                break
            time.sleep(0.5)
        self.state.phase = "settled: one more stall sweep to show it does not alert twice"
        with contextlib.suppress(requests.RequestException):
            self.stack.invoke("StallDetectorFunction", timeout=30)
        time.sleep(2.0)  # rule -> topic -> alerts.jsonl delivery
        self.poll_alerts()

    def drain_deadline(self, budgeted: float) -> float:
        """The budget's deadline, moved on while the last answered order has not had ``settle_seconds``."""
        with self.state.lock:
            answered = [float(o["answered_at"]) for o in self.state.orders if o.get("answered_at")]
        if not answered:
            return budgeted
        return max(budgeted, max(answered) + self.settings.settle_seconds)

    # ------------------------------------------------------------------------------------ the record
    def _collect(self) -> dict[str, Any]:
        with self.state.lock:
            sids = [o["shipment_id"] for o in self.state.orders if o.get("shipment_id")]
        final: dict[str, dict[str, Any]] = {}
        with ThreadPoolExecutor(6) as pool:
            for sid, view in zip(sids, pool.map(self._read_quietly, sids), strict=True):
                if view is not None:
                    final[sid] = _trim(view)
                    self._observe(sid, view, time.time())
        sandboxes = {}
        for provider in self.stack.sandboxes:
            sandboxes[provider] = {
                "parcels": self.stack.sandbox_get(provider, "/_sandbox/parcels"),
                "pushes": [_trim_push(p) for p in self.stack.sandbox_get(provider, "/_sandbox/pushes")],
                "requests": [
                    {k: r.get(k) for k in ("time", "operation", "fault", "result", "order_code", "tracking_number")}
                    for r in self.stack.requests_seen(provider)
                ],
            }
        metrics = self.stack.metrics()
        scorecards: dict[str, Any] | None = None
        try:  # the scorecards of this run's delivered parcels, as the OMS would read them
            scorecards = fetch_scorecards(self.stack.api, self.stack.headers)
        except requests.RequestException as exc:
            scorecards = {"error": str(exc)[:300]}
        assert self._callbacks is not None
        callbacks = len(self._callbacks.read())
        with self.state.lock:
            return {
                "version": 1,
                "run_id": self.run_id,
                "started_at": self.started_at,
                "orders_started_at": self.orders_started_at,
                "finished_at": time.time(),
                "stack_ready_seconds": self.stack.ready_seconds,
                "settings": {
                    "orders": self.settings.orders,
                    "seed": self.settings.seed,
                    "stage_seconds": self.settings.stage_seconds,
                    "stall_time_scale": self.settings.stall_time_scale,
                    "send_window": self.settings.send_window,
                    "probe_interval": self.settings.probe_interval,
                    "poll_interval": self.settings.poll_interval,
                    "duplicate_rate": self.settings.duplicate_rate,
                    "outage_provider": self.settings.outage_provider,
                },
                "orders": sorted(self.state.orders, key=lambda o: o["index"]),
                "chaos": list(self.state.chaos),
                "observations": {sid: [list(o) for o in seen] for sid, seen in self.state.observations.items()},
                "first_seen": dict(self.state.first_seen),
                "sweeps": list(self.state.sweeps),
                "shipments": final,
                "alerts": list(self.state.alerts),
                "sandboxes": sandboxes,
                "metrics": metrics,
                # a configured wait inside push -> visible: how long the normalizer's event source gathers
                "tracking_batch_window_s": (self.stack.handle.get("batching_windows") or {}).get(NORMALIZER),
                "callbacks": callbacks,
                "scorecards": scorecards,
            }

    def _read_quietly(self, sid: str) -> dict[str, Any] | None:
        for _ in range(3):
            with contextlib.suppress(requests.RequestException):
                return self.read(sid)
        return None


# ---------------------------------------------------------------------------------------- small helpers


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _trim(view: dict[str, Any]) -> dict[str, Any]:
    """The parts of a shipment view the report uses (masked data only, as the API shows it)."""
    keep = (
        "shipment_id",
        "order_id",
        "status",
        "sub_status",
        "carrier",
        "provider",
        "tracking_number",
        "customer_tier",
        "destination_province",
        "destination_city",
        "created_at",
        "updated_at",
        "last_event_at",
        "tracking_url",
    )
    trimmed = {k: view.get(k) for k in keep}
    trimmed["waybill_attempts"] = view.get("waybill_attempts") or []
    selection = view.get("selection")
    if selection:
        prices = {o["carrier"]: o.get("price_fen") for o in selection.get("options") or []}
        trimmed["selection"] = {
            "carrier": selection["carrier"],
            "provider": selection["provider"],
            "reason": selection["reason"],
            "promise_met": selection.get("promise_met", True),
            "rules_carrier": selection.get("rules_carrier"),
            "price_fen": prices.get(selection["carrier"]),
            "rules_price_fen": prices.get(selection.get("rules_carrier")),
            "passed_over": [[o["carrier"], o["blocked"]] for o in selection.get("options") or [] if o.get("blocked")],
            "prices": prices,
        }
    events = view.get("events") or []
    trimmed["events"] = [{k: e.get(k) for k in ("occurred_at", "status", "sub_status")} for e in events]
    return trimmed


def _trim_push(push: dict[str, Any]) -> dict[str, Any]:
    return {
        k: push.get(k)
        for k in ("time", "sent_at", "status", "tracking_number", "carrier", "order_id", "scans", "duplicate")
    }
