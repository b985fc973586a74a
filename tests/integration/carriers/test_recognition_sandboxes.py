"""Every carrier #19 names through both aggregator sandboxes, over real HTTP on loopback: the sandbox's
ground truth (``POST /_sandbox/parcels``), number recognition (Kdniao 2002, Kuaidi100 autonumber), the
lifecycle pushed and parsed to the right carrier and statuses, and Kuaidi100's company correction."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from parcelhub.carriers.base import CarrierCorrection, HttpRequest, ParsedPush, TrackingSubscription
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kuaidi100.plugin import Kuaidi100Plugin
from parcelhub.domain.models import Carrier
from parcelhub.domain.status import Status, SubStatus, fold
from sandbox.carriers.base import HAPPY_PATH, CarrierSandbox
from sandbox.carriers.kdniao import KdniaoSandbox
from sandbox.carriers.kuaidi100 import Kuaidi100Sandbox
from sandbox.numbers import published_numbers

pytestmark = pytest.mark.integration

EBUSINESS_ID, APP_KEY = "1234567", "00000000-1111-2222-3333-444444444444"
KEY, CUSTOMER, SALT = "TESTKEY", "TESTCUSTOMER0000000000000000000", "TESTSALT0123456789"
NAMED = (Carrier.SF, Carrier.ZTO, Carrier.YTO, Carrier.STO, Carrier.YD, Carrier.JTSD, Carrier.EMS, Carrier.YZPY,
         Carrier.JD, Carrier.DBL, Carrier.CAINIAO)  # fmt: skip
LIFECYCLE = [Status.PICKED_UP, Status.IN_TRANSIT, Status.ARRIVED_AT_DESTINATION_CITY, Status.OUT_FOR_DELIVERY,
             Status.DELIVERED]  # fmt: skip


class Collector:
    """A webhook that keeps every push body and answers 200 (the tests parse them afterwards)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.bodies.append((body, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def parsed(self, plugin: KdniaoPlugin | Kuaidi100Plugin) -> list[ParsedPush]:
        return [plugin.parse_push(HttpRequest(body=body, headers=headers)) for body, headers in self.bodies]


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def kdniao(collector: Collector) -> Iterator[tuple[KdniaoSandbox, KdniaoPlugin]]:
    box = KdniaoSandbox(EBUSINESS_ID, APP_KEY, webhook_url=collector.url, stage_seconds=1.0, seed=19)
    box.push_mode.mode = "manual"
    with box:
        plugin = KdniaoPlugin.from_config({"ebusiness_id": EBUSINESS_ID, "app_key": APP_KEY, "base_url": box.url})
        yield box, plugin
        plugin.close()


@pytest.fixture
def kuaidi100(collector: Collector) -> Iterator[tuple[Kuaidi100Sandbox, Kuaidi100Plugin]]:
    box = Kuaidi100Sandbox(KEY, CUSTOMER, SALT, webhook_url=collector.url, stage_seconds=1.0, seed=19)
    box.push_mode.mode = "manual"
    with box:
        config = {"key": KEY, "customer": CUSTOMER, "salt": SALT, "base_url": box.url, "callback_url": collector.url}
        plugin = Kuaidi100Plugin.from_config(config)
        yield box, plugin
        plugin.close()


def register(box: CarrierSandbox, carrier: Carrier, number: str) -> None:
    reply = requests.post(
        f"{box.url}/_sandbox/parcels", json={"carrier": carrier.value, "tracking_number": number}, timeout=5
    )
    assert reply.status_code == 201, reply.text


def push_lifecycle(box: CarrierSandbox, number: str) -> None:
    for stage in HAPPY_PATH:
        reply = requests.post(
            f"{box.url}/_sandbox/push", json={"tracking_number": number, "stages": [stage.value]}, timeout=5
        )
        assert reply.status_code == 200, reply.text


def number_of(carrier: Carrier, seed: int = 0) -> str:
    (number,) = published_numbers(carrier.value, 1, random.Random(f"{carrier.value}-{seed}"))
    return number


def subscription(carrier: Carrier, number: str, url: str, **kw: Any) -> TrackingSubscription:
    origin, destination = "浙江省杭州市", "上海市"
    return TrackingSubscription(carrier, number, url, phone_last4="1234", origin=origin, destination=destination, **kw)


def assert_delivered_under(parsed: list[ParsedPush], carrier: Carrier) -> None:
    events = [event for push in parsed for event in push.events]
    assert {event.carrier for event in events} == {carrier}
    assert sorted({event.status for event in events}, key=LIFECYCLE.index) == LIFECYCLE
    assert not any(push.unmapped_codes for push in parsed)
    state = fold(events)
    assert state is not None
    assert state.status is Status.DELIVERED


# ------------------------------------------------------------------------------------ ground truth


def test_a_registered_parcel_does_not_move_until_it_is_subscribed(
    kdniao: tuple[KdniaoSandbox, KdniaoPlugin], collector: Collector
) -> None:
    box, plugin = kdniao
    number = number_of(Carrier.JTSD)
    register(box, Carrier.JTSD, number)
    assert box.advance(now=time.monotonic() + 1000) == 0
    # When it is subscribed, even under another carrier's code, its lifecycle starts under its true carrier
    plugin.subscribe_tracking(subscription(Carrier.ZTO, number, collector.url))
    assert box.advance(now=time.monotonic() + 1000) == len(HAPPY_PATH)
    assert {event.carrier for push in collector.parsed(plugin) for event in push.events} == {Carrier.JTSD}


def test_registering_a_number_under_a_second_carrier_is_a_conflict(kdniao: tuple[KdniaoSandbox, KdniaoPlugin]) -> None:
    box, _ = kdniao
    register(box, Carrier.SF, "SF1000000000001")
    reply = requests.post(
        f"{box.url}/_sandbox/parcels", json={"carrier": "ZTO", "tracking_number": "SF1000000000001"}, timeout=5
    )
    assert reply.status_code == 409


# ------------------------------------------------------------------------------------ recognition


@pytest.mark.parametrize("carrier", NAMED)
def test_both_aggregators_recognise_a_registered_number_as_its_true_carrier(
    carrier: Carrier, kdniao: tuple[KdniaoSandbox, KdniaoPlugin], kuaidi100: tuple[Kuaidi100Sandbox, Kuaidi100Plugin]
) -> None:
    # Given a parcel of the carrier in both networks, numbered in one of its published shapes
    number = number_of(carrier, seed=1)
    for box, _ in (kdniao, kuaidi100):
        register(box, carrier, number)
    # When each aggregator is asked / Then each names the true carrier alone
    assert kdniao[1].recognise_number(number) == [carrier]
    assert kuaidi100[1].recognise_number(number) == [carrier]


def test_an_unknown_number_is_guessed_from_the_sandboxs_own_prefixes_or_left_empty(
    kdniao: tuple[KdniaoSandbox, KdniaoPlugin], kuaidi100: tuple[Kuaidi100Sandbox, Kuaidi100Plugin]
) -> None:
    for plugin in (kdniao[1], kuaidi100[1]):
        assert plugin.recognise_number("YT9000000000001") == [Carrier.YTO]
        assert plugin.recognise_number("73100000000999") == [Carrier.ZTO, Carrier.STO]
        assert plugin.recognise_number("QQ12") == []
    assert [r["operation"] for r in kuaidi100[0].request_log] == ["autonumber"] * 3


# ------------------------------------------------------------------------------------ every carrier's lifecycle


@pytest.mark.parametrize("aggregator", ["kdniao", "kuaidi100"])
@pytest.mark.parametrize("carrier", NAMED)
def test_every_carrier_is_tracked_to_delivery_through_each_aggregator(
    carrier: Carrier, aggregator: str, request: pytest.FixtureRequest, collector: Collector
) -> None:
    # Given a parcel of the carrier in the aggregator's network, subscribed under its carrier
    box, plugin = request.getfixturevalue(aggregator)
    number = number_of(carrier, seed=2)
    register(box, carrier, number)
    plugin.subscribe_tracking(subscription(carrier, number, collector.url))
    # When it moves to delivery / Then every push parses to that carrier, through the whole lifecycle
    push_lifecycle(box, number)
    parsed = collector.parsed(plugin)
    assert_delivered_under(parsed, carrier)
    assert not any(push.corrections for push in parsed)


# ------------------------------------------------------------------------------------ Kuaidi100 correction


def test_autocom_corrects_a_wrong_company_in_every_push(
    kuaidi100: tuple[Kuaidi100Sandbox, Kuaidi100Plugin], collector: Collector
) -> None:
    # Given a Yunda parcel subscribed as ZTO with autoCom (our detection's first guess was wrong)
    box, plugin = kuaidi100
    register(box, Carrier.YD, "4310508235533")
    plugin.subscribe_tracking(subscription(Carrier.ZTO, "4310508235533", collector.url, auto_detect=True))
    assert [r["auto_com"] for r in box.request_log if r["operation"] == "subscribe"] == ["1"]
    # When it moves
    push_lifecycle(box, "4310508235533")
    # Then every push says autoCheck 1, comOld zhongtong, comNew yunda, and the events are Yunda's
    parsed = collector.parsed(plugin)
    wire = [json.loads(_param(body)) for body, _ in collector.bodies]
    assert {(w["autoCheck"], w["comOld"], w["comNew"], w["lastResult"]["com"]) for w in wire} == {
        ("1", "zhongtong", "yunda", "yunda")
    }
    correction = CarrierCorrection(tracking_number="4310508235533", old=Carrier.ZTO, new=Carrier.YD)
    assert all(list(push.corrections) == [correction] for push in parsed)
    assert_delivered_under(parsed, Carrier.YD)


def test_without_autocom_a_wrong_company_finds_nothing_and_aborts(
    kuaidi100: tuple[Kuaidi100Sandbox, Kuaidi100Plugin], collector: Collector
) -> None:
    # Given a Yunda parcel subscribed as ZTO without autoCom
    box, plugin = kuaidi100
    register(box, Carrier.YD, "4310508235534")
    plugin.subscribe_tracking(subscription(Carrier.ZTO, "4310508235534", collector.url))
    # Then a query under ZTO finds nothing
    assert list(plugin.query_tracking(Carrier.ZTO, "4310508235534").events) == []
    # And once Kuaidi100 gives up, the abort push stops the watch: a carrier stall under the company we sent
    assert box.advance(now=time.monotonic() + 3 * box.stage_seconds) == 0
    (push,) = collector.parsed(plugin)
    (event,) = push.events
    assert (event.carrier, event.status, event.sub_status) == (
        Carrier.ZTO,
        Status.EXCEPTION,
        SubStatus.CARRIER_TRACKING_ABORTED,
    )
    assert box.advance(now=time.monotonic() + 10 * box.stage_seconds) == 0
    assert len(collector.bodies) == 1  # aborted once
    assert not box.parcels["4310508235534"].subscribed  # the parcel itself never started


def _param(body: bytes) -> str:
    return dict(urllib.parse.parse_qsl(body.decode("ascii")))["param"]
