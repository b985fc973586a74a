"""Fixtures of the ingest integration tests: moto resources shaped like template.yaml, the three carrier
sandboxes on loopback, an HTTP bridge that turns their pushes into API Gateway HTTP API v2.0 events for
the real webhook handler, and a driver that feeds the tracking queue to the real normalizer handler.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from parcelhub.adapters.dynamodb import DynamoShipmentStore
from parcelhub.domain.models import Carrier, Item, Money, Parcel, Provider, Shipment, Waybill
from sandbox.carriers.kdniao import KdniaoSandbox
from sandbox.carriers.kuaidi100 import Kuaidi100Sandbox
from sandbox.carriers.sf import SfSandbox
from sandbox.local.provision import create_table_request
from sandbox.local.secret_parts import create_secrets, secret_values
from sandbox.local.template import load_template
from tests.fakes.stream import StreamRelay

REGION = "us-east-1"
KDNIAO = {"ebusiness_id": "1234567", "app_key": "local-kdniao-app-key-0000"}
SF = {"partner_id": "LOCALPARTNER", "checkword": "local-sf-checkword-0000", "monthly_card": "7551234567"}
SF_TOKEN = "local-sf-push-token-0123456789"
KUAIDI100 = {"key": "LOCALKEY", "customer": "LOCALCUSTOMER", "salt": "local-salt-0000"}


class LambdaContext:
    """What Powertools reads from a Lambda context."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Hub:
    """The AWS side (moto) of the hub, named like the template's resources."""

    table: str
    bucket: str
    queue_url: str
    dlq_url: str
    bus: str
    events_queue_url: str
    #: secret -> ARN, as the functions' environment names them (``SF_PUSH_SECRET_ARN``...)
    secret_env: dict[str, str]
    store: DynamoShipmentStore
    stream: StreamRelay
    calls: list[str] = field(default_factory=list)
    _seq: int = 0

    @property
    def sqs(self) -> Any:
        return boto3.client("sqs", region_name=REGION)

    def queued(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def receive(self, max_messages: int = 10) -> list[dict[str, Any]]:
        reply = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=max_messages, AttributeNames=["All"], WaitTimeSeconds=0
        )
        return list(reply.get("Messages", []))

    def lambda_records(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        arn = f"arn:aws:sqs:{REGION}:123456789012:{self.queue_url.rsplit('/', 1)[-1]}"
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {
                        "ApproximateReceiveCount": m["Attributes"].get("ApproximateReceiveCount", "1"),
                        "SentTimestamp": m["Attributes"].get("SentTimestamp", "0"),
                        "SenderId": m["Attributes"].get("SenderId", "AIDAEXAMPLE"),
                        "ApproximateFirstReceiveTimestamp": m["Attributes"].get(
                            "ApproximateFirstReceiveTimestamp", "0"
                        ),
                    },
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def normalize(self, batch_size: int = 10, rounds: int = 100) -> list[dict[str, Any]]:
        """Run the real normalizer over everything queued (like the Lambda event source mapping): delete
        what succeeded; return the batch responses."""
        from functions.tracking_normalizer.handler import lambda_handler

        responses = []
        for _ in range(rounds):
            messages = self.receive(batch_size)
            if not messages:
                break
            event = self.lambda_records(messages)
            response = lambda_handler(event, LambdaContext("tracking-normalizer"))
            responses.append(response)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for message in done:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if failed and len(failed) == len(messages):
                break
        return responses

    def published(self) -> list[dict[str, Any]]:
        """Every event the hub put on its bus so far (captured by a rule -> SQS target), after the outbox
        relay ran over the table's stream."""
        self.stream.relay()
        out: list[dict[str, Any]] = []
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.events_queue_url, MaxNumberOfMessages=10)
            messages = reply.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.events_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def shipment(
        self,
        provider: Provider,
        carrier: Carrier,
        tracking_number: str,
        *,
        claim: bool = True,
        province: str = "上海市",
        created_at: datetime | None = None,
    ) -> str:
        """A shipment with its waybill recorded (and the tracking claim, unless ``claim=False``), created a
        day ago unless ``created_at`` says when (scans dated before it are flagged, issue 14)."""
        self._seq += 1
        shipment_id = f"shp-{uuid.uuid4().hex[:12]}"
        now = created_at or datetime.now(UTC) - timedelta(days=1)
        self.store.create(
            Shipment(
                shipment_id=shipment_id,
                order_id=f"ORD-{self._seq:05d}-{shipment_id[-4:]}",
                declared_value=Money(amount=Decimal("128.00")),
                parcels=[Parcel(weight_kg=0.8)],
                items=[Item(name="连衣裙", quantity=1)],
                receiver_masked={"name": "张*", "phone": "138****0000"},
                origin_province="浙江省",
                origin_city="杭州市",
                destination_province=province,
                destination_city="上海市",
                created_at=now,
                updated_at=now,
            )
        )
        waybill = Waybill(provider=provider, carrier=carrier, tracking_number=tracking_number)
        self.store.save_waybill(shipment_id, waybill, [], now)
        if claim:
            self.claim(shipment_id, carrier, tracking_number)
        return shipment_id

    def claim(self, shipment_id: str, carrier: Carrier, tracking_number: str) -> None:
        order_id = self.store.get(shipment_id).order_id
        self.store.claim_tracking(carrier.value, tracking_number, shipment_id, order_id)


def _create_resources(stage: str) -> dict[str, str]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    table = f"parcelhub-{stage}"
    template = load_template(Path(__file__).resolve().parents[3] / "template.yaml")
    ddb.create_table(**create_table_request(template["Resources"]["ParcelhubTable"]["Properties"], table))
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    bucket = f"parcelhub-{stage}-123456789012-{REGION}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName=f"parcelhub-{stage}-tracking-updates-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"parcelhub-{stage}-tracking-updates",
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    events = boto3.client("events", region_name=REGION)
    bus = f"parcelhub-{stage}"
    events.create_event_bus(Name=bus)
    relay_dlq_url = sqs.create_queue(QueueName=f"parcelhub-{stage}-event-relay-dlq")["QueueUrl"]
    capture_url = sqs.create_queue(QueueName=f"parcelhub-{stage}-events-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventBusName=bus, EventPattern=json.dumps({"source": ["parcelhub"]}))
    events.put_targets(Rule="capture", EventBusName=bus, Targets=[{"Id": "capture", "Arn": capture_arn}])
    return {
        "table": table,
        "bucket": bucket,
        "queue_url": queue_url,
        "dlq_url": dlq_url,
        "bus": bus,
        "events_queue_url": capture_url,
        "relay_dlq_url": relay_dlq_url,
    }


def provider_secret(kdniao_url: str, sf_url: str, kuaidi100_url: str, webhook: str) -> dict[str, Any]:
    return {
        "providers": {
            "kdniao": KDNIAO | {"base_url": kdniao_url},
            "sf": SF | {"push_token": SF_TOKEN, "base_url": sf_url},
            "kuaidi100": KUAIDI100 | {"base_url": kuaidi100_url, "callback_url": webhook + "/v1/webhooks/kuaidi100"},
        },
        "api_keys": [],
    }


def reset_caches() -> None:
    from parcelhub import composition

    composition.reset()


@dataclass
class Sandboxes:
    kdniao: KdniaoSandbox
    sf: SfSandbox
    kuaidi100: Kuaidi100Sandbox

    def of(self, provider: Provider) -> Any:
        return {Provider.KDNIAO: self.kdniao, Provider.SF: self.sf, Provider.KUAIDI100: self.kuaidi100}[provider]


class WebhookBridge:
    """A loopback HTTP server: requests -> API Gateway HTTP API (v2.0) events -> the real webhook handler."""

    ROUTES = ("/v1/webhooks/kdniao", "/v1/webhooks/kuaidi100")

    def __init__(self) -> None:
        self.responses: list[tuple[str, int, str]] = []
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = bridge.invoke(self.path, dict(self.headers.items()), body)
                data = payload.encode("utf-8")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @staticmethod
    def event(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """A Lambda function URL event (payload v2.0: route key ``$default``, no path parameters)."""
        parsed = urllib.parse.urlsplit(path)
        lowered = {k.lower(): v for k, v in headers.items()}
        text_like = any(t in lowered.get("content-type", "") for t in ("json", "text", "xml"))
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": parsed.path,
            "rawQueryString": parsed.query,
            "headers": lowered,
            "requestContext": {
                "http": {"method": "POST", "path": parsed.path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
                "stage": "$default",
                "routeKey": "$default",
                "requestId": uuid.uuid4().hex,
            },
            "body": body.decode("utf-8") if text_like else base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": not text_like,
        }

    def invoke(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], str]:
        from functions.carrier_webhook.handler import lambda_handler

        response = lambda_handler(self.event(path, headers, body), LambdaContext("carrier-webhook"))
        self.responses.append((path, int(response["statusCode"]), str(response["body"])))
        return int(response["statusCode"]), dict(response.get("headers") or {}), str(response["body"])

    def start(self) -> WebhookBridge:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bridge() -> Iterator[WebhookBridge]:
    server = WebhookBridge().start()
    yield server
    server.stop()


@pytest.fixture
def sandboxes(bridge: WebhookBridge) -> Iterator[Sandboxes]:
    boxes = Sandboxes(
        kdniao=KdniaoSandbox(**KDNIAO, webhook_url=bridge.url + "/v1/webhooks/kdniao", seed=7),
        sf=SfSandbox(**SF, push_token=SF_TOKEN, webhook_url=bridge.url + "/v1/webhooks/sf", seed=7),
        kuaidi100=Kuaidi100Sandbox(**KUAIDI100, webhook_url=bridge.url + "/v1/webhooks/kuaidi100", seed=7),
    )
    for box in (boxes.kdniao, boxes.sf, boxes.kuaidi100):
        box.push_mode.mode = "manual"
        box.start()
    yield boxes
    for box in (boxes.kdniao, boxes.sf, boxes.kuaidi100):
        box.stop()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, sandboxes: Sandboxes, bridge: WebhookBridge) -> Iterator[Hub]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "parcelhub")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        names = _create_resources("it")
        secret = provider_secret(sandboxes.kdniao.url, sandboxes.sf.url, sandboxes.kuaidi100.url, bridge.url)
        secret_env = create_secrets(
            boto3.client("secretsmanager", region_name=REGION),
            "parcelhub/it",
            secret_values(secret["providers"], secret["api_keys"]),
        )
        env = {
            "TABLE_NAME": names["table"],
            "DATA_BUCKET": names["bucket"],
            "PII_KEY_ID": boto3.client("kms", region_name=REGION).create_key(Description="pii")["KeyMetadata"]["KeyId"],
            "TRACKING_QUEUE_URL": names["queue_url"],
            "EVENT_BUS_NAME": names["bus"],
            "EVENT_RELAY_DLQ_URL": names["relay_dlq_url"],
            "CONFIG_PARAMETER": "",
            **secret_env,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_caches()
        store = DynamoShipmentStore(names["table"], client=boto3.client("dynamodb", region_name=REGION))
        yield Hub(
            table=names["table"],
            bucket=names["bucket"],
            queue_url=names["queue_url"],
            dlq_url=names["dlq_url"],
            bus=names["bus"],
            events_queue_url=names["events_queue_url"],
            secret_env=secret_env,
            store=store,
            stream=StreamRelay(names["table"]),
        )
        reset_caches()
