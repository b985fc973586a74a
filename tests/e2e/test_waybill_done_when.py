"""Issue 5 "Done when", end to end over HTTP on the local stack (``python -m sandbox.local``).

Each test starts its own stack (a subprocess, free port, its own ``PARCELHUB_LOCAL_DIR`` and hub
configuration), drives the OMS API with the local API key, injects faults through the carrier
sandboxes' control API and reads ``alerts.jsonl`` and the sandboxes' request logs.

These need the whole system: the OMS API (``functions/shipments_api``), the local runner
(``sandbox/local``) with its SQS poller for ``waybill_dispatch`` and Step Functions calling
``waybill_tasks`` in-process, the EventBridge rule -> SNS -> ``alerts.jsonl`` path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e

StackFactory = Callable[..., Any]

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"


def order(**overrides: Any) -> dict[str, Any]:
    body = json.loads(ORDER.read_text(encoding="utf-8"))
    body["order_id"] = f"E2E-{uuid.uuid4().hex[:16]}"
    body.update(overrides)
    return dict(body)


QUIET = {"PARCELHUB_SANDBOX_STAGE_SECONDS": "600"}  # no tracking pushes during these tests


def _time(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def test_sf_outage_50_sf_first_orders_fail_over_and_the_circuit_opens_once(stack_factory: StackFactory) -> None:
    # Given the SF sandbox in an outage and a breaker that stays open for the whole test once opened
    config = {"circuit": {"failure_threshold": 5, "window_seconds": 300, "cool_down_seconds": 3600}}
    stack = stack_factory(config, **QUIET)
    stack.fault("sf", outage=True)
    # When 50 SF-first (VIP) orders arrive, 8 at a time
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: stack.post_order(order(customer_tier="vip")), range(50)))
    assert [r.status_code for r in replies] == [202] * 50
    ids = [r.json()["shipment_id"] for r in replies]
    done = [stack.wait_for(i, {"WAYBILL_CREATED", "WAYBILL_FAILED"}) for i in ids]
    # Then every order has exactly one waybill, from the backup provider, and the attempts show the failover
    assert {s["status"] for s in done} == {"WAYBILL_CREATED"}
    assert {(s["provider"], s["carrier"]) for s in done} == {("kdniao", "ZTO")}
    assert len({s["tracking_number"] for s in done}) == 50
    for s in done:
        attempts = s["waybill_attempts"]
        assert attempts[0]["provider"] == "sf"
        assert attempts[0]["outcome"] in {"unavailable", "skipped_circuit_open"}
        assert [a["outcome"] for a in attempts].count("created") == 1
        assert attempts[-1]["outcome"] == "created"
        assert attempts[-1]["provider"] == "kdniao"
    assert any(s["waybill_attempts"][0]["outcome"] == "skipped_circuit_open" for s in done)
    # and the circuit opened ONCE, with one ops alert line
    opened = stack.wait_for_alert("Circuit opened")
    assert len([a for a in stack.alerts() if "Circuit opened" in json.dumps(a)]) == 1
    assert "sf" in json.dumps(opened[0])
    # and the SF sandbox got no create call after the circuit opened
    opened_at = _time(opened[0]["time"])
    sf_calls = [r for r in stack.requests_seen("sf") if r["operation"] in {"EXP_RECE_CREATE_ORDER", "/std/service"}]
    assert sf_calls, "SF must have been tried before its circuit opened"
    assert [r for r in sf_calls if _time(r["time"]) > opened_at] == []


def test_the_same_order_posted_5_times_concurrently_makes_one_waybill_and_one_create_call(
    stack_factory: StackFactory,
) -> None:
    stack = stack_factory(None, **QUIET)
    body = order()
    # When the OMS posts the same order 5 times at once
    with ThreadPoolExecutor(max_workers=5) as pool:
        replies = list(
            pool.map(
                lambda _: requests.post(f"{stack.api}/v1/shipments", json=body, headers=stack.headers, timeout=30),
                range(5),
            )
        )
    # Then there is one shipment (202 once, 200 for the replays)
    assert sorted(r.status_code for r in replies) == [200, 200, 200, 200, 202]
    ids = {r.json()["shipment_id"] for r in replies}
    assert len(ids) == 1
    shipment_id = ids.pop()
    done = stack.wait_for(shipment_id, {"WAYBILL_CREATED", "WAYBILL_FAILED"})
    # and one waybill, from ONE create call at the provider
    assert done["status"] == "WAYBILL_CREATED"
    assert done["tracking_number"]
    assert [a["outcome"] for a in done["waybill_attempts"]] == ["created"]
    creates = [
        r
        for r in stack.requests_seen("kdniao")
        if r["operation"] == "create_waybill" and r.get("order_code") == shipment_id
    ]
    assert len(creates) == 1
    time.sleep(3)  # late duplicates (redelivered messages) would show up now
    assert stack.shipment(shipment_id)["tracking_number"] == done["tracking_number"]


def test_every_provider_down_ends_waybill_failed_with_an_alert_and_retry_recovers(stack_factory: StackFactory) -> None:
    stack = stack_factory(None, **QUIET)
    # Given every provider down
    stack.fault("sf", outage=True)
    stack.fault("kdniao", outage=True)
    reply = stack.post_order(order())
    assert reply.status_code == 202
    shipment_id, order_id = reply.json()["shipment_id"], reply.json()["order_id"]
    # Then the shipment ends WAYBILL_FAILED with an ops alert naming the order
    failed = stack.wait_for(shipment_id, {"WAYBILL_FAILED", "WAYBILL_CREATED"})
    assert failed["status"] == "WAYBILL_FAILED"
    assert {a["outcome"] for a in failed["waybill_attempts"]} == {"unavailable"}
    stack.wait_for_alert(order_id)
    # When the outage is cleared and the OMS asks for a retry
    stack.fault("sf", outage=False)
    stack.fault("kdniao", outage=False)
    retry = requests.post(f"{stack.api}/v1/shipments/{shipment_id}/retry", headers=stack.headers, timeout=30)
    assert retry.status_code in (200, 202), retry.text
    # Then it gets a waybill
    done = stack.wait_for(shipment_id, {"WAYBILL_CREATED"})
    assert done["tracking_number"]
    assert done["waybill_attempts"][-1]["outcome"] == "created"


def test_an_address_rejection_moves_to_the_next_candidate_without_retrying_it(stack_factory: StackFactory) -> None:
    stack = stack_factory(None, **QUIET)
    # Given SF rejects the address, and a VIP (SF-first) order
    stack.fault("sf", reject="address")
    reply = stack.post_order(order(customer_tier="vip"))
    shipment_id = reply.json()["shipment_id"]
    done = stack.wait_for(shipment_id, {"WAYBILL_CREATED", "WAYBILL_FAILED"})
    # Then the next candidate issued it, and SF saw exactly one create call for this order
    assert done["status"] == "WAYBILL_CREATED"
    assert done["provider"] == "kdniao"
    outcomes = [(a["provider"], a["outcome"]) for a in done["waybill_attempts"]]
    assert outcomes == [("sf", "rejected"), ("kdniao", "created")]
    sf_creates = [
        r
        for r in stack.requests_seen("sf")
        if r["operation"] == "EXP_RECE_CREATE_ORDER" and r.get("order_id") == shipment_id
    ]
    assert len(sf_creates) == 1
