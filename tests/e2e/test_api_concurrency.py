"""The OMS API under concurrent load on the local stack: every order gets its own shipment back."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ORDER = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "waybill" / "shipment_request.json"


def test_concurrent_orders_each_get_their_own_shipment(local_stack: Any) -> None:
    # Given 40 different orders
    bodies = []
    for _ in range(40):
        body = json.loads(ORDER.read_text(encoding="utf-8"))
        body["order_id"] = f"CONC-{uuid.uuid4().hex[:12]}"
        bodies.append(body)
    # When the OMS posts them 10 at a time
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(local_stack.post_order, bodies))
    # Then every one is accepted, and each answer is about its own order
    assert [r.status_code for r in replies] == [202] * 40, [r.text[:200] for r in replies if r.status_code != 202]
    assert [r.json()["order_id"] for r in replies] == [b["order_id"] for b in bodies]
    assert len({r.json()["shipment_id"] for r in replies}) == 40
