"""Issue 7 "Done when", end to end on the local stack over HTTP: with stall thresholds in seconds,
exactly one alert line per stalled parcel across 5 sweeps, and a StallResolved after a new push."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
SECOND = 1 / 3600  # one second, in hours

# thresholds in seconds: no pickup 8 s, in transit 3 s; no automatic sweeps (the test sweeps itself)
CONFIG = {"stall": {"no_pickup_hours": 8 * SECOND, "in_transit_hours": 3 * SECOND, "in_transit_hours_by_province": {}}}
ENV = {"PARCELHUB_SCHEDULE_SCALE": "1000", "PARCELHUB_SANDBOX_STAGE_SECONDS": "600"}


def order() -> dict[str, Any]:
    body = dict(json.loads(ORDER.read_text(encoding="utf-8")))
    body["order_id"] = f"STALL-{uuid.uuid4().hex[:12]}"
    body["customer_tier"] = "regular"  # ZTO through kdniao
    body["declared_value"] = {"amount": "99.00", "currency": "CNY"}
    return body


def test_one_alert_per_stalled_parcel_across_five_sweeps_and_resolved_after_a_push(
    stack_factory: Callable[..., Any],
) -> None:
    stack = stack_factory(CONFIG, **ENV)
    stack.push_mode("kdniao", mode="manual")
    events = stack.capture_events("stall-e2e-capture")
    # Given three parcels with waybills: A is never picked up, B and C are picked up and then stop moving
    ids = [stack.post_order(order()).json()["shipment_id"] for _ in range(3)]
    shipments = [stack.wait_for(i, {"WAYBILL_CREATED"}, timeout=60) for i in ids]
    tracking = [s["tracking_number"] for s in shipments]
    for number in tracking[1:]:
        push = {"tracking_number": number, "stages": ["picked_up"]}
        requests.post(f"{stack.sandbox('kdniao')}/_sandbox/push", json=push, timeout=10).raise_for_status()
    for shipment_id in ids[1:]:
        stack.wait_for(shipment_id, {"PICKED_UP"}, timeout=60)
    # When their thresholds pass and the detector sweeps five times
    time.sleep(9)
    sweeps = [stack.invoke("StallDetectorFunction") for _ in range(5)]
    # Then each stalled parcel has exactly one alert line, naming its tracking number and rule
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(stack.alerts()) < 3:
        time.sleep(0.5)
    time.sleep(2)  # anything extra would arrive now
    alerts = stack.alerts()
    per_parcel = {number: [a for a in alerts if number in json.dumps(a, ensure_ascii=False)] for number in tracking}
    assert {number: len(lines) for number, lines in per_parcel.items()} == dict.fromkeys(tracking, 1), alerts
    assert "not picked up" in json.dumps(per_parcel[tracking[0]], ensure_ascii=False)
    assert all("no tracking update" in json.dumps(per_parcel[n], ensure_ascii=False) for n in tracking[1:])
    assert sum(s["alerted"] for s in sweeps) == 3
    # and a sweep reads only what is due: the later sweeps read nothing (alerted entries leave the index)
    assert [s["items_read"] for s in sweeps[1:]] == [0, 0, 0, 0]
    stalled = [e for e in events.drain() if e["detail-type"] == "ShipmentStalled"]
    assert sorted(e["detail"]["tracking_number"] for e in stalled) == sorted(tracking)
    # When B moves again
    push = {"tracking_number": tracking[1], "stages": ["in_transit"]}
    requests.post(f"{stack.sandbox('kdniao')}/_sandbox/push", json=push, timeout=10).raise_for_status()
    stack.wait_for(ids[1], {"IN_TRANSIT"}, timeout=60)
    # Then StallResolved closes B's episode
    deadline = time.monotonic() + 30
    resolved: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not resolved:
        resolved = [e for e in events.drain() if e["detail-type"] == "StallResolved"]
        time.sleep(0.5)
    assert [e["detail"]["tracking_number"] for e in resolved] == [tracking[1]]
    episode_of_b = next(e["detail"]["episode_id"] for e in stalled if e["detail"]["tracking_number"] == tracking[1])
    assert resolved[0]["detail"]["episode_id"] == episode_of_b
