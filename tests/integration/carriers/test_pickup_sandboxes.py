"""Door pickups for returns: the SF and Kdniao plugins against their sandboxes over real HTTP (loopback).

Each sandbox books the pickup with the real request shape (signed), keeps it in its order book, walks it
through the pickup lifecycle in its own push format (Kdniao: StateEx 10 待揽件 first), lets it be
cancelled before collection only, and fails it on request (Kdniao)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from parcelhub.carriers.base import CarrierRejected, PickupOrder, TrackingSubscription
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.sf.plugin import SfPlugin
from parcelhub.domain.models import CHINA_TZ, Carrier, Item, Parcel, Party
from parcelhub.domain.returns import PickupWindow, ReturnState, fold
from parcelhub.domain.status import Status, SubStatus
from sandbox.carriers.base import CarrierSandbox
from sandbox.carriers.kdniao import KdniaoSandbox
from sandbox.carriers.sf import SfSandbox
from tests.integration.carriers import test_sf_sandbox
from tests.integration.carriers.test_kdniao_sandbox import APP_KEY, EBUSINESS_ID, Receiver
from tests.integration.carriers.test_sf_sandbox import Webhook

pytestmark = pytest.mark.integration

#: the SF sandbox in manual push mode with its verifying webhook (the SF sandbox suite's fixture)
stack = test_sf_sandbox.stack

CUSTOMER = Party(
    name="李四", phone="18688806057", province="广东省", city="广州市", district="白云区", address="某路1号"
)
WAREHOUSE = Party(
    name="示例品牌仓库", phone="4006789888", province="浙江省", city="杭州市", district="余杭区", address="文一西路1号"
)


def pickup(return_id: str, carrier: Carrier) -> PickupOrder:
    start = datetime.now(CHINA_TZ).replace(microsecond=0) + timedelta(hours=2)
    return PickupOrder(
        return_id=return_id,
        carrier=carrier,
        pickup=CUSTOMER,
        receiver=WAREHOUSE,
        items=(Item(name="护肤品", quantity=1),),
        parcels=(Parcel(weight_kg=1.2),),
        window=PickupWindow(start=start, end=start + timedelta(hours=3)),
    )


def control(sandbox: CarrierSandbox, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{sandbox.url}/_sandbox/{path}", json=body, timeout=5)


def everything(sandbox: CarrierSandbox) -> None:
    sandbox.advance(now=time.monotonic() + 100 * sandbox.stage_seconds)


@pytest.fixture
def kdniao() -> Iterator[tuple[KdniaoSandbox, KdniaoPlugin, Receiver]]:
    box = KdniaoSandbox(EBUSINESS_ID, APP_KEY, port=0, stage_seconds=60.0, seed=11).start()
    plugin = KdniaoPlugin.from_config({"ebusiness_id": EBUSINESS_ID, "app_key": APP_KEY, "base_url": box.url})
    receiver = Receiver(plugin)
    receiver.thread.start()
    box.webhook_url = receiver.url
    try:
        yield box, plugin, receiver  # type: ignore[misc]
    finally:
        box.stop()
        receiver.server.shutdown()
        plugin.client.close()


def scans(receiver: Receiver, plugin: KdniaoPlugin) -> list[tuple[Status, SubStatus]]:
    return [(e.status, e.sub_status) for e in sorted(receiver.events(plugin), key=lambda e: e.occurred_at)]


def test_given_a_kdniao_pickup_when_booked_then_courier_assigned_collected_and_delivered_to_the_warehouse(
    kdniao: tuple[KdniaoSandbox, KdniaoPlugin, Receiver],
) -> None:
    box, plugin, receiver = kdniao
    # When a 1001 pickup is booked and its waybill subscribed
    booking = plugin.book_pickup(pickup("ret_0000000000001", Carrier.ZTO))
    assert booking.tracking_number
    assert booking.booking_id
    assert box.request_log[-1]["operation"] == "book_pickup"
    assert box.request_log[-1]["signature_valid"] is True
    assert [o["order_id"] for o in box.order_book()] == ["ret_0000000000001"]
    plugin.subscribe_tracking(TrackingSubscription(Carrier.ZTO, booking.tracking_number, receiver.url))
    everything(box)
    # Then the pushes say courier assigned (StateEx 10), picked up ... delivered, and the return is received
    seen = scans(receiver, plugin)
    assert seen[0] == (Status.WAYBILL_CREATED, SubStatus.AWAITING_PICKUP)
    assert seen[1][0] is Status.PICKED_UP
    assert seen[-1][0] is Status.DELIVERED
    assert fold(ReturnState.PICKUP_BOOKED, seen) is ReturnState.RECEIVED
    # And it can no longer be cancelled
    with pytest.raises(CarrierRejected):
        plugin.cancel_pickup(booking)


def test_given_a_kdniao_pickup_when_cancelled_before_collection_then_it_stops(
    kdniao: tuple[KdniaoSandbox, KdniaoPlugin, Receiver],
) -> None:
    box, plugin, receiver = kdniao
    booking = plugin.book_pickup(pickup("ret_0000000000002", Carrier.YTO))
    assert booking.tracking_number
    plugin.subscribe_tracking(TrackingSubscription(Carrier.YTO, booking.tracking_number, receiver.url))
    box.advance(now=time.monotonic() + 1.5 * box.stage_seconds)  # the courier is assigned
    plugin.cancel_pickup(booking)
    plugin.cancel_pickup(booking)  # idempotent
    everything(box)
    assert scans(receiver, plugin) == [(Status.WAYBILL_CREATED, SubStatus.AWAITING_PICKUP)]
    assert box.order_book()[0]["cancelled"] is True


def test_given_a_kdniao_pickup_when_the_courier_cannot_collect_then_pickup_failed(
    kdniao: tuple[KdniaoSandbox, KdniaoPlugin, Receiver],
) -> None:
    box, plugin, receiver = kdniao
    booking = plugin.book_pickup(pickup("ret_0000000000003", Carrier.ZTO))
    assert booking.tracking_number
    plugin.subscribe_tracking(TrackingSubscription(Carrier.ZTO, booking.tracking_number, receiver.url))
    assert control(box, "pickup-fail", {"order_id": "ret_0000000000003"}).status_code == 200
    everything(box)
    seen = scans(receiver, plugin)
    assert seen[-1][0] is Status.CANCELLED
    assert fold(ReturnState.PICKUP_BOOKED, seen) is ReturnState.PICKUP_FAILED


def test_given_an_sf_reverse_order_when_booked_then_tracked_and_refused_cancel_after_pickup(
    stack: tuple[SfSandbox, SfPlugin, Webhook],
) -> None:
    sandbox, plugin, webhook = stack
    booking = plugin.book_pickup(pickup("ret_0000000000004", Carrier.SF))
    assert booking.tracking_number
    assert booking.tracking_number.startswith("SF")
    assert sandbox.request_log[-1]["operation"] == "EXP_RECE_CREATE_REVERSE_ORDER"
    everything(sandbox)
    statuses = [e.status for e in sorted(webhook.events, key=lambda e: e.occurred_at)]
    assert statuses[0] is Status.PICKED_UP
    assert statuses[-1] is Status.DELIVERED
    with pytest.raises(CarrierRejected) as refused:
        plugin.cancel_pickup(booking)
    assert refused.value.code == "8252"


def test_given_an_sf_reverse_order_when_cancelled_before_pickup_then_no_route_and_idempotent(
    stack: tuple[SfSandbox, SfPlugin, Webhook],
) -> None:
    sandbox, plugin, webhook = stack
    booking = plugin.book_pickup(pickup("ret_0000000000005", Carrier.SF))
    plugin.cancel_pickup(booking)
    plugin.cancel_pickup(booking)  # 8037 已消单: done
    everything(sandbox)
    assert webhook.events == []
    assert control(sandbox, "pickup-fail", {"order_id": "ret_0000000000005"}).status_code == 400
