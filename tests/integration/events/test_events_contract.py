"""Contract test: what the code puts on the bus validates against infra/events/*.json.

Events are built through the real models and published with the real EventBridgePublisher to a moto bus;
a rule delivers them to SQS, and the test reads them back as a consumer would. The ops-alert rule
selects the three alerting events and transforms them to their ``alert``: moto 5.2.5 substitutes
InputTransformer strings without JSON-escaping them (real EventBridge escapes them), so a multi-line
``"<message>"`` template cannot run on moto; the exact template.yaml wiring is checked against the
schemas in tests/unit/events/test_events_template_wiring.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from moto import mock_aws

from parcelhub.adapters.eventbridge import EventBridgePublisher
from parcelhub.domain.models import Carrier, Provider
from parcelhub.domain.status import Status, SubStatus
from parcelhub.events import (
    EVENT_TYPES,
    STALL_RULES,
    Alert,
    Event,
    ShipmentAccepted,
    ShipmentStalled,
    ShipmentStatusChanged,
    parse_event,
)
from tools.event_schemas import example

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[3] / "infra" / "events"
BUS = "parcelhub-contract"
#: the detail-types of the template's ops rule
ALERTING = ["ShipmentStalled", "WaybillFailed", "WaybillCancelFailed", "CarrierCircuitOpened", "CarrierCapacityAlert"]
T0 = datetime(2024, 11, 11, 0, 0, tzinfo=UTC)


def validator(detail_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{detail_type}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


def variants() -> list[Event]:
    """The examples, plus every status transition and every stall rule, with and without optional data."""
    out: list[Event] = [example(cls) for cls in EVENT_TYPES]
    for n, status in enumerate(Status):
        out.append(
            ShipmentStatusChanged(
                shipment_id=f"shp_{n}",
                order_id=f"11-11-{n}",
                carrier=Carrier.SF,
                provider=Provider.SF,
                tracking_number=f"SF14{n:011d}",
                old_status=None if n == 0 else list(Status)[n - 1],
                new_status=status,
                sub_status=SubStatus.UNMAPPED if n % 3 == 0 else SubStatus.NONE,
                occurred_at=T0 + timedelta(hours=n),
            )
        )
    for n, rule in enumerate([*STALL_RULES, "remote_lane"]):
        out.append(
            ShipmentStalled(
                shipment_id=f"shp_stall_{n}",
                order_id=f"VIP-{n}",
                carrier=Carrier.JTSD,
                provider=Provider.KUAIDI100,
                tracking_number=f"JT{n:013d}",
                status=Status.OUT_FOR_DELIVERY,
                rule=rule,
                threshold_seconds=None if rule == "carrier_timeout" else 86400,
                stalled_for_seconds=86400 + n * 3600,
                last_event_text=None if n % 2 else "【成都市】派件员 13800000000 正在派件",
                last_event_at=None if n % 2 else T0,
                episode_id=f"ep-{n}",
                detected_at=T0 + timedelta(days=1, hours=n),
            )
        )
    out.append(
        ShipmentAccepted(
            shipment_id="shp_pinned",
            order_id="PIN-1",
            carrier=Carrier.SF,
            customer_tier="regular",
            service="express",
            destination_province="西藏自治区",
            destination_city="拉萨市",
            parcel_count=3,
            accepted_at=T0,
        )
    )
    return out


def drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        events.create_event_bus(Name=BUS)
        queues = {}
        for name in ("everything", "ops-alerts"):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            queues[name] = (url, arn)
        events.put_rule(Name="everything", EventBusName=BUS, EventPattern=json.dumps({"source": ["parcelhub"]}))
        events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queues["everything"][1]}])
        # The ops-alert rule, as template.yaml wires it (there the target is the SNS topic).
        events.put_rule(
            Name="ops-alerts",
            EventBusName=BUS,
            EventPattern=json.dumps({"source": ["parcelhub"], "detail-type": ALERTING}),
        )
        events.put_targets(
            Rule="ops-alerts",
            EventBusName=BUS,
            Targets=[
                {
                    "Id": "ops",
                    "Arn": queues["ops-alerts"][1],
                    "InputTransformer": {"InputPathsMap": {"alert": "$.detail.alert"}, "InputTemplate": "<alert>"},
                }
            ],
        )
        yield {"events": events, "sqs": sqs, "queues": queues}


def test_everything_the_code_emits_validates_against_the_committed_schemas(aws: dict[str, Any]) -> None:
    # Given every event type, with its variants, built through the models
    emitted = variants()
    # When published through the real publisher to the bus and read back from a subscriber queue
    EventBridgePublisher(BUS, client_factory=lambda: aws["events"], sleep=lambda _s: None).publish(emitted)
    received = [json.loads(b) for b in drain(aws["sqs"], aws["queues"]["everything"][0])]
    # Then every event arrived, each detail is valid against its schema, and reads back as what was sent
    assert len(received) == len(emitted)
    by_id = {e.event_id: e for e in emitted}
    assert len(by_id) == len(emitted)
    for message in received:
        assert message["source"] == "parcelhub"
        errors = sorted(validator(message["detail-type"]).iter_errors(message["detail"]), key=str)
        assert errors == [], f"{message['detail-type']}: {[e.message for e in errors]}"
        back = parse_event(message["detail-type"], message["detail"])
        assert back == by_id[message["detail"]["event_id"]]
    assert {m["detail-type"] for m in received} == {cls.__name__ for cls in EVENT_TYPES}
    # and no mobile number made it onto the bus
    assert "13800000000" not in json.dumps([m["detail"] for m in received], ensure_ascii=False)


def test_the_ops_rule_delivers_the_bilingual_alert_text(aws: dict[str, Any]) -> None:
    # Given one event of each alerting type and some that are not alerts
    emitted = [example(cls) for cls in EVENT_TYPES]
    # When published
    EventBridgePublisher(BUS, client_factory=lambda: aws["events"]).publish(emitted)
    bodies = drain(aws["sqs"], aws["queues"]["ops-alerts"][0])
    # Then the ops target received exactly the five alert messages (WaybillCancelFailed since issue 13,
    # CarrierCapacityAlert since issue 18), as text
    # a person can read
    expected = sorted(e.alert.message for e in emitted if isinstance(getattr(e, "alert", None), Alert))
    assert len(expected) == 5
    assert sorted(json.loads(b)["message"] for b in bodies) == expected
    for body in bodies:
        text = json.loads(body)["message"]
        assert text.index("【") < text.index("[")  # Chinese first, then English
