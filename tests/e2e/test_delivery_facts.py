"""Issue 17, delivery facts and scorecards end to end on the local stack: parcels delivered (and one
returned) through the carrier sandboxes -> one fact per parcel from the table's stream (a redelivered
final scan changes nothing) -> the scorecard API's figures are those parcels' -> the S3 history holds them
(queried with DuckDB)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.demo.scorecards import fetch as fetch_scorecards
from sandbox.demo.scorecards import page as report_page
from tests.e2e.conftest import wait_until
from tools import history

pytestmark = pytest.mark.e2e

StackFactory = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
QUIET = {"PARCELHUB_SANDBOX_STAGE_SECONDS": "600"}  # the test pushes every scan itself
HAPPY = ["picked_up", "in_transit", "arrived_dest_city", "out_for_delivery", "delivered"]
SECOND_ATTEMPT = ["picked_up", "in_transit", "arrived_dest_city", "out_for_delivery", "delivery_failed", "delivered"]
RETURNED = ["picked_up", "in_transit", "arrived_dest_city", "out_for_delivery", "returning", "returned"]


def order(tier: str) -> dict[str, Any]:
    body = json.loads(ORDER.read_text(encoding="utf-8"))
    body["order_id"] = f"E2E-FACT-{uuid.uuid4().hex[:12]}"
    body["customer_tier"] = tier
    return dict(body)


def scorecards(stack: Any, query: str) -> dict[str, Any]:
    reply = requests.get(f"{stack.api}/v1/analytics/scorecards?{query}", headers=stack.headers, timeout=30)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def fact_items(stack: Any) -> list[str]:
    dynamodb = stack.aws("dynamodb")
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=stack.resource("ParcelhubTable"),
        FilterExpression="begins_with(pk, :f)",
        ExpressionAttributeValues={":f": {"S": "FACT#"}},
    )
    return sorted(item["pk"]["S"] for page in pages for item in page["Items"])


def test_delivered_parcels_become_facts_once_and_the_scorecards_show_them(stack_factory: StackFactory) -> None:
    stack = stack_factory(None, **QUIET)
    # Given 4 regular orders (ZTO through Kdniao) and 2 VIP orders (SF) with their waybills
    tiers = ["regular"] * 4 + ["vip"] * 2
    ids = [stack.post_order(order(tier)).json()["shipment_id"] for tier in tiers]
    views = [stack.wait_for(i, {"WAYBILL_CREATED", "WAYBILL_FAILED"}, timeout=60) for i in ids]
    assert [(v["carrier"], v["status"]) for v in views] == [("ZTO", "WAYBILL_CREATED")] * 4 + [
        ("SF", "WAYBILL_CREATED")
    ] * 2
    # When the carriers push their journeys: ZTO delivers 2 at once, 1 at the second attempt, returns 1;
    # SF delivers both at once
    journeys = [HAPPY, HAPPY, SECOND_ATTEMPT, RETURNED, HAPPY, HAPPY]
    for view, stages in zip(views, journeys, strict=True):
        stack.push(str(view["provider"]), str(view["tracking_number"]), stages)
    for shipment_id, stages in zip(ids, journeys, strict=True):
        final = "RETURNED" if stages is RETURNED else "DELIVERED"
        assert stack.wait_for(shipment_id, {final}, timeout=30)["status"] == final
    # Then one fact per parcel is recorded from the stream
    expected = sorted(f"FACT#{i}" for i in ids)
    assert wait_until(lambda: fact_items(stack) == expected), fact_items(stack)
    # and a redelivered final scan (the carrier pushing it again) counts nothing twice
    stack.push(str(views[0]["provider"]), str(views[0]["tracking_number"]), ["delivered"])
    time.sleep(3)
    assert fact_items(stack) == expected

    # and the carrier scorecards are those parcels'
    rows = {r["carrier"]: r for r in scorecards(stack, "level=carrier")["rows"]}
    assert set(rows) == {"ZTO", "SF"}
    zto, sf = rows["ZTO"], rows["SF"]
    assert (zto["volume"], zto["delivered"], zto["returned"]) == (4, 3, 1)
    assert (sf["volume"], sf["delivered"], sf["returned"]) == (2, 2, 0)
    assert zto["first_attempt_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert zto["return_rate"] == 0.25
    assert zto["exception_rate"] == 0.25  # the failed delivery attempt
    assert list(zto["exception_rates"].values()) == [0.25]
    assert sf["first_attempt_rate"] == 1.0
    # every parcel had a promise (the estimate at waybill creation) and beat it on the sandboxes' fast clock
    assert (zto["on_time_rate"], sf["on_time_rate"]) == (1.0, 1.0)
    assert float(sf["cost_per_parcel"]) > float(zto["cost_per_parcel"]) > 0  # SF's tariff is dearer
    assert zto["transit_hours_p50"] is not None
    # and the lane scorecard names the lane: the warehouse's city to the receiver's
    lanes = scorecards(stack, "level=lane&carrier=ZTO")["rows"]
    assert [(r["origin"], r["destination"], r["volume"]) for r in lanes] == [("浙江省/杭州市", "上海市/上海市", 4)]
    # and the S3 history holds the same parcels (DuckDB over the local stack's bucket)
    sql = "SELECT carrier, outcome, count(*) FROM facts GROUP BY ALL ORDER BY ALL"
    _, counted = history.query_local(stack.local_dir, sql)
    assert counted == [("SF", "delivered", 2), ("ZTO", "delivered", 3), ("ZTO", "returned", 1)]
    # and the scorecard report draws them (make report against this stack)
    html = report_page(fetch_scorecards(stack.api, stack.headers), stack.api)
    assert html.count("<svg") == 5
    assert re.search(r"<title>SF: p50 [0-9.]+ h, p90 [0-9.]+ h</title>", html)
    assert "<title>2026-W" in html  # the week's volume bars
