"""waybill_dispatch: an SQS batch (Lambda's record shape) -> one workflow execution per shipment,
duplicates are success, a bad record fails alone (ReportBatchItemFailures)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import pytest

from functions.waybill_dispatch.handler import lambda_handler
from parcelhub.domain.status import Status

from .conftest import REGION, Context, World, order_request

pytestmark = pytest.mark.integration

QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:parcelhub-test-waybill-requests"


def sqs_record(body: str, receive_count: int = 1) -> dict[str, Any]:
    """One record exactly as the SQS event source hands it to Lambda."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def executions(world: World) -> list[str]:
    listed = world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"]
    return sorted(e["name"] for e in listed)


def test_a_batch_starts_one_execution_per_shipment_and_reports_only_bad_records(world: World) -> None:
    # Given a batch: shipment A twice (a duplicated message), shipment B, and one unreadable record
    a = world.new_shipment(order_request()).shipment_id
    b = world.new_shipment(order_request()).shipment_id
    bad = sqs_record("{not json")
    event = {
        "Records": [
            sqs_record(json.dumps({"shipment_id": a})),
            sqs_record(json.dumps({"shipment_id": a}), receive_count=2),
            sqs_record(json.dumps({"shipment_id": b})),
            bad,
        ]
    }
    context = Context("parcelhub-test-waybill-dispatch", f"arn:aws:lambda:{REGION}:123456789012:function:dispatch")
    # When the dispatcher handles it
    reply = lambda_handler(event, context)
    # Then only the unreadable record is reported failed, and there is one execution per shipment
    assert reply == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert executions(world) == sorted([a, b])
    for shipment_id in (a, b):
        arn = f"{world.state_machine_arn.replace(':stateMachine:', ':execution:')}:{shipment_id}"
        assert world.wait(arn)["status"] == "SUCCEEDED"
        assert world.shipment(shipment_id).status is Status.WAYBILL_CREATED
    # When the same message is redelivered after the workflow finished
    again = lambda_handler({"Records": [sqs_record(json.dumps({"shipment_id": a}), receive_count=3)]}, context)
    # Then it is a success (ExecutionAlreadyExists = duplicate) and still one waybill call per shipment
    assert again == {"batchItemFailures": []}
    assert executions(world) == sorted([a, b])
    assert len([c for c in world.create_calls(world.kdniao) if c["operation"] == "create_waybill"]) == 2


def test_a_retry_message_names_its_own_execution(world: World) -> None:
    # Given a shipment whose first run already happened
    shipment_id = world.new_shipment(order_request()).shipment_id
    context = Context("dispatch", "arn:aws:lambda:us-east-1:123456789012:function:dispatch")
    body = json.dumps({"shipment_id": shipment_id, "execution_name": f"{shipment_id}-r1"})
    # When a retry request arrives through the queue
    assert lambda_handler({"Records": [sqs_record(body)]}, context) == {"batchItemFailures": []}
    # Then the execution is named <shipment_id>-r1 and carries the shipment id
    assert executions(world) == [f"{shipment_id}-r1"]
