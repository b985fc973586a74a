"""Issue 17 "Done when" (estimates), end to end over HTTP on the local stack: a shipment's estimate appears
at waybill creation and moves after the arrival scan; EstimatedDeliveryChanged is emitted once per change.

The lane history is what the scorecard writer leaves in the table: all-time lane cells (``lane_cells``
layout, ``ADD`` updates) folded from delivered parcels the sandboxes' lane model draws for the fixture
order's lane (ZTO, Hangzhou -> Shanghai, standard).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from parcelhub.adapters.dynamodb.lane_cells import ALL_TIME, add_expression, cell_pk
from parcelhub.domain.lanes import DeliveryFact, Lane, LaneLevel, LaneStats, Outcome, contribution, lane_key
from sandbox.lanes import CARRIERS, LaneModel
from sandbox.local.client import LocalStackClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
ROUTE = ("浙江省", "杭州市", "上海市", "上海市")  # the configured warehouse -> the fixture's receiver
LANE = Lane(*ROUTE)


def history(parcels: int = 60) -> LaneStats:
    """Delivered ZTO parcels on the lane, from the lane model, with arrival and out-for-delivery scans."""
    model, rng = LaneModel(seed=5), random.Random(5)
    zto = next(p for p in CARRIERS if p.code == "ZTO")
    stats = LaneStats()
    for n in range(parcels):
        created = datetime(2026, 9, 1, 3, tzinfo=UTC) + timedelta(hours=7 * n)
        picked_up = model.pickup(zto, created, rng)
        delivered = model.delivered(zto, "standard", ROUTE, picked_up, rng)
        fact = DeliveryFact(
            shipment_id=f"H{n}", carrier="ZTO", provider="kdniao", service="standard", lane=LANE,
            outcome=Outcome.DELIVERED, created_at=created, picked_up_at=picked_up,
            arrived_at=delivered - timedelta(hours=rng.uniform(5, 12)),
            out_for_delivery_at=delivered - timedelta(hours=rng.uniform(1, 4)), delivered_at=delivered, attempts=1,
        )  # fmt: skip
        stats = stats + contribution(fact)
    return stats


def seed_lane(stack: LocalStackClient, stats: LaneStats) -> None:
    dynamodb, table = stack.aws("dynamodb"), stack.resource("ParcelhubTable")
    expression, names, values = add_expression(stats)
    for level in (LaneLevel.CITY, LaneLevel.PROVINCE, LaneLevel.NATIONAL):
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": cell_pk("ZTO", "standard", level, lane_key(LANE, level))}, "sk": {"S": ALL_TIME}},
            UpdateExpression=expression, ExpressionAttributeNames=names, ExpressionAttributeValues=values,
        )  # fmt: skip


def wait(stack: LocalStackClient, shipment_id: str, done: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view = stack.shipment(shipment_id)
    while not done(view) and time.monotonic() < deadline:
        time.sleep(0.3)
        view = stack.shipment(shipment_id)
    assert done(view), (view.get("estimated_delivery"), view["status"], [e["status"] for e in view["events"]])
    return view


def basis(view: dict[str, Any]) -> str | None:
    estimate = view.get("estimated_delivery")
    return estimate["basis"] if estimate else None


def test_the_estimate_appears_with_the_waybill_and_moves_after_the_arrival_scan(local_stack: LocalStackClient) -> None:
    stack = local_stack
    seed_lane(stack, history())
    capture = stack.capture_events(f"estimates-{uuid.uuid4().hex[:6]}")
    stack.push_mode("kdniao", mode="manual")
    try:
        # Given a regular order (ZTO through Kdniao) handed over by the OMS
        body = json.loads(ORDER.read_text(encoding="utf-8")) | {"order_id": f"E2E-EDD-{uuid.uuid4().hex[:12]}"}
        shipment_id = stack.post_order(body).json()["shipment_id"]

        # When its waybill is recorded, then the pickup, an in-transit and the arrival scans are pushed
        created = wait(stack, shipment_id, lambda v: bool(v.get("tracking_number")) and basis(v) is not None)
        number = created["tracking_number"]
        stack.push("kdniao", number, ["picked_up", "in_transit"])
        picked = wait(stack, shipment_id, lambda v: v["status"] == "IN_TRANSIT")
        stack.push("kdniao", number, ["arrived_dest_city"])
        arrived = wait(stack, shipment_id, lambda v: basis(v) == "lane:city:arrived")
    finally:
        stack.push_mode("kdniao", mode="auto")

    # Then the estimate appeared with the waybill, from the lane's history, and is the promise
    first = created["estimated_delivery"]
    assert first["basis"] == "lane:city:created"
    assert first["earliest"] <= first["most_likely"] <= first["latest"]
    assert 0 < first["confidence"] <= 1
    assert created["promised_delivery"] == first
    # And the pickup re-estimated it, the in-transit scan left it, the arrival moved it (the promise stays)
    assert basis(picked) == "lane:city:picked_up"
    last = arrived["estimated_delivery"]
    assert last != picked["estimated_delivery"]
    assert datetime.fromisoformat(last["latest"]) < datetime.fromisoformat(first["latest"])
    assert arrived["promised_delivery"] == first

    # And EstimatedDeliveryChanged was emitted once per change: creation, pickup, arrival
    deadline, announced = time.monotonic() + 15, []
    while time.monotonic() < deadline:
        announced += [
            e["detail"]
            for e in capture.drain()
            if e["detail-type"] == "EstimatedDeliveryChanged" and e["detail"]["shipment_id"] == shipment_id
        ]
        if len(announced) >= 3:
            time.sleep(2)  # a duplicate would arrive now
            announced += [
                e["detail"]
                for e in capture.drain()
                if e["detail-type"] == "EstimatedDeliveryChanged" and e["detail"]["shipment_id"] == shipment_id
            ]
            break
        time.sleep(0.5)
    assert [e["basis"] for e in announced] == ["lane:city:created", "lane:city:picked_up", "lane:city:arrived"]
    assert len({e["event_id"] for e in announced}) == 3
    assert announced[-1]["latest"] == last["latest"]
