"""The local stack end to end, over HTTP only: the runner (``python -m sandbox.local``) with the REAL
template and handlers, the carrier sandboxes and moto (reached like a client reaches AWS).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from sandbox.local.client import LocalStackClient

pytestmark = pytest.mark.e2e

ORDER = Path(__file__).resolve().parents[1] / "fixtures" / "waybill" / "shipment_request.json"


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s (last: {result!r})")
        time.sleep(interval)


def test_ready_quickly_with_a_complete_handle(local_stack: LocalStackClient) -> None:
    """Given `make local`, then it is ready in under 20 s and local-stack.json says where everything is."""
    assert local_stack.ready_seconds < 20
    handle = local_stack.handle
    assert set(handle) >= {
        "api_url",
        "api_key",
        "sandboxes",
        "alerts_file",
        "oms_callbacks_file",
        "moto_url",
        "pid",
        "resources",
    }
    assert set(handle["sandboxes"]) == {"kdniao", "sf", "kuaidi100"}
    assert handle["pid"] == local_stack.process.pid
    assert handle["resources"]["ParcelhubTable"] == "parcelhub-dev"
    assert handle["unavailable_functions"] == {}


def test_health_needs_no_key_and_unknown_routes_are_404(local_stack: LocalStackClient) -> None:
    """Given no API key, then GET /v1/health answers 200; an undeclared route answers API Gateway's 404."""
    assert requests.get(f"{local_stack.api}/v1/health", timeout=10).status_code == 200
    missing = requests.get(f"{local_stack.api}/v1/not-a-route", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found"}


def test_sqs_partial_batch_failure_on_waybill_requests(local_stack: LocalStackClient) -> None:
    """Given a batch on waybill-requests with one malformed record, when waybill_dispatch reports it as
    failed, then it is retried and ends in the DLQ after maxReceiveCount, and each good record starts
    its workflow exactly once."""
    sqs = local_stack.aws("sqs")
    queue = sqs.get_queue_url(QueueName="parcelhub-dev-waybill-requests")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="parcelhub-dev-waybill-requests-dlq")["QueueUrl"]
    requests.post(f"{local_stack.root}/_local/metrics/reset", timeout=10).raise_for_status()
    run = uuid.uuid4().hex[:8]
    good = [f"e2e-batch-{run}-{i}" for i in range(3)]
    bodies = [json.dumps({"shipment_id": s}) for s in good] + [json.dumps({"shipment_id": f"not valid {run}!"})]
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])

    def dead() -> list[dict[str, Any]]:
        messages = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        return [m for m in messages if run in m["Body"]]

    [poison] = eventually(dead, timeout=60)
    assert "not valid" in poison["Body"]
    assert int(poison["Attributes"]["ApproximateReceiveCount"]) >= 3  # maxReceiveCount of the template
    metrics = requests.get(f"{local_stack.root}/_local/metrics", timeout=10).json()
    dispatch = metrics["aws_calls_by_function"]["WaybillDispatchFunction"]
    assert dispatch["stepfunctions.StartExecution"] == len(good)  # a redelivered good record would add one
    machine = local_stack.handle["resources"]["WaybillStateMachine"]
    sfn = local_stack.aws("stepfunctions")
    names = {e["name"] for e in sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]}
    assert set(good) <= names


def test_waybill_workflow_retries_and_fails_over(local_stack: LocalStackClient) -> None:
    """Given Kdniao down (HTTP 503), when an order is placed, then Step Functions runs the real
    waybill_tasks handler, retries CarrierUnavailable (Retry), routes to RecordFailedAttempt (Catch),
    fails over to SF and the OMS receives WaybillCreated through the API destination."""
    kdniao = local_stack.handle["sandboxes"]["kdniao"]
    requests.post(f"{kdniao}/_sandbox/faults", json={"outage": True}, timeout=10).raise_for_status()
    try:
        body = json.loads(ORDER.read_text(encoding="utf-8"))
        body["order_id"] = f"E2E-LOCAL-{uuid.uuid4().hex[:12]}"
        created = requests.post(f"{local_stack.api}/v1/shipments", json=body, headers=local_stack.headers, timeout=30)
        assert created.status_code in (200, 201, 202), created.text
        shipment_id = created.json()["shipment_id"]

        def settled() -> dict[str, Any] | None:
            reply = requests.get(
                f"{local_stack.api}/v1/shipments/{shipment_id}", headers=local_stack.headers, timeout=10
            )
            shipment = reply.json()
            return shipment if shipment["status"] not in ("PENDING",) else None

        shipment = eventually(settled, timeout=90)
    finally:
        requests.post(f"{kdniao}/_sandbox/faults", json={"outage": False}, timeout=10).raise_for_status()
    assert shipment["status"] == "WAYBILL_CREATED", shipment
    assert shipment["provider"] == "sf"

    sfn = local_stack.aws("stepfunctions")
    machine = local_stack.handle["resources"]["WaybillStateMachine"]
    execution = f"{machine.replace(':stateMachine:', ':execution:')}:{shipment_id}"
    eventually(lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING", timeout=60)
    history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    errors = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert errors.count("CarrierUnavailable") == 3  # first try + MaxAttempts 2
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered.index("RecordFailedAttempt") > entered.index("CreateWaybill")
    assert entered.count("CreateWaybill") == 2
    assert entered[-1] == "Done"

    def callback() -> list[dict[str, Any]]:
        return [
            line
            for line in local_stack.jsonl("oms-callbacks.jsonl")
            if line["event"].get("detail-type") == "WaybillCreated" and shipment_id in json.dumps(line["event"])
        ]

    [line] = eventually(callback, timeout=30)
    assert line["authorized"] is True


def test_scheduled_function_runs_on_demand(local_stack: LocalStackClient) -> None:
    """Given the control route, then the stall detector sweeps now and returns its result."""
    reply = requests.post(f"{local_stack.root}/_local/invoke/StallDetectorFunction", timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["function"] == "StallDetectorFunction"
    assert requests.post(f"{local_stack.root}/_local/invoke/NoSuchFunction", timeout=10).status_code == 404


def test_the_table_stream_keeps_flowing_after_a_failed_transaction(local_stack: LocalStackClient) -> None:
    """Given an order id reused with a different body (its TransactWriteItems fails: 409), when the next
    order gets its waybill, then its WaybillCreated still comes out of the stream (the event relay)."""
    capture = local_stack.capture_events(f"after-failed-tx-{uuid.uuid4().hex[:6]}")
    body = json.loads(ORDER.read_text(encoding="utf-8"))
    body["order_id"] = f"E2E-TX-{uuid.uuid4().hex[:12]}"
    assert local_stack.post_order(body).status_code in (200, 201, 202)
    body["parcels"] = [{"weight_kg": 9.9}]
    assert local_stack.post_order(body).status_code == 409
    body["order_id"] = f"E2E-TX-{uuid.uuid4().hex[:12]}"
    shipment_id = local_stack.post_order(body).json()["shipment_id"]
    local_stack.wait_for(shipment_id, {"WAYBILL_CREATED"}, timeout=120)
    seen: list[dict[str, Any]] = []

    def announced() -> bool:
        seen.extend(capture.drain())
        return any(e["detail-type"] == "WaybillCreated" and e["detail"]["shipment_id"] == shipment_id for e in seen)

    assert eventually(announced, timeout=60)
