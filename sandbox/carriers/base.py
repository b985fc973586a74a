"""What every carrier sandbox shares: a real HTTP server on loopback, fault injection, a request log,
the control API and a tracking lifecycle on an accelerated clock that pushes to a webhook.

A provider sandbox subclasses :class:`CarrierSandbox` and implements:

* ``routes`` — ``{path: handler}`` for the provider's own API paths; a handler gets a
  :class:`SandboxRequest` and returns ``(status, body, content_type)``;
* ``build_push(parcels_with_scans)`` — one or more HTTP pushes (``PushRequest``) in the provider's
  push format, validly signed;
* ``scan(stage, parcel)`` — the provider's code and text for a lifecycle stage.

Control API (JSON): ``POST /_sandbox/faults`` (``paths`` limits an outage to some API paths; also the
``after_create`` faults: latency past the client's timeout, a lost answer or a 503 once the order
exists), ``GET /_sandbox/orders`` (the order book: every order, cancelled or live),
``POST /_sandbox/push-mode``, ``GET /_sandbox/requests``,
``POST /_sandbox/push`` (manual mode: push what is due now, or ``{"tracking_number": ..., "stages": [...]}``
to push chosen stages), ``POST /_sandbox/webhook`` (``{"url": ...}``), ``GET /_sandbox/parcels``,
``POST /_sandbox/parcels`` (``{"tracking_number", "carrier"}``: a parcel that exists in the carrier's
network - the ground truth of the recognition endpoints - whose lifecycle starts when it is subscribed),
``POST /_sandbox/stock`` (``{"carrier": ..., "numbers": ...}``: the e-waybill numbers left on the account,
which each waybill issued for that carrier uses up), ``GET /_sandbox/pushes`` (every push sent: time,
tracking number, the scans it carried, whether it was a duplicate, the webhook's answer) and
``POST /_sandbox/stall`` (``{"tracking_number" | "order_id": ..., "after": n}``: the parcel's lifecycle
stops after ``n`` scans - a stalled parcel; given an ``order_id`` whose waybill is not issued yet, it
applies when the waybill is issued) and ``POST /_sandbox/pickup-fail`` (``{"tracking_number" | "order_id"}``:
a door pickup not collected yet ends with the provider's failed-pickup scan).

Door pickups (returns): a provider's pickup booking makes a parcel whose lifecycle is ``pickup_plan``
(courier assigned, picked up, ... delivered at the warehouse); cancelling it is refused once collected.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

CHINA_TZ = timezone(timedelta(hours=8))


class Stage(StrEnum):
    """Lifecycle stages every sandbox can emit (each provider maps them to its own codes)."""

    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    ARRIVED_DEST_CITY = "arrived_dest_city"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    # exception branches
    DELIVERY_FAILED = "delivery_failed"
    EXCEPTION = "exception"
    RETURNING = "returning"
    RETURNED = "returned"
    AT_LOCKER = "at_locker"
    # door pickups (returns)
    COURIER_ASSIGNED = "courier_assigned"
    PICKUP_FAILED = "pickup_failed"


HAPPY_PATH: tuple[Stage, ...] = (
    Stage.PICKED_UP,
    Stage.IN_TRANSIT,
    Stage.ARRIVED_DEST_CITY,
    Stage.OUT_FOR_DELIVERY,
    Stage.DELIVERED,
)

#: a door pickup: the provider reports the courier assigned (Kdniao StateEx 10 待揽件), then the parcel
#: goes the happy path to the warehouse
PICKUP_PATH: tuple[Stage, ...] = (Stage.COURIER_ASSIGNED, *HAPPY_PATH)


@dataclass
class Scan:
    stage: Stage
    at: datetime  # China time, second precision
    code: str
    text: str
    location: str


@dataclass
class SandboxParcel:
    """A waybill the sandbox issued (or was told to track) and its scans so far."""

    carrier: str
    tracking_number: str
    order_id: str
    origin_city: str = "杭州市"
    dest_city: str = "上海市"
    plan: tuple[Stage, ...] = HAPPY_PATH
    stall_after: int | None = None  # stop the lifecycle after this many scans (a stalled parcel)
    created_at: float = field(default_factory=time.monotonic)
    scans: list[Scan] = field(default_factory=list)
    subscribed: bool = False
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SandboxRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The form body, each value decoded exactly once."""
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class PushRequest:
    """One HTTP push to the webhook, already encoded and signed."""

    body: bytes
    content_type: str
    path_suffix: str = ""  # appended to the webhook URL (e.g. SF's token is in the URL already)


Reply = tuple[int, bytes | str, str]
Route = Callable[[SandboxRequest], Reply]


@dataclass
class Faults:
    outage: bool = False
    error_rate: float = 0.0
    latency_ms: int = 0
    reject: str | None = None  # "address" | "duplicate" | provider-specific
    #: what goes wrong AFTER a new order was created (the provider has it; the client does not learn it):
    #: "latency" (the answer comes ``after_create_latency_ms`` late - past the client's read timeout, or not),
    #: "lost" (the connection is closed without an answer), "5xx" (HTTP 503 instead of the answer)
    after_create: str | None = None
    after_create_rate: float = 1.0
    after_create_latency_ms: int = 0
    #: the API paths the outage, error-rate and latency faults apply to (empty: every path)
    paths: tuple[str, ...] = ()


class DropConnection(Exception):
    """Close the client's connection without answering (a lost response)."""


@dataclass
class PushMode:
    mode: str = "auto"  # "auto" | "manual"
    duplicate_rate: float = 0.0
    shuffle: bool = False


class CarrierSandbox:
    """Base class: see the module docstring."""

    provider = "base"

    def __init__(
        self,
        *,
        port: int = 0,
        webhook_url: str | None = None,
        stage_seconds: float = 2.0,
        seed: int | None = None,
    ) -> None:
        self.faults = Faults()
        #: carrier -> e-waybill numbers left on the account (a carrier not listed has no limit)
        self.stock: dict[str, int] = {}
        self.push_mode = PushMode()
        self.webhook_url = webhook_url
        self.stage_seconds = stage_seconds
        self.random = random.Random(seed)
        self.parcels: dict[str, SandboxParcel] = {}
        self.request_log: list[dict[str, Any]] = []
        self.push_log: list[dict[str, Any]] = []
        self.stall_orders: dict[str, int] = {}  # order id -> stall after n scans, for waybills not issued yet
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self._push_session = requests.Session()

    # ------------------------------------------------------------------ provider hooks (override)
    def routes(self) -> dict[str, Route]:
        raise NotImplementedError

    def build_push(self, batch: list[tuple[SandboxParcel, list[Scan]]]) -> list[PushRequest]:
        raise NotImplementedError

    def scan_for(self, stage: Stage, parcel: SandboxParcel) -> tuple[str, str, str]:
        """``(code, text, location)`` for a stage."""
        raise NotImplementedError

    #: whether the provider pushes full snapshots (True) or increments (False)
    full_snapshot = True

    # ----------------------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> CarrierSandbox:
        serve = threading.Thread(target=self._server.serve_forever, name=f"{self.provider}-http", daemon=True)
        clock = threading.Thread(target=self._clock, name=f"{self.provider}-clock", daemon=True)
        for thread in (serve, clock):
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._push_session.close()

    def __enter__(self) -> CarrierSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- helpers for subclasses
    def record(self, operation: str, signature_valid: bool | None, **details: Any) -> None:
        with self.lock:
            self.request_log.append(
                {
                    "time": datetime.now(CHINA_TZ).isoformat(timespec="milliseconds"),
                    "operation": operation,
                    "signature_valid": signature_valid,
                    **details,
                }
            )

    def track(self, parcel: SandboxParcel) -> SandboxParcel:
        with self.lock:
            if parcel.stall_after is None and parcel.order_id in self.stall_orders:
                parcel.stall_after = self.stall_orders[parcel.order_id]
            self.parcels[parcel.tracking_number] = parcel
        return parcel

    def stall(self, *, after: int, tracking_number: str | None = None, order_id: str | None = None) -> dict[str, Any]:
        """Stop a parcel's lifecycle after ``after`` scans (where it is now, if it is already further).

        With an ``order_id`` and no parcel yet, remember it: the waybill issued for that order stalls.
        """
        with self.lock:
            matches = [
                p
                for p in self.parcels.values()
                if (tracking_number and p.tracking_number == tracking_number) or (order_id and p.order_id == order_id)
            ]
            if order_id:
                self.stall_orders[order_id] = after
            for parcel in matches:
                parcel.stall_after = max(after, len(parcel.scans))
            return {
                "pending": not matches,
                "parcels": [
                    {"tracking_number": p.tracking_number, "stall_after": p.stall_after, "scans": len(p.scans)}
                    for p in matches
                ],
            }

    def add_scan(self, parcel: SandboxParcel, stage: Stage, at: datetime | None = None) -> Scan:
        code, text, location = self.scan_for(stage, parcel)
        moment = (at or datetime.now(CHINA_TZ)).replace(microsecond=0)
        if parcel.scans and moment <= parcel.scans[-1].at:
            moment = parcel.scans[-1].at + timedelta(seconds=1)
        scan = Scan(stage=stage, at=moment, code=code, text=text, location=location)
        parcel.scans.append(scan)
        return scan

    # ----------------------------------------------------------------------------- the clock and pushing
    def _clock(self) -> None:
        while not self._stop.wait(min(0.2, self.stage_seconds / 4)):
            if self.push_mode.mode != "auto":
                continue
            self.advance()

    def advance(self, now: float | None = None) -> int:
        """Add the scans that are due on the accelerated clock and push them. Returns scans added."""
        now = time.monotonic() if now is None else now
        batch: list[tuple[SandboxParcel, list[Scan]]] = []
        with self.lock:
            for parcel in self.parcels.values():
                if not parcel.subscribed or parcel.cancelled:
                    continue
                limit = len(parcel.plan) if parcel.stall_after is None else min(parcel.stall_after, len(parcel.plan))
                due = min(limit, int((now - parcel.created_at) / self.stage_seconds))
                new = [self.add_scan(parcel, stage) for stage in parcel.plan[len(parcel.scans) : due]]
                if new:
                    batch.append((parcel, list(parcel.scans) if self.full_snapshot else new))
        if batch:
            self.deliver(batch)
        return sum(len(scans) for _, scans in batch)

    def push_stages(self, tracking_number: str, stages: list[Stage]) -> None:
        """Manual: add the given stages to a parcel now and push them."""
        with self.lock:
            parcel = self.parcels[tracking_number]
            new = [self.add_scan(parcel, stage) for stage in stages]
            batch = [(parcel, list(parcel.scans) if self.full_snapshot else new)]
        self.deliver(batch)

    def deliver(self, batch: list[tuple[SandboxParcel, list[Scan]]]) -> None:
        """Send pushes to the webhook, with duplication and shuffling per the push mode."""
        if not self.webhook_url:
            return
        pushes: list[tuple[PushRequest, dict[str, Any]]] = []
        for parcel, scans in batch:
            ordered = list(scans)
            if self.push_mode.shuffle:
                self.random.shuffle(ordered)
            about = {
                "tracking_number": parcel.tracking_number,
                "carrier": parcel.carrier,
                "order_id": parcel.order_id,
                "scans": [[scan.stage.value, scan.at.isoformat()] for scan in ordered],
                "duplicate": False,
            }
            pushes.extend((push, about) for push in self.build_push([(parcel, ordered)]))
        if self.push_mode.duplicate_rate:
            pushes += [
                (push, about | {"duplicate": True})
                for push, about in pushes
                if self.random.random() < self.push_mode.duplicate_rate
            ]
        if self.push_mode.shuffle:
            self.random.shuffle(pushes)
        for push, about in pushes:
            self.send(push, about)

    def send(self, push: PushRequest, about: dict[str, Any] | None = None) -> int:
        """POST one push to the webhook; the push log keeps the answer and ``about`` (what it carried)."""
        url = (self.webhook_url or "") + push.path_suffix
        sent_at = time.time()
        try:
            response = self._push_session.post(
                url, data=push.body, headers={"Content-Type": push.content_type}, timeout=(2, 10)
            )
            status, reply = response.status_code, response.text[:500]
        except requests.RequestException as exc:
            status, reply = 0, f"{exc.__class__.__name__}"
        with self.lock:
            self.push_log.append(
                {"time": time.time(), "sent_at": sent_at, "url": url, "status": status, "reply": reply, **(about or {})}
            )
        return status

    # ----------------------------------------------------------------------------- faults
    def after_create(self, order_id: str) -> Reply | None:
        """Called once a NEW order exists: the ``after_create`` fault, if it strikes (a reply to send instead,
        or :class:`DropConnection`; ``None`` = answer normally, perhaps late)."""
        faults = self.faults
        if faults.after_create is None or self.random.random() >= faults.after_create_rate:
            return None
        self.record("after_create_fault", None, order_id=order_id, fault=faults.after_create)
        if faults.after_create == "latency":
            time.sleep(faults.after_create_latency_ms / 1000)
            return None
        if faults.after_create == "lost":
            raise DropConnection(order_id)
        return 503, b"Service Unavailable", "text/plain"

    def order_book(self) -> list[dict[str, Any]]:
        """Every order the sandbox holds: ``order_id``, ``tracking_number``, ``carrier``, ``cancelled``
        (a provider hook)."""
        return []

    def inject(self) -> Reply | None:
        """Apply latency / outage / error-rate faults. Returns a reply to short-circuit with, if any."""
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        if self.faults.outage or (self.faults.error_rate and self.random.random() < self.faults.error_rate):
            return 503, b"Service Unavailable", "text/plain"
        return None

    # ----------------------------------------------------------------------------- control API
    def _control(self, request: SandboxRequest) -> Reply:  # noqa: PLR0911, PLR0912 - one branch per control route
        path = request.path
        if path == "/_sandbox/pickup-fail" and request.method == "POST":
            body = request.json()
            return self._control_pickup_fail(body.get("tracking_number"), body.get("order_id"))
        if path == "/_sandbox/faults" and request.method == "POST":
            body = request.json()
            with self.lock:
                after = body.get("after_create")
                if after not in (None, "latency", "lost", "5xx"):
                    return _json_reply(400, {"error": f"after_create {after!r}: latency, lost or 5xx"})
                self.faults = Faults(
                    outage=bool(body.get("outage", False)),
                    error_rate=float(body.get("error_rate", 0.0)),
                    latency_ms=int(body.get("latency_ms", 0)),
                    reject=body.get("reject"),
                    after_create=after,
                    after_create_rate=float(body.get("after_create_rate", 1.0)),
                    after_create_latency_ms=int(body.get("after_create_latency_ms", 0)),
                    paths=tuple(str(p) for p in body.get("paths") or ()),
                )
            return _json_reply(200, self.faults.__dict__)
        if path == "/_sandbox/push-mode" and request.method == "POST":
            body = request.json()
            with self.lock:
                self.push_mode = PushMode(
                    mode=str(body.get("mode", "auto")),
                    duplicate_rate=float(body.get("duplicate_rate", 0.0)),
                    shuffle=bool(body.get("shuffle", False)),
                )
            return _json_reply(200, self.push_mode.__dict__)
        if path == "/_sandbox/orders" and request.method == "GET":
            with self.lock:
                return _json_reply(200, self.order_book())
        if path == "/_sandbox/requests" and request.method == "GET":
            with self.lock:
                return _json_reply(200, list(self.request_log))
        if path == "/_sandbox/pushes" and request.method == "GET":
            with self.lock:
                return _json_reply(200, list(self.push_log))
        if path == "/_sandbox/webhook" and request.method == "POST":
            self.webhook_url = request.json().get("url")
            return _json_reply(200, {"url": self.webhook_url})
        if path == "/_sandbox/parcels" and request.method == "GET":
            with self.lock:
                return _json_reply(
                    200,
                    [
                        {
                            "carrier": p.carrier,
                            "tracking_number": p.tracking_number,
                            "order_id": p.order_id,
                            "subscribed": p.subscribed,
                            "cancelled": p.cancelled,
                            "stall_after": p.stall_after,
                            "scans": [s.stage.value for s in p.scans],
                        }
                        for p in self.parcels.values()
                    ],
                )
        if path == "/_sandbox/push" and request.method == "POST":
            body = request.json()
            if "tracking_number" in body:
                try:
                    self.push_stages(body["tracking_number"], [Stage(s) for s in body.get("stages", [])])
                except KeyError:
                    return _json_reply(404, {"error": "unknown tracking_number"})
                return _json_reply(200, {"pushed": len(body.get("stages", []))})
            return _json_reply(200, {"scans": self.advance()})
        if path == "/_sandbox/stall" and request.method == "POST":
            return self._control_stall(request.json())
        if path == "/_sandbox/stock" and request.method == "POST":
            body = request.json()
            carrier, numbers = body.get("carrier"), body.get("numbers")
            if not isinstance(carrier, str) or not isinstance(numbers, int) or numbers < 0:
                return _json_reply(400, {"error": "need carrier and numbers >= 0"})
            with self.lock:
                self.stock[carrier] = numbers
            return _json_reply(200, {"carrier": carrier, "numbers": numbers})
        if path == "/_sandbox/parcels" and request.method == "POST":
            return self._control_register(request.json())
        return _json_reply(404, {"error": f"no control route {request.method} {path}"})

    def _control_register(self, body: dict[str, Any]) -> Reply:
        """A parcel that exists in the carrier's network (the ground truth the recognition endpoints
        answer from). Its lifecycle starts when it is subscribed (under any carrier code), unless
        ``subscribed`` is true (tracked at once, as a waybill the sandbox issued and was subscribed)."""
        carrier, number = body.get("carrier"), body.get("tracking_number")
        if not isinstance(carrier, str) or not carrier or not isinstance(number, str) or not number:
            return _json_reply(400, {"error": "need carrier and tracking_number"})
        with self.lock:
            known = self.parcels.get(number)
            if known is not None and known.carrier != carrier:
                return _json_reply(409, {"error": f"{number} is already a {known.carrier} parcel"})
            parcel = known or self.track(
                SandboxParcel(
                    carrier=carrier,
                    tracking_number=number,
                    order_id=body.get("order_id", ""),
                    plan=tuple(Stage(s) for s in body.get("plan", [s.value for s in HAPPY_PATH])),
                    stall_after=body.get("stall_after"),
                    subscribed=bool(body.get("subscribed", False)),
                )
            )
        return _json_reply(201, {"tracking_number": parcel.tracking_number, "carrier": parcel.carrier})

    def start_lifecycle(self, parcel: SandboxParcel) -> None:
        """Subscribed: the parcel's scans start from now (once; a repeated subscription changes nothing)."""
        if not parcel.subscribed:
            parcel.subscribed = True
            parcel.created_at = time.monotonic()

    def _control_stall(self, body: dict[str, Any]) -> Reply:
        tracking_number, order_id, after = body.get("tracking_number"), body.get("order_id"), body.get("after", 0)
        if not (tracking_number or order_id) or not isinstance(after, int) or after < 0:
            return _json_reply(400, {"error": "need tracking_number or order_id, and after >= 0"})
        result = self.stall(after=after, tracking_number=tracking_number, order_id=order_id)
        if tracking_number and not order_id and result["pending"]:
            return _json_reply(404, {"error": "unknown tracking_number"})
        return _json_reply(202 if result["pending"] else 200, result)

    # ----------------------------------------------------------------------------- door pickups (returns)
    #: the stages of a door pickup this provider reports (a provider without a courier-assigned state
    #: starts at the pickup scan)
    pickup_plan: tuple[Stage, ...] = PICKUP_PATH
    #: whether the provider reports a failed pickup as a scan (``POST /_sandbox/pickup-fail``)
    pickup_failure_scan = True

    def pickup_parcel(
        self, carrier: str, tracking_number: str, order_id: str, origin: str, dest: str, *, subscribed: bool
    ) -> SandboxParcel:
        """A parcel a courier is to collect at the door: its lifecycle is ``pickup_plan``."""
        parcel = SandboxParcel(
            carrier=carrier,
            tracking_number=tracking_number,
            order_id=order_id,
            origin_city=origin,
            dest_city=dest,
            plan=self.pickup_plan,
            subscribed=subscribed,
            extra={"pickup": True},
        )
        return self.track(parcel)

    @staticmethod
    def collected(parcel: SandboxParcel) -> bool:
        """Whether the courier has the parcel (any scan past the courier's assignment)."""
        return any(scan.stage not in (Stage.COURIER_ASSIGNED, Stage.PICKUP_FAILED) for scan in parcel.scans)

    def fail_pickup(self, *, tracking_number: str | None = None, order_id: str | None = None) -> list[str]:
        """The courier cannot collect: a pickup parcel not collected yet ends with a failed-pickup scan (its
        next stage). Returns the tracking numbers that will fail."""
        failed = []
        with self.lock:
            for parcel in self.parcels.values():
                if not parcel.extra.get("pickup") or self.collected(parcel) or parcel.cancelled:
                    continue
                if (tracking_number and parcel.tracking_number == tracking_number) or (
                    order_id and parcel.order_id == order_id
                ):
                    parcel.plan = (*[scan.stage for scan in parcel.scans], Stage.PICKUP_FAILED)
                    failed.append(parcel.tracking_number)
        return failed

    def _control_pickup_fail(self, tracking_number: str | None, order_id: str | None) -> Reply:
        if not self.pickup_failure_scan:
            return _json_reply(400, {"error": f"{self.provider} reports no failed pickup the reference knows of"})
        if not (tracking_number or order_id):
            return _json_reply(400, {"error": "need tracking_number or order_id"})
        failed = self.fail_pickup(tracking_number=tracking_number, order_id=order_id)
        if not failed:
            return _json_reply(404, {"error": "no pickup parcel left to fail (unknown, collected or cancelled)"})
        return _json_reply(200, {"failing": failed})

    # ----------------------------------------------------------------------------- HTTP plumbing
    def _dispatch(self, request: SandboxRequest) -> Reply:
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        route = self.routes().get(request.path)
        if route is None:
            return 404, b"Not Found", "text/plain"
        short_circuit = self.inject() if not self.faults.paths or request.path in self.faults.paths else None
        if short_circuit is not None:
            self.record(request.path, None, fault="unavailable", **self.describe(request))
            return short_circuit
        return route(request)

    def describe(self, request: SandboxRequest) -> dict[str, Any]:
        """What a request asks for, for the request log of calls a fault refused (provider hook)."""
        return {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = SandboxRequest(
                    method=self.command,
                    path=parsed.path,
                    query=dict(urllib.parse.parse_qsl(parsed.query)),
                    headers=dict(self.headers.items()),
                    body=body,
                )
                try:
                    status, payload, content_type = sandbox._dispatch(request)
                except DropConnection:
                    self.close_connection = True  # no answer at all: the client sees the connection closed
                    return
                except Exception as exc:  # a sandbox bug must be visible, not a hang
                    status, payload, content_type = 500, f"sandbox error: {exc!r}", "text/plain"
                data = payload.encode("utf-8") if isinstance(payload, str) else payload
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def _json_reply(status: int, body: Any) -> Reply:
    return status, json.dumps(body, ensure_ascii=False, default=str), "application/json;charset=utf-8"


def json_reply(status: int, body: Any) -> Reply:
    """A JSON reply for provider routes."""
    return _json_reply(status, body)
