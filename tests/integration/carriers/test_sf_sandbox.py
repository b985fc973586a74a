"""The sf plugin against the SF sandbox over real HTTP on loopback (port 0), and the sandbox's route
pushes received by a small local webhook and parsed by the plugin."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierRejected,
    CarrierUnavailable,
    HttpRequest,
    PushRejected,
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.carriers.sf.plugin import SfPlugin
from parcelhub.domain.models import Carrier, EventSource, Party, ShipmentRequest, TrackingEvent
from parcelhub.domain.status import Status, SubStatus, fold
from sandbox.carriers.base import HAPPY_PATH, Stage
from sandbox.carriers.sf import SfSandbox

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sf"
PARTNER = "TESTPARTNER"
CHECKWORD = "TESTCHECKWORD0000000000000000000"
CARD = "7551234567"
TOKEN = "tok-0123456789abcdef0123456789"

LIFECYCLE = [
    (Status.PICKED_UP, SubStatus.NONE),
    (Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),
    (Status.ARRIVED_AT_DESTINATION_CITY, SubStatus.AT_DELIVERY_STATION),
    (Status.OUT_FOR_DELIVERY, SubStatus.NONE),
    (Status.DELIVERED, SubStatus.NONE),
]


# ------------------------------------------------------------------------------------------ helpers


@dataclass
class Webhook:
    """A small local HTTP receiver playing our webhook: ``/v1/webhooks/sf/{token}``, verify, ACK."""

    plugin: SfPlugin
    received: list[dict[str, Any]] = field(default_factory=list)
    events: list[TrackingEvent] = field(default_factory=list)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, str]:
        match = re.fullmatch(r"/v1/webhooks/sf/([^/]*)", path)
        request = HttpRequest(body=body, headers=headers, path_params={"token": match.group(1)} if match else {})
        try:
            parsed = self.plugin.parse_push(request)
        except PushRejected:
            with self.lock:
                self.rejected += 1
            reply = self.plugin.push_ack(False, "unauthorized")
            return 401, reply.body, reply.content_type
        with self.lock:
            self.received.append({"content_type": headers.get("Content-Type"), "routes": len(parsed.events)})
            self.events.extend(parsed.events)
        reply = self.plugin.push_ack(True)
        return reply.status_code, reply.body, reply.content_type


def serve_webhook(webhook: Webhook) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, reply, content_type = webhook.handle(self.path, dict(self.headers.items()), body)
            data = reply.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_plugin(sandbox: SfSandbox, **overrides: Any) -> SfPlugin:
    config = {
        "partner_id": PARTNER,
        "checkword": CHECKWORD,
        "monthly_card": CARD,
        "push_token": TOKEN,
        "base_url": sandbox.url,
        "connect_timeout": 1.0,
        "read_timeout": 3.0,
    }
    return SfPlugin.from_config(config | overrides)


def make_order(shipment_id: str, receiver_city: str = "广州市") -> WaybillOrder:
    raw = json.loads((FIXTURES / "requests" / "order.json").read_text(encoding="utf-8"))
    request = raw["request"] | {"order_id": shipment_id}
    request["receiver"] = request["receiver"] | {"city": receiver_city}
    return WaybillOrder(
        shipment_id=shipment_id,
        carrier=Carrier.SF,
        request=ShipmentRequest.model_validate(request),
        sender=Party(**raw["sender"]),
    )


def control(sandbox: SfSandbox, path: str, body: dict[str, Any]) -> Any:
    response = requests.post(f"{sandbox.url}/_sandbox/{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def stack() -> Iterator[tuple[SfSandbox, SfPlugin, Webhook]]:
    """A sandbox in manual push mode pushing to a local webhook that verifies with the plugin."""
    sandbox = SfSandbox(partner_id=PARTNER, checkword=CHECKWORD, monthly_card=CARD, stage_seconds=1.0, seed=7)
    plugin = make_plugin(sandbox)
    webhook = Webhook(plugin)
    receiver = serve_webhook(webhook)
    host, port = receiver.server_address[:2]
    sandbox.webhook_url = f"http://{host}:{port}/v1/webhooks/sf/{TOKEN}"
    sandbox.start()
    control(sandbox, "push-mode", {"mode": "manual"})
    try:
        yield sandbox, plugin, webhook
    finally:
        sandbox.stop()
        receiver.shutdown()
        receiver.server_close()
        plugin.client.close()


def push_everything(sandbox: SfSandbox) -> None:
    """Move the accelerated clock far enough that every parcel completes its plan, and push."""
    sandbox.advance(now=time.monotonic() + 100 * sandbox.stage_seconds)


# ------------------------------------------------------------------------------------------ calls


def test_create_waybill_issues_an_sf_number_with_label_and_routing(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, _ = stack
    # When we create two waybills
    first = plugin.create_waybill(make_order("SHP-0001"))
    second = plugin.create_waybill(make_order("SHP-0002", receiver_city="上海市"))
    # Then each has a unique SF + 13 digit number, routing codes and the route label
    for waybill in (first, second):
        assert re.fullmatch(r"SF[0-9]{13}", waybill.tracking_number)
        assert waybill.sort_code
        assert waybill.label is not None
        assert json.loads(waybill.label)["waybillNo"] == waybill.tracking_number
    assert first.tracking_number != second.tracking_number
    assert (first.origin_code, first.destination_code, second.destination_code) == ("755", "020", "021")
    assert first.provider_order_id == "SHP-0001"
    # and the sandbox saw valid signatures
    log = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()
    assert [(r["operation"], r["signature_valid"]) for r in log] == [("EXP_RECE_CREATE_ORDER", True)] * 2


def test_duplicate_order_id_is_8016_and_the_existing_waybill_can_be_fetched(
    stack: tuple[SfSandbox, SfPlugin, Webhook],
) -> None:
    _, plugin, _ = stack
    created = plugin.create_waybill(make_order("SHP-DUP"))
    # When the same shipment is sent again (a workflow retry)
    with pytest.raises(CarrierDuplicateOrder) as caught:
        plugin.create_waybill(make_order("SHP-DUP"))
    assert (caught.value.code, caught.value.message) == ("8016", "重复下单")
    # Then fetching the order returns the very same waybill
    fetched = plugin.fetch_waybill("SHP-DUP")
    assert fetched.tracking_number == created.tracking_number
    assert (fetched.sort_code, fetched.origin_code, fetched.destination_code) == (
        created.sort_code,
        created.origin_code,
        created.destination_code,
    )
    assert fetched.label == created.label
    with pytest.raises(CarrierRejected) as missing:
        plugin.fetch_waybill("SHP-NEVER")
    assert missing.value.code == "8018"


def test_cancel_is_idempotent_and_refused_after_pickup(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, _ = stack
    waybill = plugin.create_waybill(make_order("SHP-CANCEL"))
    plugin.cancel_waybill(waybill)
    plugin.cancel_waybill(waybill)  # SF answers 8037 已消单: already done
    assert sandbox.parcels[waybill.tracking_number].cancelled
    picked = plugin.create_waybill(make_order("SHP-PICKED"))
    control(sandbox, "push", {"tracking_number": picked.tracking_number, "stages": ["picked_up"]})
    with pytest.raises(CarrierRejected) as caught:
        plugin.cancel_waybill(picked)
    assert caught.value.code == "8252"
    unknown = waybill.model_copy(update={"provider_order_id": "SHP-UNKNOWN"})
    with pytest.raises(CarrierRejected) as never:
        plugin.cancel_waybill(unknown)
    assert never.value.code == "8024"


def test_subscribe_is_a_no_op_and_query_returns_the_routes(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, _ = stack
    waybill = plugin.create_waybill(make_order("SHP-QUERY"))
    plugin.subscribe_tracking(TrackingSubscription(Carrier.SF, waybill.tracking_number, "https://x.example/h"))
    assert [r["operation"] for r in sandbox.request_log] == ["EXP_RECE_CREATE_ORDER"]
    # Given the parcel went through its whole lifecycle
    push_everything(sandbox)
    # When queried (with the receiver's last 4 digits)
    events = plugin.query_tracking(Carrier.SF, waybill.tracking_number, phone_last4="6057").events
    # Then the polled events follow the lifecycle, in China time
    assert [(e.status, e.sub_status) for e in events] == LIFECYCLE
    assert {e.source for e in events} == {EventSource.POLL}
    assert all(
        e.occurred_at.utcoffset() is not None and e.occurred_at.utcoffset().total_seconds() == 8 * 3600 for e in events
    )
    assert events[0].location == "深圳市"
    assert events[-1].location == "广州市"
    assert sandbox.request_log[-1]["operation"] == "EXP_RECE_SEARCH_ROUTES"
    # and the sender's digits work too, while a stranger's last 4 digits see no routes
    assert len(plugin.query_tracking(Carrier.SF, waybill.tracking_number, phone_last4="0000").events) == len(LIFECYCLE)
    assert plugin.query_tracking(Carrier.SF, waybill.tracking_number, phone_last4="9999").events == []


# ------------------------------------------------------------------------------------------ faults


def test_read_timeout_is_unavailable(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, _, _ = stack
    impatient = make_plugin(sandbox, read_timeout=0.3)
    control(sandbox, "faults", {"latency_ms": 1500})
    started = time.monotonic()
    with pytest.raises(CarrierUnavailable) as caught:
        impatient.create_waybill(make_order("SHP-SLOW"))
    # parcelhub.carriers.http reports a read timeout as "CONNECTION" today (urllib3 wraps it in a
    # MaxRetryError that requests turns into ConnectionError); either way it is retryable
    assert caught.value.code in {"TIMEOUT", "CONNECTION"}
    assert caught.value.retryable
    assert time.monotonic() - started < 1.4  # not retried inside the client


def test_outage_is_unavailable(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, _ = stack
    control(sandbox, "faults", {"outage": True})
    with pytest.raises(CarrierUnavailable) as caught:
        plugin.create_waybill(make_order("SHP-DOWN"))
    assert caught.value.code == "HTTP_503"
    with pytest.raises(CarrierUnavailable):
        plugin.query_tracking(Carrier.SF, "SF0000000000000")
    control(sandbox, "faults", {})
    assert plugin.create_waybill(make_order("SHP-DOWN")).tracking_number.startswith("SF")


def test_address_rejection_is_rejected_with_sfs_code(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, _ = stack
    control(sandbox, "faults", {"reject": "address"})
    with pytest.raises(CarrierRejected) as caught:
        plugin.create_waybill(make_order("SHP-ADDR"))
    assert type(caught.value) is CarrierRejected
    assert (caught.value.code, caught.value.message) == ("20052", "到件地址超出收派范围")


@pytest.mark.parametrize(
    "overrides",
    [{"checkword": "WRONGCHECKWORD000000000000000000"}, {"partner_id": "OTHERPARTNER"}],
)
def test_wrong_credentials_are_auth_errors(
    stack: tuple[SfSandbox, SfPlugin, Webhook], overrides: dict[str, str]
) -> None:
    sandbox, _, _ = stack
    with pytest.raises(CarrierAuthError) as caught:
        make_plugin(sandbox, **overrides).create_waybill(make_order("SHP-AUTH"))
    assert (caught.value.code, caught.value.message) == ("A1006", "数字签名无效")
    assert sandbox.request_log[-1]["signature_valid"] is False


def test_wrong_monthly_card_and_stale_timestamp_are_auth_errors(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, _, _ = stack
    with pytest.raises(CarrierAuthError) as card:
        make_plugin(sandbox, monthly_card="7550000000").create_waybill(make_order("SHP-CARD"))
    assert card.value.code == "8096"
    # seconds instead of the milliseconds SF expects look like 1970: request expired
    with pytest.raises(CarrierAuthError) as stale:
        make_plugin(sandbox, timestamp_unit="s").create_waybill(make_order("SHP-TS"))
    assert stale.value.code == "A1002"


# ------------------------------------------------------------------------------------------ pushes


def test_lifecycle_push_is_received_verified_and_parsed(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, webhook = stack
    waybill = plugin.create_waybill(make_order("SHP-PUSH"))
    # When the accelerated clock runs the whole happy path
    push_everything(sandbox)
    # Then the webhook got the increments, ACKed in SF's format, and parsed the lifecycle
    assert webhook.rejected == 0
    assert [(e.status, e.sub_status) for e in webhook.events] == LIFECYCLE
    assert {e.tracking_number for e in webhook.events} == {waybill.tracking_number}
    assert {e.source for e in webhook.events} == {EventSource.PUSH}
    assert all(p["status"] == 200 and json.loads(p["reply"])["return_code"] == "0000" for p in sandbox.push_log)
    state = fold(webhook.events)
    assert state is not None
    assert state.status is Status.DELIVERED
    # and a later advance pushes nothing again (increments: no node is pushed twice)
    count = len(webhook.events)
    push_everything(sandbox)
    assert len(webhook.events) == count


def test_manual_push_of_exception_branch_stages(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, webhook = stack
    waybill = plugin.create_waybill(make_order("SHP-EXC"))
    stages = ["picked_up", "delivery_failed", "exception", "at_locker", "returning", "returned"]
    control(sandbox, "push", {"tracking_number": waybill.tracking_number, "stages": stages})
    assert [(e.status, e.sub_status, e.raw_code) for e in webhook.events] == [
        (Status.PICKED_UP, SubStatus.NONE, "54"),
        (Status.DELIVERY_FAILED, SubStatus.NONE, "70"),
        (Status.EXCEPTION, SubStatus.HELD, "33"),
        (Status.AVAILABLE_FOR_PICKUP, SubStatus.NONE, "125"),
        (Status.RETURNING, SubStatus.NONE, "648"),
        (Status.RETURNED, SubStatus.NONE, "631"),
    ]


def test_more_than_ten_routes_are_split_into_pushes_of_at_most_ten(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, webhook = stack
    waybill = plugin.create_waybill(make_order("SHP-MANY"))
    stages = ["picked_up"] + ["in_transit"] * 10 + ["arrived_dest_city"]
    control(sandbox, "push", {"tracking_number": waybill.tracking_number, "stages": stages})
    assert [r["routes"] for r in webhook.received] == [10, 2]
    assert len({e.content_hash for e in webhook.events}) == 12


def test_pushes_to_a_wrong_token_are_rejected(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, webhook = stack
    plugin.create_waybill(make_order("SHP-TOKEN"))
    sandbox.webhook_url = sandbox.webhook_url.rsplit("/", 1)[0] + "/not-the-token-0123456789"  # type: ignore[union-attr]
    push_everything(sandbox)
    assert webhook.events == []
    assert webhook.rejected == 1
    assert sandbox.push_log[-1]["status"] == 401
    assert json.loads(sandbox.push_log[-1]["reply"])["return_code"] == "1000"


def test_duplicates_and_shuffling_give_the_same_final_fold(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, plugin, webhook = stack
    waybills = [plugin.create_waybill(make_order(f"SHP-SHUF-{i}")) for i in range(4)]
    # Given duplicated, shuffled pushes
    control(sandbox, "push-mode", {"mode": "manual", "duplicate_rate": 1.0, "shuffle": True})
    push_everything(sandbox)
    # Then pushes were really duplicated, yet per parcel the fold is the lifecycle's final state
    assert len(webhook.events) == 2 * len(waybills) * len(HAPPY_PATH)
    for waybill in waybills:
        events = [e for e in webhook.events if e.tracking_number == waybill.tracking_number]
        distinct = {e.content_hash: e for e in events}
        assert len(distinct) == len(HAPPY_PATH)
        in_order = sorted(distinct.values(), key=lambda e: e.occurred_at)
        assert fold(events) == fold(in_order)
        final = fold(events)
        assert final is not None
        assert final.status is Status.DELIVERED
        assert [e.status for e in in_order] == [s for s, _ in LIFECYCLE]


def test_xml_push_format_end_to_end() -> None:
    # Given a sandbox configured for the form/XML push and a plugin configured to ACK in XML
    sandbox = SfSandbox(
        partner_id=PARTNER, checkword=CHECKWORD, push_token=TOKEN, push_format="xml", stage_seconds=1.0, seed=3
    )
    plugin = make_plugin(sandbox, push_format="xml")
    webhook = Webhook(plugin)
    receiver = serve_webhook(webhook)
    host, port = receiver.server_address[:2]
    sandbox.webhook_url = f"http://{host}:{port}/v1/webhooks/sf"  # the sandbox appends the token
    try:
        with sandbox:
            control(sandbox, "push-mode", {"mode": "manual"})
            plugin.create_waybill(make_order("SHP-XML"))
            push_everything(sandbox)
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert [(e.status, e.sub_status) for e in webhook.events] == LIFECYCLE
    assert webhook.received[0]["content_type"].startswith("application/x-www-form-urlencoded")
    assert sandbox.push_log[-1]["reply"] == '<Response service="RoutePushService"><Head>OK</Head></Response>'


def test_auto_mode_pushes_on_the_accelerated_clock() -> None:
    sandbox = SfSandbox(partner_id=PARTNER, checkword=CHECKWORD, stage_seconds=0.1, seed=5)
    plugin = make_plugin(sandbox)
    webhook = Webhook(plugin)
    receiver = serve_webhook(webhook)
    host, port = receiver.server_address[:2]
    sandbox.webhook_url = f"http://{host}:{port}/v1/webhooks/sf/{TOKEN}"
    try:
        with sandbox:
            plugin.create_waybill(make_order("SHP-AUTO"))
            deadline = time.monotonic() + 10
            while len(webhook.events) < len(HAPPY_PATH) and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert sorted((e.status for e in webhook.events), key=[s for s, _ in LIFECYCLE].index) == [s for s, _ in LIFECYCLE]
    assert len(webhook.events) == len(HAPPY_PATH)


def test_manual_push_for_an_unknown_waybill_is_404(stack: tuple[SfSandbox, SfPlugin, Webhook]) -> None:
    sandbox, _, _ = stack
    response = requests.post(
        f"{sandbox.url}/_sandbox/push",
        json={"tracking_number": "SF0000000000000", "stages": [Stage.PICKED_UP]},
        timeout=5,
    )
    assert response.status_code == 404
