"""Issue 6 "Done when", end to end over HTTP on the local stack (``python -m sandbox.local``).

Shipments are created through the OMS API and get their waybills from the stack's sandboxes through
the waybill workflow. Carrier pushes are then built and signed exactly like the providers do (the
sandbox classes' push builders, holding the stack's local credentials — or the wrong ones) and POSTed
to the stack's webhook URLs; the tests read the result back through ``GET /v1/shipments/{id}``.
The stack's own sandboxes are switched to manual push mode for this module, so only our pushes count.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.carriers.base import PushRequest, SandboxParcel, Stage
from sandbox.carriers.kdniao import KdniaoSandbox
from sandbox.carriers.kuaidi100 import Kuaidi100Sandbox
from sandbox.carriers.sf import SfSandbox
from sandbox.local.client import LocalStackClient
from sandbox.local.settings import LocalSettings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
HAPPY = (Stage.PICKED_UP, Stage.IN_TRANSIT, Stage.ARRIVED_DEST_CITY, Stage.OUT_FOR_DELIVERY, Stage.DELIVERED)
SETTLE = 60.0
PROVIDERS = ("kdniao", "sf", "kuaidi100")


@dataclass
class Tracking:
    stack: LocalStackClient

    @property
    def api(self) -> str:
        return self.stack.api

    def sandbox(self, provider: str) -> str:
        return self.stack.sandbox(provider)

    def post_order(self, tier: str = "regular") -> str:
        body = json.loads(ORDER.read_text(encoding="utf-8"))
        body["order_id"] = f"E2E-TRK-{uuid.uuid4().hex[:12]}"
        body["customer_tier"] = tier
        reply = requests.post(f"{self.api}/v1/shipments", json=body, headers=self.stack.headers, timeout=30)
        assert reply.status_code in (200, 201, 202), reply.text
        return str(reply.json()["shipment_id"])

    def shipment(self, shipment_id: str) -> dict[str, Any]:
        return self.stack.shipment(shipment_id)

    def wait(self, shipment_id: str, done: Any, timeout: float = SETTLE) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        current = self.shipment(shipment_id)
        while not done(current) and time.monotonic() < deadline:
            time.sleep(0.3)
            current = self.shipment(shipment_id)
        return current

    def waybill(self, tier: str = "regular") -> tuple[str, str, str]:
        """A shipment with its waybill: (shipment id, carrier, tracking number)."""
        shipment_id = self.post_order(tier)
        view = self.wait(shipment_id, lambda s: bool(s.get("tracking_number")), timeout=120)
        assert view.get("tracking_number"), view
        return shipment_id, str(view["carrier"]), str(view["tracking_number"])

    def pusher(self, provider: str, **wrong: str) -> Any:
        """An in-process sender of signed pushes in ``provider``'s wire format, to the stack's webhook."""
        creds = LocalSettings.from_env().credentials.for_provider(provider) | wrong
        if provider == "kdniao":
            box: Any = KdniaoSandbox(
                creds["ebusiness_id"], creds["app_key"], webhook_url=f"{self.stack.webhooks}/v1/webhooks/kdniao"
            )
        elif provider == "sf":
            box = SfSandbox(
                partner_id=creds["partner_id"],
                checkword=creds["checkword"],
                push_token=creds["push_token"],
                webhook_url=f"{self.stack.webhooks}/v1/webhooks/sf",
            )
        else:
            box = Kuaidi100Sandbox(
                creds["key"],
                creds["customer"],
                creds["salt"],
                webhook_url=f"{self.stack.webhooks}/v1/webhooks/kuaidi100",
            )
        box.push_mode.mode = "manual"
        return box.start()

    def webhook_sends(self) -> int:
        by_function = self.stack.metrics().get("aws_calls_by_function", {})
        return sum(
            int(calls.get("sqs.SendMessage", 0)) for name, calls in by_function.items() if "webhook" in name.lower()
        )


def pushes_for(box: Any, carrier: str, tracking_number: str, stages: tuple[Stage, ...]) -> list[PushRequest]:
    parcel = box.track(SandboxParcel(carrier=carrier, tracking_number=tracking_number, order_id="", subscribed=True))
    out: list[PushRequest] = []
    for stage in stages:
        scan = box.add_scan(parcel, stage)
        out += box.build_push([(parcel, list(parcel.scans) if box.full_snapshot else [scan])])
    return out


def timeline(view: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(e["status"], e["sub_status"], e["raw_code"], e["text"]) for e in view["events"]]


@pytest.fixture(scope="module")
def tracking(local_stack: LocalStackClient) -> Iterator[Tracking]:
    handle = Tracking(local_stack)
    for provider in PROVIDERS:
        requests.post(f"{handle.sandbox(provider)}/_sandbox/push-mode", json={"mode": "manual"}, timeout=10)
    yield handle
    for provider in PROVIDERS:
        requests.post(f"{handle.sandbox(provider)}/_sandbox/push-mode", json={"mode": "auto"}, timeout=10)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_shuffled_pushes_with_30_percent_duplicates_give_the_in_order_timeline_and_status(
    tracking: Tracking, provider: str
) -> None:
    # Given two shipments with waybills (SF for a VIP order, ZTO via Kdniao otherwise; Kuaidi100 tracks the
    # Kdniao-issued parcels), and the provider's signed pushes of the same lifecycle for each
    tier = "vip" if provider == "sf" else "regular"
    a_id, carrier, a_no = tracking.waybill(tier)
    b_id, _, b_no = tracking.waybill(tier)
    box = tracking.pusher(provider)
    try:
        in_order = pushes_for(box, carrier, a_no, HAPPY)
        chaotic = pushes_for(box, carrier, b_no, HAPPY)
        rng = random.Random(42)
        chaotic += [p for p in chaotic if rng.random() < 0.3]
        rng.shuffle(chaotic)
        # When one lifecycle arrives in order and the other shuffled with 30% duplicates
        for push in in_order + chaotic:
            assert box.send(push) == 200, box.push_log[-1]
    finally:
        box.stop()
    # Then both end DELIVERED with the same timeline (newest first)
    a = tracking.wait(a_id, lambda s: s["status"] == "DELIVERED" and len(s["events"]) == len(HAPPY))
    b = tracking.wait(b_id, lambda s: s["status"] == "DELIVERED" and len(s["events"]) == len(HAPPY))
    assert a["status"] == b["status"] == "DELIVERED"
    assert timeline(b) == timeline(a)
    assert a["events"][0]["status"] == "DELIVERED"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_delivered_parcel_stays_delivered_after_a_late_in_transit_push(tracking: Tracking, provider: str) -> None:
    tier = "vip" if provider == "sf" else "regular"
    shipment_id, carrier, number = tracking.waybill(tier)
    box = tracking.pusher(provider)
    try:
        for push in pushes_for(box, carrier, number, HAPPY):
            assert box.send(push) == 200
        tracking.wait(shipment_id, lambda s: s["status"] == "DELIVERED")
        # When an in-transit scan is pushed after the delivery
        parcel = box.parcels[number]
        late = box.add_scan(parcel, Stage.IN_TRANSIT)
        for push in box.build_push([(parcel, list(parcel.scans) if box.full_snapshot else [late])]):
            assert box.send(push) == 200
    finally:
        box.stop()
    # Then the status stays DELIVERED and the late event is in the timeline
    view = tracking.wait(shipment_id, lambda s: len(s["events"]) == len(HAPPY) + 1)
    assert view["status"] == "DELIVERED"
    assert len(view["events"]) == len(HAPPY) + 1
    assert "IN_TRANSIT" in [e["status"] for e in view["events"][:2]]


@pytest.mark.parametrize(
    ("provider", "wrong"),
    [
        ("kdniao", {"app_key": "not-the-app-key"}),
        ("sf", {"push_token": "not-the-push-token-0000"}),
        ("kuaidi100", {"salt": "not-the-salt"}),
    ],
    ids=PROVIDERS,
)
def test_each_webhook_rejects_the_wrong_key_or_token_and_accepts_the_right_one(
    tracking: Tracking, provider: str, wrong: dict[str, str]
) -> None:
    tier = "vip" if provider == "sf" else "regular"
    shipment_id, carrier, number = tracking.waybill(tier)
    impostor, genuine = tracking.pusher(provider, **wrong), tracking.pusher(provider)
    try:
        sends_before = tracking.webhook_sends()
        # When a push signed with the wrong key (or sent to the wrong SF token URL) arrives
        status = impostor.send(pushes_for(impostor, carrier, number, HAPPY[:1])[0])
        # Then it is refused, nothing is enqueued and nothing is stored
        assert status == (403 if provider == "sf" else 401)
        assert tracking.webhook_sends() == sends_before
        time.sleep(2)
        assert tracking.shipment(shipment_id)["events"] == []
        # When the same scan is pushed correctly signed, it is accepted and applied
        assert genuine.send(pushes_for(genuine, carrier, number, HAPPY[:1])[0]) == 200
    finally:
        impostor.stop()
        genuine.stop()
    # (the timeline is written before the status: wait for the status to move, then check where it went)
    view = tracking.wait(shipment_id, lambda s: len(s["events"]) == 1 and s["status"] != "WAYBILL_CREATED")
    assert view["status"] == "PICKED_UP"


def test_a_push_before_the_waybill_is_recorded_is_applied_once_the_waybill_exists(tracking: Tracking) -> None:
    # Given a shipment with no waybill yet (every provider down: the workflow gives up, WAYBILL_FAILED)
    for provider in ("kdniao", "sf"):
        requests.post(f"{tracking.sandbox(provider)}/_sandbox/faults", json={"outage": True}, timeout=10)
    try:
        shipment_id = tracking.post_order()
        tracking.wait(shipment_id, lambda s: s["status"] == "WAYBILL_FAILED", timeout=180)
    finally:
        for provider in ("kdniao", "sf"):
            requests.post(f"{tracking.sandbox(provider)}/_sandbox/faults", json={}, timeout=10)
    # And Kdniao pushes for a tracking number the hub does not know yet
    number = "7" + str(uuid.uuid4().int)[:13]
    box = tracking.pusher("kdniao")
    try:
        for push in pushes_for(box, "ZTO", number, HAPPY[:2]):
            assert box.send(push) == 200  # acknowledged (parked by the normalizer), never dropped
    finally:
        box.stop()
    time.sleep(3)
    assert tracking.shipment(shipment_id)["events"] == []
    # When the waybill workflow's record step records that waybill (the real waybill-tasks function)
    resources = tracking.stack.handle.get("resources", {})
    function = str(resources.get("WaybillTasksFunction") or "parcelhub-dev-waybill-tasks").rsplit(":", 1)[-1]
    payload = {
        "action": "record_waybill",
        "shipment_id": shipment_id,
        "waybill": {"provider": "kdniao", "carrier": "ZTO", "tracking_number": number},
    }
    reply = tracking.stack.aws("lambda").invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    assert "FunctionError" not in reply, reply["Payload"].read()
    # Then the parked pushes are applied
    # (the timeline is written before the status: wait for the status to leave the workflow's statuses)
    view = tracking.wait(
        shipment_id,
        lambda s: len(s["events"]) == 2 and s["status"] not in ("PENDING", "WAYBILL_FAILED", "WAYBILL_CREATED"),
    )
    assert [e["status"] for e in view["events"]] == ["IN_TRANSIT", "PICKED_UP"]
    assert view["status"] == "IN_TRANSIT"
