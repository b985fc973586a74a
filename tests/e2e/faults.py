"""What the fault suites share: driving a batch of orders through a fault and checking issue 13's invariants.

After each batch (and the recovery sweep):

* every provider sandbox's order book holds at most one live order per shipment;
* every accepted order has exactly one live order - its recorded waybill - or is ``WAYBILL_FAILED`` with
  an ops alert naming it and no live order at all;
* nothing is left PENDING or mid-workflow: no attempt in flight, nothing left in the recovery index,
  ``WaybillCreated`` delivered to the OMS for every waybill.

:func:`figures` returns what the batch measured (for ``docs/reliability.md``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox.local.client import LocalStackClient

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
PROVIDERS = ("sf", "kdniao")
SETTLED = {"WAYBILL_CREATED", "WAYBILL_FAILED", "CANCELLED"}
#: the recovery sweep's limits on the local clock (seconds)
RECOVERY = {"pending_limit_seconds": 20, "cancel_retry_seconds": 2, "max_redrives": 2}
STACK_ENV = {
    "PARCELHUB_SANDBOX_STAGE_SECONDS": "600",  # no tracking pushes: the waybill path only
    "PARCELHUB_CARRIER_READ_TIMEOUT": "2",
    "PARCELHUB_CONFIG": json.dumps({"recovery": RECOVERY}),
}


def order(tag: str, n: int) -> dict[str, Any]:
    """Odd ones VIP (SF first), even ones regular (ZTO through Kdniao first): both providers take faults."""
    body = json.loads(ORDER.read_text(encoding="utf-8"))
    body["order_id"] = f"E2E-{tag}-{n:03d}-{uuid.uuid4().hex[:8]}"
    body["customer_tier"] = "vip" if n % 2 else "regular"
    return dict(body)


def post_batch(stack: LocalStackClient, tag: str, count: int) -> list[dict[str, Any]]:
    """Post the orders one after the other (a few seconds for 30; their workflows still run concurrently).
    Not in parallel: the local runner serves concurrent API requests from threads, and the Powertools
    resolver/routers are not thread-safe - under heavy load a request can be resolved with another's body
    (seen as a 200 replay and a lost order). On Lambda an environment serves one request at a time."""
    replies = [stack.post_order(order(tag, n)) for n in range(count)]
    assert [r.status_code for r in replies] == [202] * count, [r.text[:200] for r in replies if r.status_code != 202]
    accepted = [r.json() for r in replies]
    assert len({a["order_id"] for a in accepted}) == count
    return accepted


def wait_settled(stack: LocalStackClient, ids: list[str], timeout: float = 240) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pending = list(ids)
    done: dict[str, dict[str, Any]] = {}
    while pending and time.monotonic() < deadline:
        for shipment_id in list(pending):
            current = stack.shipment(shipment_id)
            if current["status"] in SETTLED:
                done[shipment_id] = current
                pending.remove(shipment_id)
        if pending:
            time.sleep(1)
    assert not pending, f"still not settled after {timeout}s: {[stack.shipment(i)['status'] for i in pending]}"
    return [done[i] for i in ids]


def live_orders(stack: LocalStackClient) -> dict[str, list[dict[str, Any]]]:
    """Live (not cancelled) orders in every provider's order book, by shipment (order id ``<shipment>[-n]``)."""
    live: dict[str, list[dict[str, Any]]] = {}
    for provider in PROVIDERS:
        for entry in stack.order_book(provider):
            if not entry["cancelled"]:
                live.setdefault(entry["order_id"].split("-")[0], []).append({**entry, "provider": provider})
    return live


def sweep(stack: LocalStackClient, rounds: int = 3) -> list[Any]:
    """Run the recovery sweep now (its schedule runs it too), a few rounds: a cancel retried later."""
    results = []
    for _ in range(rounds):
        results.append(stack.invoke("WaybillRecoveryFunction"))
        time.sleep(RECOVERY["cancel_retry_seconds"] + 0.5)
    return results


def item(stack: LocalStackClient, shipment_id: str) -> dict[str, Any]:
    table = stack.resource("ParcelhubTable")
    key = {"pk": {"S": f"SHP#{shipment_id}"}, "sk": {"S": "META"}}
    return dict(stack.aws("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"])


def check_invariants(stack: LocalStackClient, accepted: list[dict[str, Any]], *, cancelled: bool = False) -> dict:
    """Issue 13's invariants for a batch (see the module docstring); returns what they found."""
    ids = [a["shipment_id"] for a in accepted]
    final = {i: stack.shipment(i) for i in ids}
    live = live_orders(stack)
    alerts = json.dumps(stack.alerts(), ensure_ascii=False)
    callbacks = json.dumps(stack.jsonl("oms-callbacks.jsonl"), ensure_ascii=False)
    for shipment_id, shipment in final.items():
        mine = live.get(shipment_id, [])
        assert len(mine) <= 1, f"{shipment_id}: {len(mine)} live orders {mine}"
        status = shipment["status"]
        if cancelled:
            assert status == "CANCELLED", f"{shipment_id} is {status}"
            assert not mine, f"{shipment_id}: cancelled with a live order {mine}"
        elif status == "WAYBILL_CREATED":
            assert len(mine) == 1, f"{shipment_id}: waybill {shipment['tracking_number']} but live orders {mine}"
            assert mine[0]["tracking_number"] == shipment["tracking_number"], (shipment_id, mine)
            assert f'"shipment_id": "{shipment_id}"' in callbacks, f"{shipment_id}: WaybillCreated never delivered"
        else:
            assert status == "WAYBILL_FAILED", f"{shipment_id} is {status}"
            assert not mine, f"{shipment_id}: failed with a live order {mine}"
            assert shipment["order_id"] in alerts, f"{shipment_id}: failed without an ops alert"
        stored = item(stack, shipment_id)
        assert "open_order" not in stored, f"{shipment_id}: an attempt is still in flight"
        assert "recovery_pk" not in stored, f"{shipment_id}: still waiting for the recovery sweep: {_brief(stored)}"
    orders = [o for provider in PROVIDERS for o in stack.order_book(provider) if o["order_id"].split("-")[0] in final]
    return {
        "orders": len(ids),
        "statuses": dict(Counter(s["status"] for s in final.values())),
        "providers": dict(Counter(s["provider"] for s in final.values() if s["provider"])),
        "failed_over": sum(1 for s in final.values() if _failed_over(s)),
        "provider_orders": len(orders),
        "cancelled_orders": sum(1 for o in orders if o["cancelled"]),
        "max_live_per_shipment": max((len(v) for k, v in live.items() if k in final), default=0),
    }


def _brief(stored: dict[str, Any]) -> dict[str, Any]:
    keep = ("status", "recovery_sk", "created_at", "open_order", "redrives", "retries", "updated_at", "version")
    return {k: v for k, v in stored.items() if k in keep}


def _failed_over(shipment: dict[str, Any]) -> bool:
    creates = [a for a in shipment["waybill_attempts"] if a["outcome"] != "cancelled"]
    return bool(creates) and creates[0]["outcome"] != "created"


def asked(stack: LocalStackClient, ids: list[str]) -> dict[str, int]:
    """How often the providers were asked about an order already sent (SF's order query, Kdniao re-submits
    answered with the existing order), and how many create calls each took, for this batch."""
    wanted = set(ids)
    sf = [r for r in stack.requests_seen("sf") if str(r.get("order_id") or "").split("-")[0] in wanted]
    kd = [r for r in stack.requests_seen("kdniao") if str(r.get("order_code") or "").split("-")[0] in wanted]
    return {
        "asked_sf": sum(1 for r in sf if r["operation"] == "EXP_RECE_SEARCH_ORDER_RESP"),
        "asked_kdniao": sum(1 for r in kd if r["operation"] == "create_waybill" and r.get("result") == "106"),
        "faults_struck": sum(1 for p in PROVIDERS for r in stack.requests_seen(p) if _struck(r, wanted)),
    }


def _struck(entry: dict[str, Any], wanted: set[str]) -> bool:
    return entry["operation"] == "after_create_fault" and str(entry.get("order_id")).split("-")[0] in wanted


def record(name: str, figures: dict[str, Any]) -> None:
    """Append a batch's figures to ``$PARCELHUB_RELIABILITY_REPORT`` (JSON lines) when it is set."""
    import os

    target = os.environ.get("PARCELHUB_RELIABILITY_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"fault": name, **figures}, ensure_ascii=False) + "\n")
