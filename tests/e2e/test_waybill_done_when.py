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
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
READY_SECONDS = 90
SETTLE_SECONDS = 180


@dataclass
class Stack:
    handle: dict[str, Any]
    local_dir: Path

    @property
    def api(self) -> str:
        return str(self.handle["api_url"]).rstrip("/")

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": str(self.handle["api_key"])}

    def sandbox(self, provider: str) -> str:
        return str(self.handle["sandboxes"][provider]).rstrip("/")

    def fault(self, provider: str, **faults: Any) -> None:
        requests.post(f"{self.sandbox(provider)}/_sandbox/faults", json=faults, timeout=10).raise_for_status()

    def requests_seen(self, provider: str) -> list[dict[str, Any]]:
        reply = requests.get(f"{self.sandbox(provider)}/_sandbox/requests", timeout=10)
        reply.raise_for_status()
        return list(reply.json())

    def post_order(self, **overrides: Any) -> requests.Response:
        body = json.loads(ORDER.read_text(encoding="utf-8"))
        body["order_id"] = f"E2E-{uuid.uuid4().hex[:16]}"
        body.update(overrides)
        return requests.post(f"{self.api}/v1/shipments", json=body, headers=self.headers, timeout=30)

    def shipment(self, shipment_id: str) -> dict[str, Any]:
        reply = requests.get(f"{self.api}/v1/shipments/{shipment_id}", headers=self.headers, timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def wait_for(self, shipment_id: str, statuses: set[str], timeout: float = SETTLE_SECONDS) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        current: dict[str, Any] = {}
        while time.monotonic() < deadline:
            current = self.shipment(shipment_id)
            if current["status"] in statuses:
                return current
            time.sleep(0.5)
        raise AssertionError(f"{shipment_id} still {current.get('status')} after {timeout}s: {current}")

    def alerts(self) -> list[dict[str, Any]]:
        path = Path(self.handle.get("alerts_file") or self.local_dir / "alerts.jsonl")
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def wait_for_alert(self, needle: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for a in self.alerts() if needle in json.dumps(a, ensure_ascii=False)]
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"no alert containing {needle!r}: {self.alerts()}")


@contextmanager
def local_stack(tmp_path: Path, config: dict[str, Any] | None = None) -> Iterator[Stack]:
    """Start ``python -m sandbox.local`` (free port, own dir, own config); SIGTERM it at the end."""
    env = dict(os.environ)
    env.update(
        {
            "PARCELHUB_PORT": "0",
            "PARCELHUB_LOCAL_DIR": str(tmp_path),
            "PARCELHUB_CONFIG": json.dumps(config or {}),
            "PARCELHUB_SANDBOX_STAGE_SECONDS": "600",  # no tracking pushes during these tests
        }
    )
    env.pop("AWS_ENDPOINT_URL", None)
    log = (tmp_path / "stack.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    handle_file = tmp_path / "local-stack.json"
    try:
        deadline = time.monotonic() + READY_SECONDS
        handle: dict[str, Any] | None = None
        while time.monotonic() < deadline and process.poll() is None:
            if handle_file.exists():
                handle = json.loads(handle_file.read_text(encoding="utf-8"))
                try:
                    if requests.get(f"{handle['api_url']}/v1/health", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
            time.sleep(0.25)
        else:
            tail = (tmp_path / "stack.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            pytest.fail(f"local stack not ready (exit {process.poll()}):\n{tail}")
        assert handle is not None
        yield Stack(handle, tmp_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


def _time(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def test_sf_outage_50_sf_first_orders_fail_over_and_the_circuit_opens_once(tmp_path: Path) -> None:
    # Given the SF sandbox in an outage and a breaker that stays open for the whole test once opened
    config = {"circuit": {"failure_threshold": 5, "window_seconds": 300, "cool_down_seconds": 3600}}
    with local_stack(tmp_path, config) as stack:
        stack.fault("sf", outage=True)
        # When 50 SF-first (VIP) orders arrive (one after the other; the workflows run concurrently anyway:
        # the dispatcher starts them in SQS batches of 10)
        replies = [stack.post_order(customer_tier="vip") for _ in range(50)]
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


def test_the_same_order_posted_5_times_concurrently_makes_one_waybill_and_one_create_call(tmp_path: Path) -> None:
    with local_stack(tmp_path) as stack:
        body = json.loads(ORDER.read_text(encoding="utf-8"))
        body["order_id"] = f"E2E-{uuid.uuid4().hex[:16]}"
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


def test_every_provider_down_ends_waybill_failed_with_an_alert_and_retry_recovers(tmp_path: Path) -> None:
    with local_stack(tmp_path) as stack:
        # Given every provider down
        stack.fault("sf", outage=True)
        stack.fault("kdniao", outage=True)
        reply = stack.post_order()
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


def test_an_address_rejection_moves_to_the_next_candidate_without_retrying_it(tmp_path: Path) -> None:
    with local_stack(tmp_path) as stack:
        # Given SF rejects the address, and a VIP (SF-first) order
        stack.fault("sf", reject="address")
        reply = stack.post_order(customer_tier="vip")
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
