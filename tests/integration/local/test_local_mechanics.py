"""The local runner's mechanics, in-process (``LocalStack``) on the fixture template and fixture handlers.

Each test talks to the stack the way the real system does: over HTTP to the API, and to moto with
boto3 (queues, the bus, Step Functions), and reads what the handlers wrote into DynamoDB.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from sandbox.local.settings import LocalSettings
from sandbox.local.stack import LocalStack

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "local" / "template.yaml"


def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(interval)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    settings = LocalSettings.from_env(
        {
            "PARCELHUB_PORT": "0",
            "PARCELHUB_LOCAL_DIR": str(tmp_path_factory.mktemp("local")),
            "PARCELHUB_TEMPLATE": str(FIXTURE),
            "PARCELHUB_CONFIG": json.dumps({"stall": {"time_scale": 0.0003}}),
            # the work queue's 20 s visibility becomes 3 s: on a loaded machine a good batch's invoke + delete
            # can take longer than 1 s, and SQS then rightly redelivers it
            "PARCELHUB_TIME_SCALE": "0.15",
        },
        with_sandboxes=False,
    )
    with LocalStack(settings, echo=lambda _text: None) as running:
        yield running


@pytest.fixture(scope="module")
def aws(stack: LocalStack) -> Callable[[str], Any]:
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    return lambda service: session.client(service, endpoint_url=stack.moto_url)  # type: ignore[call-overload]


def item(aws: Callable[[str], Any], stack: LocalStack, pk: str, sk: str) -> dict[str, Any] | None:
    table = stack.plan.tables["Table"] if stack.plan else ""
    found = aws("dynamodb").get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True)
    return found.get("Item")


# --------------------------------------------------------------------------------- provisioning


def test_provisions_every_declared_resource_with_local_adjustments(
    stack: LocalStack, aws: Callable[[str], Any]
) -> None:
    """Given the fixture template, when the stack is up, then its resources exist in moto as declared."""
    assert stack.plan is not None
    assert stack.resolver is not None
    ddb = aws("dynamodb").describe_table(TableName="fixture-fx")["Table"]
    assert [i["IndexName"] for i in ddb["GlobalSecondaryIndexes"]] == ["by-g"]
    ttl = aws("dynamodb").describe_time_to_live(TableName="fixture-fx")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"

    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName="fixture-fx-work")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    # 20 s x 0.15, plus the 1 s its event source may spend gathering a batch (that window is not scaled),
    # which the handle tells (the demo names it as a configured wait)
    assert attributes["VisibilityTimeout"] == "4"
    assert stack.handle()["batching_windows"] == {"BatchFunction": 1.0}
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":fixture-fx-work-dlq")
    assert int(redrive["maxReceiveCount"]) == 2

    config = json.loads(aws("ssm").get_parameter(Name="/fixture/fx/config")["Parameter"]["Value"])
    assert config == {"stall": {"no_pickup_hours": 24, "time_scale": 0.0003}, "keep": True}

    secrets = aws("secretsmanager")
    secret = json.loads(secrets.get_secret_value(SecretId="fixture/fx/oms")["SecretString"])
    assert secret["api_keys"][0]["name"] == "local"
    assert len(secret["api_keys"][0]["sha256"]) == 64
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):  # no value: not configured
        secrets.get_secret_value(SecretId="fixture/fx/unused")

    definition = aws("stepfunctions").describe_state_machine(stateMachineArn=stack.resolver.ids("Workflow")["Arn"])[
        "definition"
    ]
    assert "${" not in definition
    assert ":function:fixture-fx-task" in definition

    handle = json.loads(stack.handle_file.read_text())
    assert handle["api_url"].endswith("/fx")
    assert handle["resources"]["Table"] == "fixture-fx"
    assert "AlertEmailSubscription" not in handle["resources"]  # its condition is false


# --------------------------------------------------------------------------------- HTTP API


def test_http_api_event_shape_round_trip(stack: LocalStack) -> None:
    """Given a GET with a path parameter, query, cookies and headers, when it reaches the function,
    then the event is an HTTP API v2.0 event and the function's response comes back as HTTP."""
    reply = requests.get(
        f"{stack.api_url}/items/it%2042?b=2&a=1&a=3",
        headers={"X-Custom": "Yes", "Cookie": "c1=v1; c2=v2"},
        timeout=10,
    )
    assert reply.status_code == 200
    assert reply.headers["x-route"] == "GET /items/{item_id}"
    assert reply.headers["set-cookie"].startswith("seen=1")
    event, context = reply.json()["event"], reply.json()["context"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{item_id}"
    assert event["rawPath"] == "/fx/items/it%2042"
    assert event["rawQueryString"] == "b=2&a=1&a=3"
    assert event["queryStringParameters"] == {"b": "2", "a": "1,3"}
    assert event["pathParameters"] == {"item_id": "it 42"}
    assert event["headers"]["x-custom"] == "Yes"
    assert all(name == name.lower() for name in event["headers"])
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["stage"] == "fx"
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    assert context["function_name"] == "fixture-fx-echo"
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 5000
    assert context["invoked_function_arn"].endswith(":function:fixture-fx-echo")


def test_http_api_bodies_text_form_and_binary(stack: LocalStack) -> None:
    """Given JSON, form and binary bodies, then JSON arrives as text and the others base64-encoded;
    a base64 response is decoded for the client."""
    as_json = requests.post(f"{stack.api_url}/items", json={"名": "值"}, timeout=10).json()["event"]
    assert as_json["isBase64Encoded"] is False
    assert json.loads(as_json["body"]) == {"名": "值"}

    form = requests.post(f"{stack.api_url}/items", data={"RequestData": "{}", "DataSign": "a+b"}, timeout=10)
    event = form.json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"RequestData=%7B%7D&DataSign=a%2Bb"

    binary = requests.put(f"{stack.api_url}/files/a/b/c.bin", data=b"\x00\xff", timeout=10)
    assert binary.status_code == 201
    assert binary.content == b"\x00\x01binary\xff"


def test_unknown_route_is_api_gateway_404(stack: LocalStack) -> None:
    """Given a path or method no route declares, then the answer is API Gateway's 404."""
    for method, path in (("GET", "/nothing"), ("DELETE", "/items"), ("GET", "/items/a/b")):
        reply = requests.request(method, f"{stack.api_url}{path}", timeout=10)
        assert reply.status_code == 404
        assert reply.content == b'{"message":"Not Found"}'


# --------------------------------------------------------------------------------- SQS event source


def test_partial_batch_failure_retries_then_dead_letters(stack: LocalStack, aws: Callable[[str], Any]) -> None:
    """Given a batch with one poison record, when the consumer reports it as failed, then the others are
    processed exactly once and the poison one is retried until it lands in the DLQ (maxReceiveCount 2)."""
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName="fixture-fx-work")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="fixture-fx-work-dlq")["QueueUrl"]
    run = uuid.uuid4().hex[:8]
    good = [f"{run}-ok-{i}" for i in range(4)]
    bad = f"{run}-poison"
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"id": ident, "poison": ident == bad})}
            for i, ident in enumerate([*good, bad])
        ],
    )

    def in_dlq() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return [m for m in messages if json.loads(m["Body"])["id"] == bad]

    dead = eventually(in_dlq, timeout=30)
    assert len(dead) == 1
    poison = item(aws, stack, f"processed#{bad}", "count")
    assert poison is not None
    assert int(poison["attempts"]["N"]) == 2
    assert [v["S"] for v in poison["receive_counts"]["L"]] == ["1", "2"]
    time.sleep(4)  # longer than the visibility timeout: a wrongly kept record would be seen again
    for ident in good:
        processed = item(aws, stack, f"processed#{ident}", "count")
        assert processed is not None, ident
        assert int(processed["attempts"]["N"]) == 1, ident


def test_event_source_counts_the_sqs_requests_of_each_batch(stack: LocalStack, aws: Callable[[str], Any]) -> None:
    """Given 7 messages for a function polled 5 at a time, when they are all processed, then the local
    stack counts the event source's SQS requests as AWS bills them: at least one ReceiveMessage per batch
    and one DeleteMessageBatch per batch (each deletes at most 10)."""
    base = stack.http.url if stack.http else ""
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName="fixture-fx-work")["QueueUrl"]
    requests.post(f"{base}/_local/metrics/reset", timeout=10).raise_for_status()
    run = uuid.uuid4().hex[:8]
    idents = [f"{run}-count-{i}" for i in range(7)]
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "MessageBody": json.dumps({"id": ident})} for i, ident in enumerate(idents)],
    )
    for ident in idents:
        eventually(lambda ident=ident: item(aws, stack, f"processed#{ident}", "count"), timeout=30)

    def settled() -> dict[str, Any] | None:
        metrics = requests.get(f"{base}/_local/metrics", timeout=10).json()
        counted = metrics.get("event_source_requests", {}).get("BatchFunction", {})
        return metrics if counted.get("DeleteMessageBatch", 0) >= 2 else None

    # (another test's poison record may be retried meanwhile: a batch of it alone deletes nothing)
    metrics = eventually(settled, timeout=15)
    counted = metrics["event_source_requests"]["BatchFunction"]
    assert counted["ReceiveMessage"] >= counted["DeleteMessageBatch"] >= 2  # 7 messages, 5 per batch
    assert counted["DeleteMessageBatch"] <= metrics["lambda"]["BatchFunction"]["invocations"]


# --------------------------------------------------------------------------------- Step Functions


def test_step_functions_runs_real_handler_with_retry_and_catch(stack: LocalStack, aws: Callable[[str], Any]) -> None:
    """Given the fixture workflow, when it runs, then the handler's FlakyError is retried by class name
    until it succeeds and its Rejected is caught and routed to the Caught state."""
    assert stack.resolver is not None
    sfn = aws("stepfunctions")
    key = uuid.uuid4().hex[:8]
    arn = sfn.start_execution(
        stateMachineArn=stack.resolver.ids("Workflow")["Arn"], name=f"run-{key}", input=json.dumps({"key": key})
    )["executionArn"]

    def finished() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=arn)
        return described if described["status"] != "RUNNING" else None

    described = eventually(finished, timeout=30)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["flaky"] == {"attempts": 3}
    assert output["route"] == "caught"
    assert output["error"]["Error"] == "Rejected"
    history = sfn.get_execution_history(executionArn=arn)["events"]
    failures = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failures == ["FlakyError", "FlakyError", "Rejected"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered == ["Flaky", "Reject", "Caught"]


# --------------------------------------------------------------------------------- schedules and control


def test_schedule_fires_with_scheduled_event(stack: LocalStack, aws: Callable[[str], Any]) -> None:
    """Given rate(1 minute) x 0.01, then the scheduled function runs every ~0.6 s with the scheduled-event payload."""

    def ticks() -> int:
        found = item(aws, stack, "tick", "count")
        return int(found["ticks"]["N"]) if found else 0

    eventually(lambda: ticks() >= 2, timeout=15)
    last = json.loads(item(aws, stack, "tick", "count")["last_event"]["S"])  # type: ignore[index]
    assert last["detail-type"] == "Scheduled Event"
    assert last["source"] == "aws.scheduler"
    assert last["detail"] == {}


def test_control_route_invokes_now(stack: LocalStack) -> None:
    """Given POST /_local/invoke/<function>, then one invocation runs now and its result is returned."""
    reply = requests.post(f"{stack.http.url if stack.http else ''}/_local/invoke/TickFunction", timeout=10)
    assert reply.status_code == 200
    assert reply.json()["function"] == "TickFunction"
    assert reply.json()["result"]["ticks"] >= 1
    missing = requests.post(f"{stack.http.url if stack.http else ''}/_local/invoke/Nope", timeout=10)
    assert missing.status_code == 404


def test_metrics_count_function_aws_calls(stack: LocalStack) -> None:
    """Given a reset, when a function runs, then its AWS calls are counted by service and operation."""
    base = stack.http.url if stack.http else ""
    requests.post(f"{base}/_local/metrics/reset", timeout=10).raise_for_status()
    requests.post(f"{base}/_local/invoke/TickFunction", timeout=10).raise_for_status()
    metrics = requests.get(f"{base}/_local/metrics", timeout=10).json()
    assert metrics["aws_calls_by_function"]["TickFunction"]["dynamodb.UpdateItem"] >= 1
    assert metrics["lambda"]["TickFunction"]["invocations"] >= 1


# --------------------------------------------------------------------------------- rules


def test_rule_to_sns_with_input_transformer_lands_in_alerts(stack: LocalStack, aws: Callable[[str], Any]) -> None:
    """Given an Alert event whose message has quotes and a newline, when it matches the rule, then the
    transformed message is published to the topic and appended to alerts.jsonl."""
    message = f'parcel "{uuid.uuid4().hex[:6]}" stalled\n包裹停滞'
    aws("events").put_events(
        Entries=[
            {
                "Source": "fixture",
                "DetailType": "Alert",
                "Detail": json.dumps({"message": message}),
                "EventBusName": "fixture-fx",
            }
        ]
    )
    aws("events").put_events(
        Entries=[
            {
                "Source": "other",
                "DetailType": "Alert",
                "Detail": json.dumps({"message": "no match"}),
                "EventBusName": "fixture-fx",
            }
        ]
    )

    def alerts() -> list[dict[str, Any]]:
        if not stack.alerts_file.exists():
            return []
        lines = [json.loads(line) for line in stack.alerts_file.read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if line.get("text") == message]

    [line] = eventually(alerts, timeout=15)
    assert line["topic"] == "fixture-fx-alerts"
    assert json.loads(line["message"]) == message
    time.sleep(1.5)
    everything = stack.alerts_file.read_text(encoding="utf-8")
    assert "no match" not in everything


def test_rule_to_api_destination_posts_with_api_key(stack: LocalStack, aws: Callable[[str], Any]) -> None:
    """Given an Update event, when it matches the OMS rule, then the runner POSTs the event to the
    destination (the local sink) with the connection's x-api-key."""
    marker = uuid.uuid4().hex
    aws("events").put_events(
        Entries=[
            {
                "Source": "fixture",
                "DetailType": "Update",
                "Detail": json.dumps({"marker": marker}),
                "EventBusName": "fixture-fx",
            }
        ]
    )

    def received() -> list[dict[str, Any]]:
        if not stack.oms_callbacks_file.exists():
            return []
        lines = [json.loads(line) for line in stack.oms_callbacks_file.read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if line["event"].get("detail", {}).get("marker") == marker]

    [line] = eventually(received, timeout=15)
    assert line["authorized"] is True
    event = line["event"]
    assert event["source"] == "fixture"
    assert event["detail-type"] == "Update"
    assert event["account"] == "123456789012"
    assert "ingestion-time" not in event
