"""The waybill workflow on moto with our real handler in-process and the real carrier sandboxes.

* moto (``mock_aws`` with Step Functions execution on) holds the table, KMS key, bucket, event bus, SSM
  config and secrets, the ``waybill-tasks`` Lambda and the state machine built from
  ``infra/statemachines/waybill.asl.json`` (DefinitionSubstitutions applied as the template does).
* moto's single Lambda invocation point is replaced by an in-process call of
  ``functions.waybill_tasks.handler.lambda_handler``; an exception surfaces to Step Functions as
  ``{"errorType": <class name>, ...}``, so the ASL's Retry/Catch match our exception class names, as on AWS.
* The SF and Kdniao sandboxes are real HTTP servers on loopback (port 0); the plugins talk to them.
* Events are read back through a bus rule -> SQS queue (the real EventBridge path).
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from moto.awslambda.models import LambdaFunction

from parcelhub import composition
from parcelhub.app.shipments import new_shipment
from parcelhub.domain.models import Shipment, ShipmentRequest
from sandbox.carriers.kdniao import KdniaoSandbox
from sandbox.carriers.sf import SfSandbox
from sandbox.local.secret_parts import create_secrets, secret_values
from tests.fakes.stream import StreamRelay

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[3]
ASL = ROOT / "infra" / "statemachines" / "waybill.asl.json"
FIXTURES = ROOT / "tests" / "fixtures" / "waybill"

KDNIAO_ID, KDNIAO_KEY = "1234567", "00000000-1111-2222-3333-444444444444"
SF_PARTNER, SF_CHECKWORD, SF_CARD = "TESTPARTNER", "TESTCHECKWORD0000000000000000000", "7551234567"
SF_TOKEN = "tok-0123456789abcdef0123456789"
WEBHOOK_BASE = "https://hub.example.test/dev"
TRACKING_LINK_SECRET = "waybill-test-tracking-link-secret-0123456789"


def order_request(**overrides: Any) -> ShipmentRequest:
    """The OMS request fixture (tests/fixtures/waybill/shipment_request.json) with fields overridden."""
    body = json.loads((FIXTURES / "shipment_request.json").read_text(encoding="utf-8"))
    body["order_id"] = f"DTC-{uuid.uuid4().hex[:12]}"
    body.update(overrides)
    return ShipmentRequest.model_validate(body)


@dataclass
class Context:
    """What Lambda hands a handler (Powertools reads these attributes)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline: float = field(default_factory=lambda: time.monotonic() + 30)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Replacement of ``LambdaFunction._invoke_lambda``: run our real handler in this process."""
    from functions.waybill_tasks.handler import lambda_handler

    payload = json.loads(event) if isinstance(event, str) else (event or {})
    context = Context(function.function_name, function.function_arn)
    try:
        result = lambda_handler(payload, context)
    except Exception as exc:
        error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
        return json.dumps(error), True, ""
    return json.dumps(result), False, ""


@dataclass
class World:
    """Handles on everything a waybill test needs."""

    sf: SfSandbox
    kdniao: KdniaoSandbox
    state_machine_arn: str
    events_queue_url: str
    bucket: str
    table: str
    key_id: str
    monkeypatch: pytest.MonkeyPatch
    stream: StreamRelay

    @property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)

    def fault(self, sandbox: SfSandbox | KdniaoSandbox, **faults: Any) -> None:
        requests.post(f"{sandbox.url}/_sandbox/faults", json=faults, timeout=5).raise_for_status()

    def configure(self, config: dict[str, Any]) -> None:
        """Replace the hub configuration (SSM) and forget cached configuration."""
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name="/parcelhub/test/config", Value=json.dumps(config), Type="String", Overwrite=True
        )
        composition.reset()

    def new_shipment(self, request: ShipmentRequest | None = None) -> Shipment:
        """Store a PENDING shipment the way the OMS API does (PII encrypted, masked copy, route)."""
        request = request or order_request()
        now = datetime.now(UTC)
        shipment_id = f"shp_{uuid.uuid4().hex[:20]}"
        shipment = new_shipment(
            shipment_id, request, now=now, cipher=composition.cipher(), warehouse=composition.hub_config().warehouse
        )
        composition.store().create(shipment)
        return shipment

    def start(self, shipment_id: str, name: str | None = None) -> str:
        reply = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or shipment_id,
            input=json.dumps({"shipment_id": shipment_id}),
        )
        return str(reply["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.1)
        raise AssertionError(f"execution {execution_arn} still running after {timeout}s")

    def run(self, shipment_id: str, name: str | None = None) -> dict[str, Any]:
        return self.wait(self.start(shipment_id, name))

    def start_duplicate(self, shipment_id: str, name: str | None = None) -> str:
        """Start a second run under a name already used: what an asynchronous Express start may do (at least
        once, names not unique). moto refuses a used name per state machine, so the duplicate runs on a twin
        machine with the same definition, role and type: the same ``$$.Execution.Name``, another run."""
        described = self.sfn.describe_state_machine(stateMachineArn=self.state_machine_arn)
        twin = self.sfn.create_state_machine(
            name=f"parcelhub-test-waybill-{uuid.uuid4().hex[:8]}",
            definition=described["definition"],
            roleArn=described["roleArn"],
            type=described["type"],
        )["stateMachineArn"]
        reply = self.sfn.start_execution(
            stateMachineArn=twin, name=name or shipment_id, input=json.dumps({"shipment_id": shipment_id})
        )
        return str(reply["executionArn"])

    def shipment(self, shipment_id: str) -> Shipment:
        return composition.store().get(shipment_id)

    def events(self) -> list[dict[str, Any]]:
        """Every event that reached the bus so far (drains the capture queue), after the outbox relay ran
        over the table's stream."""
        self.stream.relay()
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[dict[str, Any]] = []
        while True:
            reply = sqs.receive_message(QueueUrl=self.events_queue_url, MaxNumberOfMessages=10)
            messages = reply.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.events_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def create_calls(self, sandbox: SfSandbox | KdniaoSandbox) -> list[dict[str, Any]]:
        """The sandbox's request log entries that asked for a waybill (incl. ones refused by a fault)."""
        with sandbox.lock:
            return [dict(entry) for entry in sandbox.request_log if _asks(entry, CREATES)]

    def fetch_calls(self, sandbox: SfSandbox | KdniaoSandbox) -> list[dict[str, Any]]:
        """The request log entries that asked about an order already placed (SF's order-result query)."""
        with sandbox.lock:
            return [dict(entry) for entry in sandbox.request_log if _asks(entry, {"EXP_RECE_SEARCH_ORDER_RESP"})]


#: what a create call is called in the sandboxes' request logs (operation, or SF service / Kdniao type)
CREATES = {"EXP_RECE_CREATE_ORDER", "create_waybill", "1007"}


def _asks(entry: dict[str, Any], names: set[str]) -> bool:
    return bool({entry["operation"], entry.get("service"), entry.get("request_type")} & names)


def machine_type() -> str:
    """The waybill state machine's type as template.yaml declares it."""
    from sandbox.local.template import load_template

    template = load_template(ROOT / "template.yaml")
    return str(template["Resources"]["WaybillStateMachine"]["Properties"]["Type"])


def _create_table(client: Any, name: str) -> None:
    """The table exactly as template.yaml declares it (keys, sparse GSIs and their projections, TTL)."""
    from sandbox.local.provision import create_table_request
    from sandbox.local.template import load_template

    template = load_template(Path(__file__).resolve().parents[3] / "template.yaml")
    client.create_table(**create_table_request(template["Resources"]["ParcelhubTable"]["Properties"], name))
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "parcelhub",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", _invoke_in_process)
    sf = SfSandbox(partner_id=SF_PARTNER, checkword=SF_CHECKWORD, monthly_card=SF_CARD, stage_seconds=3600, seed=1)
    kdniao = KdniaoSandbox(KDNIAO_ID, KDNIAO_KEY, stage_seconds=3600, seed=2)
    sf.start()
    kdniao.start()
    composition.reset()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        table, bucket, bus = "parcelhub-test", "parcelhub-test-data", "parcelhub-test"
        _create_table(boto3.client("dynamodb", region_name=REGION), table)
        key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=bus)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="captured-events")["QueueUrl"]
        relay_dlq_url = sqs.create_queue(QueueName="event-relay-dlq")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="capture", EventBusName=bus, EventPattern=json.dumps({"source": ["parcelhub"]}))
        events.put_targets(Rule="capture", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/parcelhub/test/config", Value="{}", Type="String")
        providers = {
            "kdniao": {"ebusiness_id": KDNIAO_ID, "app_key": KDNIAO_KEY, "base_url": kdniao.url, "read_timeout": 2.0},
            "sf": {
                "partner_id": SF_PARTNER,
                "checkword": SF_CHECKWORD,
                "monthly_card": SF_CARD,
                "push_token": SF_TOKEN,
                "base_url": sf.url,
                "read_timeout": 2.0,
            },
        }
        secret_env = create_secrets(
            boto3.client("secretsmanager", region_name=REGION),
            "parcelhub/test",
            secret_values(providers, [], TRACKING_LINK_SECRET),
        )
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="waybill", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        function_arn = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="parcelhub-test-waybill-tasks",
            Runtime="python3.13",
            Role=role,
            Handler="handler.lambda_handler",
            Code={"ZipFile": _dummy_zip()},
        )["FunctionArn"]
        definition = ASL.read_text(encoding="utf-8").replace("${WaybillTasksFunctionArn}", function_arn)
        machine_arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="parcelhub-test-waybill", definition=definition, roleArn=role, type=machine_type()
        )["stateMachineArn"]
        for name, value in {
            "TABLE_NAME": table,
            "EVENT_BUS_NAME": bus,
            "EVENT_RELAY_DLQ_URL": relay_dlq_url,
            "PII_KEY_ID": key_id,
            "DATA_BUCKET": bucket,
            "WEBHOOK_BASE_URL": WEBHOOK_BASE,
            "PUBLIC_BASE_URL": WEBHOOK_BASE,
            "CONFIG_PARAMETER": "/parcelhub/test/config",
            "WAYBILL_STATE_MACHINE_ARN": machine_arn,
            **secret_env,
        }.items():
            monkeypatch.setenv(name, value)
        composition.reset()
        try:
            yield World(sf, kdniao, machine_arn, queue_url, bucket, table, key_id, monkeypatch, StreamRelay(table))
        finally:
            sf.stop()
            kdniao.stop()
            composition.reset()
