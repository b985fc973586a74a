"""Issue 19 "Done when" for returns, end to end over HTTP on the local stack (``python -m sandbox.local``).

* a return of a delivered ZTO parcel is booked through the API as a Kdniao door pickup (1001), the
  sandbox's courier is assigned (StateEx 10), collects it and carries it to the warehouse: the return is
  tracked by the same pipeline and received, with ReturnCreated, ReturnPickedUp and ReturnReceived;
* an SF reverse order cancelled before the courier comes stops: no pickup, ReturnCancelled, the
  provider's order book says cancelled; a Kdniao pickup the courier cannot collect is pickup_failed;
* a forward parcel refused by the customer links to its shipment as a return (ReturnCreated, then
  ReturnReceived when it is back).

The sandboxes are in manual push mode here: each test pushes the stages it means.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.local.client import EventCapture, LocalStackClient
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

ORDER = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "waybill" / "shipment_request.json"
HAPPY = ["picked_up", "in_transit", "arrived_dest_city", "out_for_delivery", "delivered"]


@pytest.fixture(scope="module")
def stack(local_stack: LocalStackClient) -> Iterator[LocalStackClient]:
    for provider in ("kdniao", "sf"):
        local_stack.push_mode(provider, mode="manual")
    try:
        yield local_stack
    finally:
        for provider in ("kdniao", "sf"):
            local_stack.push_mode(provider, mode="auto")


@pytest.fixture(scope="module")
def events(stack: LocalStackClient) -> EventCapture:
    return stack.capture_events(f"returns-{uuid.uuid4().hex[:6]}")


class Seen:
    """The events captured so far (the capture queue is drained once; tests filter by shipment)."""

    def __init__(self, capture: EventCapture) -> None:
        self.capture = capture
        self.all: list[dict[str, Any]] = []

    def of(self, shipment_id: str, prefix: str = "Return") -> list[dict[str, Any]]:
        self.all += self.capture.drain()
        return [
            e for e in self.all if e["detail-type"].startswith(prefix) and e["detail"]["shipment_id"] == shipment_id
        ]

    def wait(self, shipment_id: str, kinds: list[str], timeout: float = 30) -> list[dict[str, Any]]:
        wait_until(lambda: [e["detail-type"] for e in self.of(shipment_id)] == kinds, timeout)
        time.sleep(1.5)  # a duplicate would arrive now
        return self.of(shipment_id)


@pytest.fixture(scope="module")
def seen(events: EventCapture) -> Seen:
    return Seen(events)


def wait(
    check: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        view = check()
        return view if done(view) else None

    final = wait_until(ready, timeout) or check()
    assert done(final), final
    return final


def delivered(stack: LocalStackClient, provider: str, carrier: str | None = None) -> dict[str, Any]:
    """A forward shipment handed over by the OMS and delivered (its provider's sandbox pushes every stage)."""
    body = json.loads(ORDER.read_text(encoding="utf-8")) | {"order_id": f"E2E-RET-{uuid.uuid4().hex[:12]}"}
    if carrier:
        body["carrier"] = carrier
    reply = stack.post_order(body)
    assert reply.status_code == 202, reply.text
    shipment_id = reply.json()["shipment_id"]
    view = wait(lambda: stack.shipment(shipment_id), lambda v: bool(v.get("tracking_number")), timeout=120)
    assert view["provider"] == provider, view
    stack.push(provider, view["tracking_number"], HAPPY)
    return wait(lambda: stack.shipment(shipment_id), lambda v: v["status"] == "DELIVERED")


def ask_return(stack: LocalStackClient, shipment_id: str, item: str, **extra: Any) -> Any:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    body = {
        "items": [{"name": item, "quantity": 1}],
        "reason": "damaged",
        "reason_text": "瓶盖破损",
        "pickup_window": {"start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()},
    } | extra
    return stack.http.post(
        f"{stack.api}/v1/shipments/{shipment_id}/returns", json=body, headers=stack.headers, timeout=60
    )


def wait_booked(stack: LocalStackClient, reply: Any) -> dict[str, Any]:
    """The return the API accepted (202, requested), once the waybill workflow has booked its pickup."""
    assert reply.status_code == 202, reply.text
    assert reply.json()["state"] == "requested"
    return wait(lambda: read_return(stack, reply.json()["return_id"]), lambda v: v["state"] != "requested")


def read_return(stack: LocalStackClient, return_id: str) -> dict[str, Any]:
    reply = stack.http.get(f"{stack.api}/v1/returns/{return_id}", headers=stack.headers, timeout=30)
    reply.raise_for_status()
    return dict(reply.json())


def cancel(stack: LocalStackClient, return_id: str) -> Any:
    return stack.http.post(f"{stack.api}/v1/returns/{return_id}/cancel", headers=stack.headers, timeout=60)


def test_a_return_is_booked_collected_tracked_and_received(stack: LocalStackClient, seen: Seen) -> None:
    # Given a delivered ZTO parcel (Kdniao)
    original = delivered(stack, "kdniao")
    # When the OMS asks for a return of one of its items
    reply = ask_return(stack, original["shipment_id"], "保湿精华液 50ml")
    # Then 202, and the workflow books its door pickup at Kdniao (1001, signed) to the original receiver
    ret = wait_booked(stack, reply)
    return_id, number = ret["return_id"], ret["tracking_number"]
    assert (ret["state"], ret["original_shipment_id"], ret["reason"]) == (
        "pickup_booked",
        original["shipment_id"],
        "damaged",
    )
    assert ret["pickup"]["provider"] == "kdniao"
    assert ret["pickup_address"]["phone"] != "13912345678"  # masked
    assert ret["pickup_address"]["city"] == "上海市"
    booked = [
        r
        for r in stack.requests_seen("kdniao")
        if r.get("operation") == "book_pickup" and r.get("order_code") == return_id
    ]
    assert [r["signature_valid"] for r in booked] == [True]
    assert any(o["order_id"] == return_id and o["tracking_number"] == number for o in stack.order_book("kdniao"))
    # When the sandbox's courier is assigned (StateEx 10 待揽件), collects it and carries it to the warehouse
    stack.push("kdniao", number, ["courier_assigned"])
    wait(lambda: read_return(stack, return_id), lambda v: v["state"] == "courier_assigned")
    stack.push("kdniao", number, ["picked_up", "in_transit"])
    wait(lambda: read_return(stack, return_id), lambda v: v["state"] == "in_transit")
    stack.push("kdniao", number, ["arrived_dest_city", "out_for_delivery", "delivered"])
    received = wait(lambda: read_return(stack, return_id), lambda v: v["state"] == "received")
    # Then it was tracked like any parcel, it is listed under its shipment, and it can no longer be cancelled
    assert received["status"] == "DELIVERED"
    assert len(received["events"]) == 6
    listed = stack.http.get(
        f"{stack.api}/v1/shipments/{original['shipment_id']}/returns", headers=stack.headers, timeout=30
    )
    assert [r["return_id"] for r in listed.json()["returns"]] == [return_id]
    assert cancel(stack, return_id).status_code == 409
    # And the event log has the return's creation, pickup and receipt, once each, without personal data
    announced = seen.wait(return_id, ["ReturnCreated", "ReturnPickedUp", "ReturnReceived"])
    assert [e["detail-type"] for e in announced] == ["ReturnCreated", "ReturnPickedUp", "ReturnReceived"]
    assert all(e["detail"]["original_shipment_id"] == original["shipment_id"] for e in announced)
    assert "13912345678" not in json.dumps(announced, ensure_ascii=False)
    # And a return of what was not shipped, or of more than shipped, is refused naming the field
    invalid = ask_return(stack, original["shipment_id"], "不存在的商品")
    assert invalid.status_code == 422
    assert [f["field"] for f in invalid.json()["fields"]] == ["items"]


def test_a_cancelled_pickup_stops_the_return(stack: LocalStackClient, seen: Seen) -> None:
    # Given a delivered SF parcel and its return booked as an SF reverse order
    original = delivered(stack, "sf", carrier="SF")
    ret = wait_booked(stack, ask_return(stack, original["shipment_id"], "洁面乳 120g"))
    return_id = ret["return_id"]
    assert (ret["state"], ret["pickup"]["provider"]) == ("pickup_booked", "sf")
    assert any(r.get("operation") == "EXP_RECE_CREATE_REVERSE_ORDER" for r in stack.requests_seen("sf"))
    # When it is cancelled before the courier comes (twice: the second is a no-op)
    first, again = cancel(stack, return_id), cancel(stack, return_id)
    # Then the pickup is cancelled with SF and nothing more happens to it
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["state"], first.json()["status"]) == ("cancelled", "CANCELLED")
    assert [o["cancelled"] for o in stack.order_book("sf") if o["order_id"] == return_id] == [True]
    time.sleep(2 * 2.0 + 0.5)  # past two lifecycle stages of the sandbox's clock
    stack.sandbox_post("sf", "/_sandbox/push", {})  # push whatever is due: nothing for a cancelled order
    assert [p for p in stack.sandbox_get("sf", "/_sandbox/pushes") if p.get("order_id") == return_id] == []
    assert read_return(stack, return_id)["state"] == "cancelled"
    announced = seen.wait(return_id, ["ReturnCreated", "ReturnCancelled"])
    assert [e["detail-type"] for e in announced] == ["ReturnCreated", "ReturnCancelled"]
    # And a return of a parcel not delivered yet is refused
    body = json.loads(ORDER.read_text(encoding="utf-8")) | {"order_id": f"E2E-RET-{uuid.uuid4().hex[:12]}"}
    pending = stack.post_order(body).json()["shipment_id"]
    assert ask_return(stack, pending, "洁面乳 120g").status_code == 409
    assert ask_return(stack, "shp_unknown0000", "洁面乳 120g").status_code == 404


def test_a_pickup_the_courier_cannot_collect_is_pickup_failed(stack: LocalStackClient, seen: Seen) -> None:
    original = delivered(stack, "kdniao")
    ret = wait_booked(stack, ask_return(stack, original["shipment_id"], "洁面乳 120g"))
    assert ret["state"] == "pickup_booked", ret
    return_id = ret["return_id"]
    stack.sandbox_post("kdniao", "/_sandbox/pickup-fail", {"order_id": return_id})
    time.sleep(2.5)  # past the sandbox clock's first stage
    stack.sandbox_post("kdniao", "/_sandbox/push", {})
    # the carrier closed the order: the return is pickup_failed, its parcel CANCELLED (no later scan revives it)
    failed = wait(
        lambda: read_return(stack, return_id), lambda v: (v["state"], v["status"]) == ("pickup_failed", "CANCELLED")
    )
    assert failed["events"][0]["raw_code"] == "415"


def test_a_forward_parcel_refused_by_the_customer_links_as_a_return(stack: LocalStackClient, seen: Seen) -> None:
    # Given a ZTO parcel on its way
    body = json.loads(ORDER.read_text(encoding="utf-8")) | {"order_id": f"E2E-REF-{uuid.uuid4().hex[:12]}"}
    shipment_id = stack.post_order(body).json()["shipment_id"]
    view = wait(lambda: stack.shipment(shipment_id), lambda v: bool(v.get("tracking_number")), timeout=120)
    number = view["tracking_number"]
    # When the customer refuses it and the carrier carries it back
    stack.push("kdniao", number, ["picked_up", "in_transit", "out_for_delivery", "returning"])
    wait(lambda: stack.shipment(shipment_id), lambda v: v["status"] == "RETURNING")

    def returns() -> dict[str, Any]:
        reply = stack.http.get(f"{stack.api}/v1/shipments/{shipment_id}/returns", headers=stack.headers, timeout=30)
        return dict(reply.json())

    # Then a return appears on the shipment: in transit, refused, linked from tracking
    linked = returns()["returns"]
    assert [(r["state"], r["reason"], r["linked_from_tracking"]) for r in linked] == [("in_transit", "refused", True)]
    stack.push("kdniao", number, ["returned"])
    back = wait(returns, lambda v: [r["state"] for r in v["returns"]] == ["received"])
    assert back["returns"][0]["return_id"] == shipment_id
    # And ReturnCreated (refused) then ReturnReceived were announced once each
    announced = seen.wait(shipment_id, ["ReturnCreated", "ReturnReceived"])
    assert [e["detail-type"] for e in announced] == ["ReturnCreated", "ReturnReceived"]
    assert (announced[0]["detail"]["reason"], announced[0]["detail"]["linked_from_tracking"]) == ("refused", True)
