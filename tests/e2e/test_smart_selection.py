"""Issue 18 (smart strategy, quotes and capacity planning) end to end on a local stack.

Under ``selection.strategy: smart``, the quote for the same order changes when the lane history changes
(delivery facts recorded through the Scorecards adapter, as the delivery-facts consumer records them), and
an order records its selection with the reason (on the shipment and in ``WaybillCreated``). With capacity
planning on, orders after a reached daily cap go to the next carrier, and a balance that falls below the
forecast's cover alerts ops once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from parcelhub.adapters.dynamodb import DynamoShipmentStore
from parcelhub.adapters.dynamodb.scorecards import DynamoScorecards
from parcelhub.domain.delivery_clock import local_day
from parcelhub.domain.lanes import DeliveryFact, Lane, Outcome
from sandbox.local.client import LocalStackClient
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
LANE = Lane("浙江省", "杭州市", "上海市", "上海市")  # the configured warehouse -> the fixture's receiver
#: a promise every candidate keeps without history, so that only the lane's record changes the choice
SMART = {
    "selection": {
        "strategy": "smart",
        "smart": {
            "promises": [{"name": "regular-10d", "customer_tier": "regular", "days": 10}],
            "lane": {"min_deliveries": 20, "min_on_time_rate": 0.8, "max_exception_rate": 0.1},
        },
    }
}


def order() -> dict[str, Any]:
    body = json.loads(ORDER.read_text(encoding="utf-8"))
    return dict(body) | {"order_id": f"E2E-SMART-{uuid.uuid4().hex[:12]}"}


def quote(stack: LocalStackClient, body: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(f"{stack.api}/v1/quotes", json=body, headers=stack.headers, timeout=30)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def late_zto_history(stack: LocalStackClient, parcels: int = 24) -> None:
    """ZTO parcels delivered on the lane, three in four after their promised latest delivery."""
    scorecards = DynamoScorecards(stack.resource("ParcelhubTable"), client=stack.aws("dynamodb"))
    start = datetime(2026, 10, 5, 2, tzinfo=UTC)
    for n in range(parcels):
        created = start + timedelta(hours=5 * n)
        delivered = created + timedelta(hours=52)
        promised = delivered + (timedelta(hours=4) if n % 4 == 0 else -timedelta(hours=20))
        fact = DeliveryFact(
            shipment_id=f"SMART-H{n}-{uuid.uuid4().hex[:6]}", carrier="ZTO", provider="kdniao", service="standard",
            lane=LANE, outcome=Outcome.DELIVERED, created_at=created, picked_up_at=created + timedelta(hours=8),
            delivered_at=delivered, ended_at=delivered, attempts=1, promised_latest=promised, cost_fen=1100,
        )  # fmt: skip
        assert scorecards.record_fact(fact)


def option(answer: dict[str, Any], carrier: str) -> dict[str, Any]:
    return next(o for o in answer["options"] if o["carrier"] == carrier)


def test_quotes_follow_the_lane_history_and_an_order_records_its_selection(
    stack_factory: Callable[..., LocalStackClient],
) -> None:
    stack = stack_factory(SMART, PARCELHUB_SANDBOX_STAGE_SECONDS="600")  # no scans: the test needs none
    body = order()

    # Given no lane history: ZTO (the cheaper tariff) keeps the promise and is ranked first
    before = quote(stack, body)
    assert (before["carrier"], before["provider"], before["reason"]) == ("ZTO", "kdniao", "cheapest_meeting_promise")
    assert [o["carrier"] for o in before["options"]] == ["ZTO", "SF"]
    assert option(before, "ZTO")["price_fen"] < option(before, "SF")["price_fen"]
    assert all(o["available"] and o["meets_promise"] for o in before["options"])
    assert option(before, "ZTO")["lane_deliveries"] == 0

    # When ZTO's deliveries on the lane are recorded, mostly late against their promise
    late_zto_history(stack)

    # Then the same order's quote passes ZTO over for its on-time rate and ranks SF first
    after = quote(stack, body)
    zto = option(after, "ZTO")
    assert (after["carrier"], after["reason"], after["rules_carrier"]) == ("SF", "cheapest_meeting_promise", "ZTO")
    assert (zto["available"], zto["blocked"]) == (False, "lane_on_time")
    assert (zto["lane_deliveries"], zto["lane_on_time_rate"]) == (24, 0.25)
    assert zto["estimated_delivery"]["basis"] == "lane:city:created"  # its window now rests on the lane too
    # and quoting stored nothing
    found = requests.get(f"{stack.api}/v1/shipments", params={"order_id": body["order_id"]}, headers=stack.headers,
                         timeout=30)  # fmt: skip
    assert found.status_code == 404

    # When the order is placed under the smart strategy
    capture = stack.capture_events(f"smart-{uuid.uuid4().hex[:6]}")
    shipment_id = stack.post_order(body).json()["shipment_id"]
    view = stack.wait_for(shipment_id, {"WAYBILL_CREATED"}, timeout=30)

    # Then SF carries it, and the shipment records the selection with its reason and the alternatives
    assert view["carrier"] == "SF"
    stored = view["selection"]
    assert (stored["strategy"], stored["carrier"], stored["reason"]) == ("smart", "SF", "cheapest_meeting_promise")
    assert [(o["carrier"], o["blocked"]) for o in stored["options"]] == [("SF", None), ("ZTO", "lane_on_time")]
    assert stored["promise_met"] is True
    # and WaybillCreated carries it
    created = wait_until(
        lambda: [
            e["detail"]
            for e in capture.drain()
            if e["detail-type"] == "WaybillCreated" and e["detail"]["shipment_id"] == shipment_id
        ]
    )
    assert created, "no WaybillCreated"
    selection = created[0]["selection"]
    assert (selection["carrier"], selection["reason"], selection["promise"]) == ("SF", "cheapest_meeting_promise",
                                                                                 "regular-10d")  # fmt: skip
    assert [o["carrier"] for o in selection["options"]] == ["SF", "ZTO"]


CAPACITY = {
    "capacity": {
        "enabled": True,
        "carriers": {"ZTO": {"daily_cap": 2}},
        "history_days": 14,
        "min_cover_days": 3,
        "query_provider_balance": True,
    }
}


def test_a_reached_cap_routes_to_the_next_carrier_and_a_low_balance_alerts_once(
    stack_factory: Callable[..., LocalStackClient],
) -> None:
    stack = stack_factory(CAPACITY, PARCELHUB_SANDBOX_STAGE_SECONDS="600")
    ledger = DynamoShipmentStore(stack.resource("ParcelhubTable"), client=stack.aws("dynamodb"))
    today = local_day(datetime.now(UTC))
    # Given ZTO took 10 parcels a day for the past week, and its Kdniao account has 40 numbers left
    for day in range(1, 8):
        for n in range(10):
            ledger.record_intake("ZTO", f"HIST-{day}-{n}", today - timedelta(days=day))
    stack.sandbox_post("kdniao", "/_sandbox/stock", {"carrier": "ZTO", "numbers": 40})

    # When the planner runs: the balance is asked of Kdniao (1127) and covers 4 days: no balance alert yet
    first = stack.invoke("CapacityPlannerFunction")
    assert first["balances_set"] == ["ZTO"]
    assert "ZTO:balance_low" not in first["alerts"]
    assert "ZTO:cap_forecast" in first["alerts"]  # 10 a day against a cap of 2

    # When three orders that the rules send to ZTO first are placed, one after the other
    carriers, last = [], {}
    for _ in range(3):
        shipment_id = stack.post_order(order()).json()["shipment_id"]
        last = stack.wait_for(shipment_id, {"WAYBILL_CREATED"}, timeout=60)
        carriers.append(last["carrier"])
    # Then ZTO takes two (its cap) and the third goes to SF, the refusal in its attempt history
    assert carriers == ["ZTO", "ZTO", "SF"]
    refused = [(a["carrier"], a["outcome"], a["error_code"]) for a in last["waybill_attempts"]][:1]
    assert refused == [("ZTO", "rejected", "CAPACITY_CAP_REACHED")]

    # When the balance falls (numbers used elsewhere on the account) and the planner runs twice
    stack.sandbox_post("kdniao", "/_sandbox/stock", {"carrier": "ZTO", "numbers": 12})
    runs = [stack.invoke("CapacityPlannerFunction") for _ in range(2)]
    assert all("ZTO:balance_low" in run["alerts"] for run in runs)
    # Then ops get the balance alert once (the same carrier, kind and day is one event id)
    stack.wait_for_alert("[Balance low] ZTO")
    time.sleep(3)  # a second alert would have been relayed by now
    assert len([a for a in stack.alerts() if "[Balance low] ZTO" in json.dumps(a, ensure_ascii=False)]) == 1
    # and the capacity view shows it: the cap reached today, the balance from the provider, the cover
    view = requests.get(f"{stack.api}/v1/analytics/capacity", headers=stack.headers, timeout=30)
    assert view.status_code == 200, view.text
    zto = next(c for c in view.json()["carriers"] if c["carrier"] == "ZTO")
    assert (zto["intake_today"], zto["daily_cap"], zto["blocked"]) == (2, 2, "cap_reached")
    assert (zto["balance_left"], zto["balance_source"]) == (12, "provider")
    assert zto["cover_days"] < 3
    assert set(zto["alerts"]) == {"balance_low", "cap_reached"}
