"""The Kuaidi100 plugin against its sandbox over real HTTP on loopback (port 0)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierRejected,
    CarrierUnavailable,
    HttpRequest,
    PushRejected,
    PushUnreadable,
    TrackingSubscription,
)
from parcelhub.carriers.kuaidi100.plugin import Kuaidi100Plugin
from parcelhub.domain.models import Carrier, EventSource, TrackingEvent
from parcelhub.domain.status import Status, SubStatus, fold
from sandbox.carriers.base import HAPPY_PATH
from sandbox.carriers.kuaidi100 import Kuaidi100Sandbox

pytestmark = pytest.mark.integration

KEY, CUSTOMER, SALT = "TESTKEY", "TESTCUSTOMER0000000000000000000", "TESTSALT"
LIFECYCLE = [
    Status.PICKED_UP,
    Status.IN_TRANSIT,
    Status.ARRIVED_AT_DESTINATION_CITY,
    Status.OUT_FOR_DELIVERY,
    Status.DELIVERED,
]


class Receiver:
    """A small webhook: verifies each push with the plugin, answers with its ACK, keeps the requests."""

    def __init__(self, plugin: Kuaidi100Plugin) -> None:
        self.plugin = plugin
        self.requests: list[HttpRequest] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = HttpRequest(body=body, headers=dict(self.headers.items()))
                try:
                    receiver.plugin.verify_push(request)
                    reply = receiver.plugin.push_ack(True)
                    receiver.requests.append(request)
                except (PushRejected, PushUnreadable) as exc:
                    reply = receiver.plugin.push_ack(False, str(exc))
                data = reply.body.encode("utf-8")
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/v1/webhooks/kuaidi100?tenant=42"

    def events(self) -> list[TrackingEvent]:
        return [event for request in self.requests for event in self.plugin.parse_push(request).events]


def make_plugin(base_url: str, **overrides: Any) -> Kuaidi100Plugin:
    config: dict[str, Any] = {
        "key": KEY,
        "customer": CUSTOMER,
        "salt": SALT,
        "base_url": base_url,
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
    }
    return Kuaidi100Plugin.from_config(config | overrides)


@pytest.fixture
def sandbox() -> Iterator[Kuaidi100Sandbox]:
    running = Kuaidi100Sandbox(KEY, CUSTOMER, SALT, port=0, stage_seconds=0.05, seed=7)
    running.start()
    try:
        control(running, "push-mode", {"mode": "manual"})
        yield running
    finally:
        running.stop()


@pytest.fixture
def plugin(sandbox: Kuaidi100Sandbox) -> Iterator[Kuaidi100Plugin]:
    built = make_plugin(sandbox.url)
    yield built
    built.close()


@pytest.fixture
def receiver(plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox) -> Iterator[Receiver]:
    running = Receiver(plugin)
    running.thread.start()
    control(sandbox, "webhook", {"url": running.url})
    yield running
    running.server.shutdown()
    running.server.server_close()


def control(sandbox: Kuaidi100Sandbox, name: str, body: dict[str, Any]) -> Any:
    response = requests.post(f"{sandbox.url}/_sandbox/{name}", json=body, timeout=5)
    assert response.status_code < 300, response.text
    return response.json()


def requests_seen(sandbox: Kuaidi100Sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()  # type: ignore[no-any-return]


def subscription(number: str, callback: str = "https://hooks.example.com/kuaidi100", **kw: Any) -> TrackingSubscription:
    return TrackingSubscription(
        carrier=kw.pop("carrier", Carrier.YTO),
        tracking_number=number,
        callback_url=callback,
        origin="浙江省杭州市西湖区",
        destination="上海市闵行区",
        **kw,
    )


# -------------------------------------------------------------------------------------------- success


def test_subscribe_starts_tracking_and_resubscribing_is_idempotent(
    plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox
) -> None:
    # When we subscribe a number the sandbox has never seen
    plugin.subscribe_tracking(subscription("YT1000000000001"))
    # Then it tracks it, and the request was recorded with a valid key
    assert sandbox.parcels["YT1000000000001"].subscribed
    assert sandbox.parcels["YT1000000000001"].carrier == "YTO"
    # And subscribing again (501 重复订阅) is a success, not an error
    plugin.subscribe_tracking(subscription("YT1000000000001"))
    seen = [r for r in requests_seen(sandbox) if r["operation"] == "subscribe"]
    assert [r["signature_valid"] for r in seen] == [True, True]


def test_query_returns_the_timeline_newest_first(plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox) -> None:
    # Given a subscribed parcel with no scans yet: the query has no result
    plugin.subscribe_tracking(subscription("YT1000000000002"))
    assert plugin.query_tracking(Carrier.YTO, "YT1000000000002").events == []
    # When the parcel moves along the whole lifecycle
    sandbox.push_stages("YT1000000000002", list(HAPPY_PATH))
    events = plugin.query_tracking(Carrier.YTO, "YT1000000000002").events
    # Then the query yields the canonical lifecycle (newest first), as poll events in China time
    assert [event.status for event in events] == list(reversed(LIFECYCLE))
    assert all(event.source is EventSource.POLL for event in events)
    assert all(event.occurred_at.utcoffset() is not None for event in events)
    state = fold(events)
    assert state is not None
    assert (state.status, state.sub_status) == (Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT)
    assert requests_seen(sandbox)[-1] | {"time": None} == {
        "time": None,
        "operation": "query",
        "signature_valid": True,
        "tracking_number": "YT1000000000002",
    }


def test_sf_query_needs_and_sends_the_phone(plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox) -> None:
    plugin.subscribe_tracking(subscription("SF1400000000001", carrier=Carrier.SF, phone_last4="5678"))
    assert sandbox.parcels["SF1400000000001"].extra["phone"] == "5678"
    sandbox.push_stages("SF1400000000001", [HAPPY_PATH[0]])
    (event,) = plugin.query_tracking(Carrier.SF, "SF1400000000001", "5678").events
    assert (event.carrier, event.status) == (Carrier.SF, Status.PICKED_UP)


def test_create_and_cancel_are_unsupported_without_calling_out(
    plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox
) -> None:
    from parcelhub.domain.models import Provider, Waybill

    waybill = Waybill(provider=Provider.KUAIDI100, carrier=Carrier.YTO, tracking_number="YT1000000000003")
    with pytest.raises(CarrierRejected) as caught:
        plugin.cancel_waybill(waybill)
    assert caught.value.code == "UNSUPPORTED"
    assert requests_seen(sandbox) == []


# --------------------------------------------------------------------------------------------- faults


def test_a_slow_provider_is_unavailable(sandbox: Kuaidi100Sandbox) -> None:
    # Given the sandbox answers after 1.5 s and our read timeout is 0.3 s
    control(sandbox, "faults", {"latency_ms": 1500})
    slow = make_plugin(sandbox.url, read_timeout=0.3)
    # Then the call fails as retryable after the read timeout, not after the provider's 1.5 s
    started = time.monotonic()
    with pytest.raises(CarrierUnavailable) as caught:
        slow.subscribe_tracking(subscription("YT1000000000004"))
    assert time.monotonic() - started < 1.2
    assert caught.value.retryable
    # (the shared http.py labels a read timeout "CONNECTION" today: urllib3 wraps it in MaxRetryError)
    assert caught.value.code in {"TIMEOUT", "CONNECTION"}
    with pytest.raises(CarrierUnavailable):
        slow.query_tracking(Carrier.YTO, "YT1000000000004")
    # And the client did not send the subscription a second time
    time.sleep(2.0)
    assert [r["operation"] for r in requests_seen(sandbox)] == ["subscribe", "query"]


def test_an_outage_is_unavailable(plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox) -> None:
    control(sandbox, "faults", {"outage": True})
    with pytest.raises(CarrierUnavailable) as caught:
        plugin.subscribe_tracking(subscription("YT1000000000005"))
    assert caught.value.code == "HTTP_503"
    with pytest.raises(CarrierUnavailable):
        plugin.query_tracking(Carrier.YTO, "YT1000000000005")
    # And once cleared the same call goes through
    control(sandbox, "faults", {})
    plugin.subscribe_tracking(subscription("YT1000000000005"))


def test_a_business_rejection_carries_the_providers_code_and_message(
    plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox
) -> None:
    control(sandbox, "faults", {"reject": "address"})
    with pytest.raises(CarrierRejected) as caught:
        plugin.subscribe_tracking(subscription("YT1000000000006"))
    assert type(caught.value) is CarrierRejected
    assert caught.value.code == "700"
    assert caught.value.message.startswith("订阅方的订阅数据存在错误")
    assert not caught.value.retryable


def test_wrong_credentials_are_an_auth_error(sandbox: Kuaidi100Sandbox) -> None:
    # Given a plugin configured with another key
    wrong = make_plugin(sandbox.url, key="WRONGKEY")
    # Then subscribe fails with 600 and query with 503 (验证签名失败), both as configuration errors
    with pytest.raises(CarrierAuthError) as subscribed:
        wrong.subscribe_tracking(subscription("YT1000000000007"))
    assert subscribed.value.code == "600"
    with pytest.raises(CarrierAuthError) as queried:
        wrong.query_tracking(Carrier.YTO, "YT1000000000007")
    assert (queried.value.code, queried.value.message) == ("503", "验证签名失败")
    assert [r["signature_valid"] for r in requests_seen(sandbox)] == [False, False]


def test_a_wrong_customer_fails_the_query_signature(sandbox: Kuaidi100Sandbox) -> None:
    wrong = make_plugin(sandbox.url, customer="SOMEBODYELSE")
    with pytest.raises(CarrierAuthError):
        wrong.query_tracking(Carrier.YTO, "YT1000000000008")


def test_the_provider_being_down_entirely_is_unavailable() -> None:
    # Given nothing listens on the port any more
    with Kuaidi100Sandbox(KEY, CUSTOMER, SALT) as gone:
        url = gone.url
    with pytest.raises(CarrierUnavailable) as caught:
        make_plugin(url).subscribe_tracking(subscription("YT1000000000009"))
    assert caught.value.code == "CONNECT"  # never reached the provider: a certain outcome (issue 13)


# --------------------------------------------------------------------------------------------- pushes


def test_pushes_follow_the_lifecycle_and_parse_into_canonical_statuses(
    plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox, receiver: Receiver
) -> None:
    # Given a subscription with our salt
    plugin.subscribe_tracking(subscription("YT2000000000001", callback=receiver.url))
    # When the parcel moves stage by stage (manual push mode, one control call per stage)
    for stage in HAPPY_PATH:
        control(sandbox, "push", {"tracking_number": "YT2000000000001", "stages": [stage.value]})
    # Then each stage produced one validly signed full-snapshot push, ACKed the way Kuaidi100 expects
    assert len(receiver.requests) == len(HAPPY_PATH)
    pushes = json.loads(requests.get(f"{sandbox.url}/_sandbox/pushes", timeout=5).text)
    assert [(p["status"], json.loads(p["reply"])) for p in pushes] == [
        (200, {"result": True, "returnCode": "200", "message": "成功"})
    ] * len(HAPPY_PATH)
    # And each push's newest event walks the lifecycle
    newest = [fold(receiver.plugin.parse_push(request).events) for request in receiver.requests]
    assert [state.status for state in newest if state] == LIFECYCLE
    # And the final snapshot holds the whole timeline with the city and Chinese text
    final = receiver.plugin.parse_push(receiver.requests[-1]).events
    assert sorted(event.status for event in final) == sorted(LIFECYCLE)
    delivered = next(event for event in final if event.status is Status.DELIVERED)
    assert delivered.sub_status is SubStatus.SIGNED_BY_RECIPIENT
    assert delivered.location == "上海,上海,闵行区"
    assert "签收" in delivered.raw_text


def test_advance_on_the_accelerated_clock_pushes_every_due_stage(
    plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox, receiver: Receiver
) -> None:
    plugin.subscribe_tracking(subscription("YT2000000000002", callback=receiver.url))
    parcel = sandbox.parcels["YT2000000000002"]
    # When the clock is far enough past the subscription for every stage
    added = sandbox.advance(now=parcel.created_at + sandbox.stage_seconds * (len(HAPPY_PATH) + 1))
    # Then all stages were scanned and pushed in one snapshot that folds to delivered
    assert added == len(HAPPY_PATH)
    state = fold(receiver.events())
    assert state is not None
    assert state.status is Status.DELIVERED


def test_duplicated_and_shuffled_pushes_fold_to_the_same_state(
    plugin: Kuaidi100Plugin, sandbox: Kuaidi100Sandbox, receiver: Receiver
) -> None:
    # Given a clean run of one parcel
    plugin.subscribe_tracking(subscription("YT2000000000003", callback=receiver.url))
    for stage in HAPPY_PATH:
        sandbox.push_stages("YT2000000000003", [stage])
    clean = fold(receiver.events())
    clean_count = len(receiver.requests)
    # When the sandbox duplicates and shuffles pushes (and shuffles traces inside each snapshot)
    control(sandbox, "push-mode", {"mode": "manual", "duplicate_rate": 0.6, "shuffle": True})
    plugin.subscribe_tracking(subscription("YT2000000000004", callback=receiver.url))
    for stage in HAPPY_PATH:
        sandbox.push_stages("YT2000000000004", [stage])
    noisy_requests = receiver.requests[clean_count:]
    noisy = [e for r in noisy_requests for e in receiver.plugin.parse_push(r).events]
    # Then duplicates arrived, and yet the fold of everything equals the fold of the final snapshot
    assert len(noisy_requests) > len(HAPPY_PATH)
    state = fold(noisy)
    scans = sandbox.parcels["YT2000000000004"].scans
    assert state is not None
    assert clean is not None
    assert (
        (state.status, state.sub_status)
        == (clean.status, clean.sub_status)
        == (
            Status.DELIVERED,
            SubStatus.SIGNED_BY_RECIPIENT,
        )
    )
    assert len({e.content_hash for e in noisy}) == len(scans)
    # And folding in reverse arrival order gives exactly the same state (order independence)
    assert fold(reversed(noisy)) == state


def test_a_push_signed_with_another_salt_is_refused_by_our_webhook(sandbox: Kuaidi100Sandbox) -> None:
    # Given a subscription made with salt A, and a webhook that expects salt B
    ours = make_plugin(sandbox.url)
    other = make_plugin(sandbox.url, salt="ANOTHERSALT")
    receiver = Receiver(other)
    receiver.thread.start()
    try:
        control(sandbox, "webhook", {"url": receiver.url})
        ours.subscribe_tracking(subscription("YT2000000000005", callback=receiver.url))
        # When the sandbox pushes (signed with the subscription's salt)
        sandbox.push_stages("YT2000000000005", [HAPPY_PATH[0]])
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    # Then the webhook refused it with Kuaidi100's failure reply, and nothing was kept
    assert receiver.requests == []
    (push,) = sandbox.push_log
    reply = json.loads(push["reply"])
    assert (reply["result"], reply["returnCode"]) == (False, "500")
