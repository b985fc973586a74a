"""The Kdniao plugin against its sandbox over real HTTP on loopback (port 0)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
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
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.domain.detection import detect
from parcelhub.domain.models import Carrier, Party, ShipmentRequest, TrackingEvent, Waybill
from parcelhub.domain.status import Status, fold
from sandbox.carriers.base import HAPPY_PATH, Stage
from sandbox.carriers.kdniao import KdniaoSandbox

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kdniao"
EBUSINESS_ID = "1234567"
APP_KEY = "00000000-1111-2222-3333-444444444444"
LIFECYCLE = [
    Status.PICKED_UP,
    Status.IN_TRANSIT,
    Status.ARRIVED_AT_DESTINATION_CITY,
    Status.OUT_FOR_DELIVERY,
    Status.DELIVERED,
]


class Receiver:
    """A small webhook: records each push and answers with the plugin's ACK."""

    def __init__(self, plugin: KdniaoPlugin) -> None:
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                try:
                    plugin.verify_push(HttpRequest(body=body, headers=headers))
                    reply = plugin.push_ack(True)
                except Exception as exc:
                    reply = plugin.push_ack(False, str(exc))
                with receiver.lock:
                    receiver.bodies.append((body, headers))
                data = reply.body.encode("utf-8")
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/webhooks/kdniao"

    def events(self, plugin: KdniaoPlugin) -> list[TrackingEvent]:
        with self.lock:
            bodies = list(self.bodies)
        out: list[TrackingEvent] = []
        for body, headers in bodies:
            out.extend(plugin.parse_push(HttpRequest(body=body, headers=headers)).events)
        return out


@pytest.fixture
def sandbox() -> Iterator[KdniaoSandbox]:
    box = KdniaoSandbox(EBUSINESS_ID, APP_KEY, port=0, stage_seconds=60.0, seed=7)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def plugin(sandbox: KdniaoSandbox) -> Iterator[KdniaoPlugin]:
    p = KdniaoPlugin.from_config(
        {"ebusiness_id": EBUSINESS_ID, "app_key": APP_KEY, "base_url": sandbox.url, "read_timeout": 0.5}
    )
    yield p
    p.client.close()


@pytest.fixture
def receiver(plugin: KdniaoPlugin, sandbox: KdniaoSandbox) -> Iterator[Receiver]:
    r = Receiver(plugin)
    r.thread.start()
    sandbox.webhook_url = r.url
    yield r
    r.server.shutdown()
    r.server.server_close()


def control(sandbox: KdniaoSandbox, path: str, body: dict[str, Any]) -> Any:
    response = requests.post(f"{sandbox.url}/_sandbox/{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def order(carrier: Carrier = Carrier.ZTO, shipment_id: str = "shp_7f3c2a9e4b") -> WaybillOrder:
    raw = json.loads((FIXTURES / "requests" / "create_waybill.input.json").read_text("utf-8"))
    return WaybillOrder(
        shipment_id=shipment_id,
        carrier=carrier,
        request=ShipmentRequest.model_validate(raw["request"]),
        sender=Party.model_validate(raw["sender"]),
    )


def subscribe(plugin: KdniaoPlugin, waybill: Waybill) -> None:
    plugin.subscribe_tracking(
        TrackingSubscription(
            carrier=waybill.carrier,
            tracking_number=waybill.tracking_number,
            callback_url="http://unused.example/kdniao",  # Kdniao's push URL is set in its console
            order_id=waybill.provider_order_id,
        )
    )


# ------------------------------------------------------------------------------------------ calls


def test_create_waybill_returns_a_zto_number_label_and_routing(plugin: KdniaoPlugin, sandbox: KdniaoSandbox) -> None:
    # Given a healthy sandbox / When a ZTO waybill is created
    waybill = plugin.create_waybill(order())
    # Then it carries a real-format number, the label and the routing fields
    assert re.fullmatch(r"7\d{13}", waybill.tracking_number)
    assert waybill.carrier is Carrier.ZTO
    assert waybill.provider_order_id == "shp_7f3c2a9e4b"
    assert waybill.label
    assert waybill.tracking_number in waybill.label
    assert waybill.sort_code
    assert waybill.origin_code == "571000"
    assert waybill.destination_code == "200000"
    assert waybill.package_code
    # And the sandbox saw one correctly signed 1007
    [entry] = [r for r in sandbox.request_log if r["operation"] == "create_waybill"]
    assert entry["signature_valid"] is True
    assert entry["request_type"] == "1007"


@pytest.mark.parametrize("carrier", sorted(set(Carrier) - {Carrier.ZJS, Carrier.HTKY, Carrier.UC}))
def test_waybill_numbers_follow_the_carrier_format(plugin: KdniaoPlugin, carrier: Carrier) -> None:
    # When a waybill of a carrier #19 names is issued
    number = plugin.create_waybill(order(carrier)).tracking_number
    # Then its number has a shape our detection ranks the carrier in (first and certain when letter-prefixed)
    found = detect(number)
    assert carrier in [c.carrier for c in found]
    if not number.isdigit():
        assert found[0].carrier is carrier
        assert found[0].certain


def test_waybill_numbers_are_unique_and_a_repeated_order_code_gets_the_same_waybill(plugin: KdniaoPlugin) -> None:
    numbers = {plugin.create_waybill(order(shipment_id=f"shp_{i:04d}")).tracking_number for i in range(25)}
    assert len(numbers) == 25
    first = plugin.create_waybill(order(shipment_id="shp_0003"))
    assert first.tracking_number in numbers
    assert plugin.create_waybill(order(shipment_id="shp_0003")).tracking_number == first.tracking_number


def test_cancel_waybill(plugin: KdniaoPlugin, sandbox: KdniaoSandbox) -> None:
    waybill = plugin.create_waybill(order())
    plugin.cancel_waybill(waybill)
    assert sandbox.parcels[waybill.tracking_number].cancelled
    unknown = waybill.model_copy(update={"tracking_number": "73999999999999"})
    with pytest.raises(CarrierRejected) as caught:
        plugin.cancel_waybill(unknown)
    assert caught.value.code == "105"


def test_the_balance_query_answers_the_numbers_left_and_each_waybill_uses_one(
    plugin: KdniaoPlugin, sandbox: KdniaoSandbox
) -> None:
    # Given a ZTO account with 2 e-waybill numbers left
    sandbox.stock["ZTO"] = 2
    # When the balance is asked (1127), then after a waybill
    before = plugin.waybill_balance(Carrier.ZTO)
    plugin.create_waybill(order(shipment_id="shp_bal_1"))
    after = plugin.waybill_balance(Carrier.ZTO)
    # Then it counts down, and with none left the next create is refused in Kdniao's shape
    assert (before, after) == (2, 1)
    plugin.create_waybill(order(shipment_id="shp_bal_2"))
    assert plugin.waybill_balance(Carrier.ZTO) == 0
    with pytest.raises(CarrierRejected) as caught:
        plugin.create_waybill(order(shipment_id="shp_bal_3"))
    assert caught.value.code == "105"
    # and each query was a correctly signed 1127
    queries = [r for r in sandbox.request_log if r["operation"] == "waybill_balance"]
    assert len(queries) == 3
    assert all(r["signature_valid"] is True and r["request_type"] == "1127" for r in queries)


def test_a_balance_answer_without_a_known_field_is_unavailable(sandbox: KdniaoSandbox) -> None:
    # Given the plugin configured for a field the answer does not carry (the field name is unverified)
    plugin = KdniaoPlugin.from_config(
        {"ebusiness_id": EBUSINESS_ID, "app_key": APP_KEY, "base_url": sandbox.url, "balance_fields": ["Remaining"]}
    )
    sandbox.stock["ZTO"] = 5
    # Then the answer is refused as unreadable, naming the field it looked for
    with pytest.raises(CarrierUnavailable) as caught:
        plugin.waybill_balance(Carrier.ZTO)
    assert caught.value.code == "BAD_RESPONSE"
    assert "Remaining" in caught.value.message


def test_subscribe_then_query_returns_the_scans(plugin: KdniaoPlugin, sandbox: KdniaoSandbox) -> None:
    # Given a subscribed waybill with no scans yet / Then the query answers with no events
    waybill = plugin.create_waybill(order())
    subscribe(plugin, waybill)
    assert sandbox.parcels[waybill.tracking_number].subscribed
    assert sandbox.parcels[waybill.tracking_number].extra["callback"] == "shp_7f3c2a9e4b"
    assert plugin.query_tracking(waybill.carrier, waybill.tracking_number).events == []
    # When two stages happen (no webhook configured) / Then the 8001 query returns them as poll events
    sandbox.push_stages(waybill.tracking_number, [Stage.PICKED_UP, Stage.IN_TRANSIT])
    events = plugin.query_tracking(waybill.carrier, waybill.tracking_number).events
    assert [e.status for e in events] == [Status.PICKED_UP, Status.IN_TRANSIT]
    assert [e.location for e in events] == ["杭州市", "杭州市"]
    assert {r["operation"] for r in sandbox.request_log} >= {"create_waybill", "subscribe", "query"}
    assert all(r["signature_valid"] for r in sandbox.request_log)


# ------------------------------------------------------------------------------------------ faults


def test_timeout_is_unavailable_and_the_create_is_not_resent(plugin: KdniaoPlugin, sandbox: KdniaoSandbox) -> None:
    # Given the sandbox answers slower than the 0.5 s read timeout
    control(sandbox, "faults", {"latency_ms": 1200})
    # When a waybill is created / Then it is retryable-unavailable
    with pytest.raises(CarrierUnavailable) as caught:
        plugin.create_waybill(order())
    assert caught.value.retryable  # (code is "CONNECTION" today: see the note on http.new_session's Retry)
    # And the client did not send the non-idempotent create a second time
    time.sleep(1.0)
    assert len([r for r in sandbox.request_log if r["operation"] == "create_waybill"]) == 1


def test_outage_is_unavailable(plugin: KdniaoPlugin, sandbox: KdniaoSandbox) -> None:
    control(sandbox, "faults", {"outage": True})
    with pytest.raises(CarrierUnavailable) as caught:
        plugin.create_waybill(order())
    assert caught.value.code == "HTTP_503"
    control(sandbox, "faults", {})
    assert plugin.create_waybill(order()).tracking_number


def test_address_rejection_is_rejected_with_the_provider_code_and_message(
    plugin: KdniaoPlugin, sandbox: KdniaoSandbox
) -> None:
    control(sandbox, "faults", {"reject": "address"})
    with pytest.raises(CarrierRejected) as caught:
        plugin.create_waybill(order())
    assert not isinstance(caught.value, CarrierDuplicateOrder)
    assert caught.value.code == "105"
    assert "地址" in caught.value.message


def test_duplicate_rejection_is_a_duplicate_order(plugin: KdniaoPlugin, sandbox: KdniaoSandbox) -> None:
    control(sandbox, "faults", {"reject": "duplicate"})
    with pytest.raises(CarrierDuplicateOrder) as caught:
        plugin.create_waybill(order())
    assert caught.value.code == "106"


@pytest.mark.parametrize(
    "config",
    [
        {"ebusiness_id": EBUSINESS_ID, "app_key": "ffffffff-0000-0000-0000-000000000000"},
        {"ebusiness_id": "7654321", "app_key": APP_KEY},
    ],
    ids=["wrong-app-key", "wrong-ebusiness-id"],
)
def test_wrong_credentials_are_an_auth_error(sandbox: KdniaoSandbox, config: dict[str, str]) -> None:
    wrong = KdniaoPlugin.from_config(config | {"base_url": sandbox.url})
    with pytest.raises(CarrierAuthError) as caught:
        wrong.create_waybill(order())
    assert caught.value.code == "104"
    with pytest.raises(CarrierAuthError):
        wrong.query_tracking(Carrier.YTO, "YT1234567890123")
    assert [r["signature_valid"] for r in sandbox.request_log] == [False, False]


# ------------------------------------------------------------------------------------------ pushes


def test_lifecycle_pushes_reach_the_webhook_and_parse_into_canonical_statuses(
    plugin: KdniaoPlugin, sandbox: KdniaoSandbox, receiver: Receiver
) -> None:
    # Given a subscribed waybill and manual push mode
    control(sandbox, "push-mode", {"mode": "manual"})
    waybill = plugin.create_waybill(order())
    subscribe(plugin, waybill)
    # When each stage of the lifecycle is pushed through the control API
    for stage in HAPPY_PATH:
        control(sandbox, "push", {"tracking_number": waybill.tracking_number, "stages": [stage.value]})
    # Then every push was ACKed with the merchant reply and the snapshots parse into the lifecycle
    assert [p["status"] for p in sandbox.push_log] == [200] * len(HAPPY_PATH)
    assert all(json.loads(p["reply"])["Success"] is True for p in sandbox.push_log)
    events = receiver.events(plugin)
    unique = {e.content_hash: e for e in events}
    assert sorted({e.status for e in unique.values()}, key=LIFECYCLE.index) == LIFECYCLE
    assert len(unique) == len(HAPPY_PATH)  # full snapshots repeat scans; hashes dedupe them
    state = fold(events)
    assert state is not None
    assert state.status is Status.DELIVERED


def test_advance_drives_the_lifecycle_on_the_accelerated_clock(
    plugin: KdniaoPlugin, sandbox: KdniaoSandbox, receiver: Receiver
) -> None:
    control(sandbox, "push-mode", {"mode": "manual"})
    waybill = plugin.create_waybill(order())
    assert sandbox.advance(now=time.monotonic() + 10_000) == 0  # not subscribed: no lifecycle yet
    subscribe(plugin, waybill)
    added = sandbox.advance(now=time.monotonic() + 2.5 * sandbox.stage_seconds)
    assert added == 2
    sandbox.advance(now=time.monotonic() + 10 * sandbox.stage_seconds)
    state = fold(receiver.events(plugin))
    assert state is not None
    assert state.status is Status.DELIVERED


def test_duplicated_and_shuffled_pushes_fold_to_the_same_state(
    plugin: KdniaoPlugin, sandbox: KdniaoSandbox, receiver: Receiver
) -> None:
    # Given two waybills: one pushed cleanly, one with duplicates and shuffling
    control(sandbox, "push-mode", {"mode": "manual"})
    waybill = plugin.create_waybill(order())
    subscribe(plugin, waybill)
    for stage in HAPPY_PATH:
        sandbox.push_stages(waybill.tracking_number, [stage])
    clean = list(receiver.events(plugin))
    receiver.bodies.clear()
    control(sandbox, "push-mode", {"mode": "manual", "duplicate_rate": 0.7, "shuffle": True})
    for _ in range(3):  # the same snapshot re-pushed, shuffled and duplicated
        sandbox.deliver(
            [(sandbox.parcels[waybill.tracking_number], list(sandbox.parcels[waybill.tracking_number].scans))]
        )
    noisy = receiver.events(plugin)
    # Then the fold is the same whatever the arrival order and duplication
    assert len(noisy) > len(HAPPY_PATH)
    assert fold(noisy) == fold(clean) == fold(reversed(noisy))
    final = fold(noisy)
    assert final is not None
    assert final.status is Status.DELIVERED


def test_standard_1008_subscription_gets_101_pushes_without_actions(sandbox: KdniaoSandbox) -> None:
    # Given a plugin configured for the standard editions (1008 subscribe, 1002 query)
    standard = KdniaoPlugin.from_config(
        {
            "ebusiness_id": EBUSINESS_ID,
            "app_key": APP_KEY,
            "base_url": sandbox.url,
            "subscribe_request_type": "1008",
            "query_request_type": "1002",
        }
    )
    r = Receiver(standard)
    r.thread.start()
    sandbox.webhook_url = r.url
    try:
        control(sandbox, "push-mode", {"mode": "manual"})
        waybill = standard.create_waybill(order(Carrier.YTO))
        subscribe(standard, waybill)
        sandbox.push_stages(waybill.tracking_number, list(HAPPY_PATH))
        # Then the 101 push has no Action per trace: the latest scan takes the State (3 = delivered)
        events = r.events(standard)
        assert {e.raw_code for e in events} == {""}
        state = fold(events)
        assert state is not None
        assert state.status is Status.DELIVERED
        polled = standard.query_tracking(waybill.carrier, waybill.tracking_number).events
        assert polled[-1].status is Status.DELIVERED
    finally:
        r.server.shutdown()
        r.server.server_close()
