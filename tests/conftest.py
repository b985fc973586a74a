"""Fixtures shared by every tier.

``hub_aws`` provisions, inside moto's in-process ``mock_aws``, the resources the functions use —
the table definitions are read from template.yaml itself, so a test can't drift from the template —
and points the functions' environment (the variables the template gives them) at them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings

# Property tests assert behaviour, not speed: on a loaded 2-core CI machine a deadline only adds flakes.
settings.register_profile("parcelhub", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("parcelhub")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _dynamodb_requests_are_atomic() -> None:
    """moto's in-process DynamoDB serves concurrent requests without AWS's per-request atomicity (two
    conditional writers can both pass); make it behave like AWS, as the local stack does."""
    from sandbox.local.fidelity import serialize_dynamodb

    serialize_dynamodb()


REGION = "us-east-1"
LOCAL_API_KEY = "test-api-key"
#: signs tracking-page links in tests (a test value, >= 32 bytes)
TRACKING_LINK_SECRET = "test-tracking-link-secret-0123456789abcdef"
PUBLIC_BASE_URL = "https://api.example.com"


def load_template() -> dict[str, Any]:
    from sandbox.local.template import load_template as load

    return load(ROOT / "template.yaml")


def table_spec(logical_id: str, name: str) -> dict[str, Any]:
    """CreateTable arguments for a table of template.yaml."""
    from sandbox.local.provision import create_table_request

    return create_table_request(load_template()["Resources"][logical_id]["Properties"], name)


@dataclass
class HubAws:
    """Names of what ``hub_aws`` provisioned, and handy clients."""

    table_name: str
    waybill_queue_url: str
    tracking_queue_url: str
    bus_name: str
    bus_capture_queue_url: str
    pii_key_id: str
    bucket: str
    #: the OMS secret's ARN (the provider secrets are in ``env`` and have no value: no provider configured)
    oms_secret_arn: str
    config_parameter: str
    state_machine_arn: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def captured_events(self) -> list[dict[str, Any]]:
        """Every event published on the bus so far (a catch-all rule routes them to an SQS queue)."""
        sqs = self.client("sqs")
        events: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.bus_capture_queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return events
            for message in batch:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.bus_capture_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def queued(self, queue_url: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return bodies
            for message in batch:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "parcelhub",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def hub_aws(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubAws]:
    """moto with the hub's resources, the functions' environment set, and every cached adapter reset."""
    from moto import mock_aws

    from parcelhub import composition

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**table_spec("ParcelhubTable", "parcelhub-test"))
        sqs = boto3.client("sqs", region_name=REGION)
        waybill_queue = sqs.create_queue(QueueName="waybill-requests")["QueueUrl"]
        tracking_queue = sqs.create_queue(QueueName="tracking-updates")["QueueUrl"]
        capture_queue = sqs.create_queue(QueueName="bus-capture")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(QueueUrl=capture_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name="parcelhub-test")
        events.put_rule(Name="capture-all", EventBusName="parcelhub-test", EventPattern='{"source": ["parcelhub"]}')
        events.put_targets(
            Rule="capture-all", EventBusName="parcelhub-test", Targets=[{"Id": "capture", "Arn": capture_arn}]
        )
        key_id = boto3.client("kms", region_name=REGION).create_key(Description="pii")["KeyMetadata"]["KeyId"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="parcelhub-test-data")
        s3.create_bucket(Bucket="parcelhub-test-history")
        from sandbox.local.secret_parts import create_secrets, secret_values

        api_keys = [{"name": "test", "sha256": hashlib.sha256(LOCAL_API_KEY.encode()).hexdigest()}]
        secret_env = create_secrets(
            boto3.client("secretsmanager", region_name=REGION),
            "parcelhub/test",
            secret_values({}, api_keys, TRACKING_LINK_SECRET),
        )
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/parcelhub/test/config", Type="String", Value="{}")
        hub = HubAws(
            table_name="parcelhub-test",
            waybill_queue_url=waybill_queue,
            tracking_queue_url=tracking_queue,
            bus_name="parcelhub-test",
            bus_capture_queue_url=capture_queue,
            pii_key_id=key_id,
            bucket="parcelhub-test-data",
            oms_secret_arn=secret_env["OMS_SECRET_ARN"],
            config_parameter="/parcelhub/test/config",
        )
        hub.env = {
            "TABLE_NAME": hub.table_name,
            "WAYBILL_QUEUE_URL": waybill_queue,
            "TRACKING_QUEUE_URL": tracking_queue,
            "EVENT_BUS_NAME": hub.bus_name,
            "PII_KEY_ID": key_id,
            "DATA_BUCKET": hub.bucket,
            **secret_env,
            "HISTORY_BUCKET": "parcelhub-test-history",
            "CONFIG_PARAMETER": hub.config_parameter,
            "STALL_SHARDS": "8",
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "WAYBILL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:parcelhub-test-waybill",
        }
        for name, value in hub.env.items():
            monkeypatch.setenv(name, value)
        composition.reset()
        try:
            yield hub
        finally:
            composition.reset()
