"""EventBridgePublisher against EventBridge (moto): batching, retries of throttled entries, failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from parcelhub.adapters.eventbridge import EventBridgePublisher
from parcelhub.domain.models import Carrier, Provider
from parcelhub.domain.status import Status
from parcelhub.events import (
    MAX_CALL_BYTES,
    AttemptSummary,
    EventPublisher,
    PublishFailed,
    ShipmentStatusChanged,
    WaybillFailed,
    entry_size,
)

pytestmark = pytest.mark.integration

BUS = "parcelhub-test"
T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


class _Http:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


@dataclass
class Bus:
    events: Any
    sqs: Any
    queue_url: str
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    #: fault injection: called with the entries of each PutEvents; returns None (let it through) or a
    #: per-entry list of error codes (None = forward that entry to EventBridge) or a whole-call error code.
    fault: Callable[[int, list[dict[str, Any]]], list[str | None] | str | None] | None = None

    def publisher(self, **kwargs: Any) -> EventBridgePublisher:
        kwargs.setdefault("sleep", lambda _s: None)
        return EventBridgePublisher(BUS, client_factory=lambda: self.events, **kwargs)

    def received(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = reply.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        forward = boto3.client("events", region_name="us-east-1")  # delivers the entries a fault lets through
        events.create_event_bus(Name=BUS)
        queue_url = sqs.create_queue(QueueName="all-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["parcelhub"]}))
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
        state = Bus(events=events, sqs=sqs, queue_url=queue_url)
        pending: list[list[dict[str, Any]]] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            entries = [dict(e) for e in params["Entries"]]
            state.calls.append(entries)
            pending.append(entries)

        def inject(**_: Any) -> tuple[_Http, dict[str, Any]] | None:
            entries = pending.pop()
            decision = state.fault(len(state.calls), entries) if state.fault else None
            if decision is None:
                return None
            if isinstance(decision, str):
                return _Http(400), {"Error": {"Code": decision, "Message": "Rate exceeded"}, "ResponseMetadata": {}}
            results: list[dict[str, str]] = []
            for entry, code in zip(entries, decision, strict=True):
                if code is None:
                    results.append(forward.put_events(Entries=[entry])["Entries"][0])
                else:
                    results.append({"ErrorCode": code, "ErrorMessage": f"{code} (injected)"})
            failed = sum(1 for r in results if "ErrorCode" in r)
            return _Http(200), {"FailedEntryCount": failed, "Entries": results, "ResponseMetadata": {}}

        events.meta.events.register("before-parameter-build.events.PutEvents", record)
        events.meta.events.register("before-call.events.PutEvents", inject)
        yield state


def changed(n: int, **overrides: Any) -> ShipmentStatusChanged:
    return ShipmentStatusChanged.model_validate(
        {
            "shipment_id": f"shp_{n:04d}",
            "order_id": f"DTC-{n:04d}",
            "carrier": Carrier.ZTO,
            "provider": Provider.KDNIAO,
            "tracking_number": f"7310001{n:07d}",
            "old_status": Status.PICKED_UP,
            "new_status": Status.IN_TRANSIT,
            "occurred_at": T0 + timedelta(minutes=n),
        }
        | overrides
    )


def test_the_publisher_satisfies_the_port(bus: Bus) -> None:
    assert isinstance(bus.publisher(), EventPublisher)


def test_25_events_go_out_in_three_calls_and_all_arrive(bus: Bus) -> None:
    # Given 25 status changes
    events = [changed(n) for n in range(25)]
    # When published
    bus.publisher().publish(events)
    # Then PutEvents was called with 10 + 10 + 5 entries
    assert [len(c) for c in bus.calls] == [10, 10, 5]
    # and every event arrived once on the bus, with its id, in the detail
    received = bus.received()
    assert sorted(m["detail"]["event_id"] for m in received) == sorted(e.event_id for e in events)
    assert {m["detail-type"] for m in received} == {"ShipmentStatusChanged"}
    assert {m["source"] for m in received} == {"parcelhub"}


def test_large_events_are_split_by_size(bus: Bus) -> None:
    # Given 6 WaybillFailed events of about 100 KB each (long provider messages over many attempts)
    message = "服务暂时不可用，请稍后重试" * 38
    attempts = [
        AttemptSummary(provider=Provider.SF, carrier=Carrier.SF, outcome="unavailable", error_message=message, at=T0)
    ] * 22
    events = [
        WaybillFailed(shipment_id=f"shp_{n}", order_id=f"DTC-{n}", attempts=attempts, failed_at=T0) for n in range(6)
    ]
    sizes = [
        entry_size({"Source": "parcelhub", "DetailType": "WaybillFailed", "Detail": e.detail_json(), "Time": 1})
        for e in events
    ]
    assert all(80_000 < s < MAX_CALL_BYTES // 2 for s in sizes)
    # When published
    bus.publisher().publish(events)
    # Then no call exceeds 256 KiB (here: two entries per call), and all six arrive
    assert [len(c) for c in bus.calls] == [2, 2, 2]
    for call in bus.calls:
        assert sum(entry_size(e) for e in call) <= MAX_CALL_BYTES
    assert len(bus.received()) == 6


def test_throttled_entries_are_retried_alone(bus: Bus) -> None:
    # Given EventBridge throttles entries 0 and 2 of the first call (the others go through)
    bus.fault = lambda call, entries: (
        ["ThrottlingException", None, "ThrottlingException", None, None] if call == 1 else None
    )
    sleeps: list[float] = []
    events = [changed(n) for n in range(5)]
    # When five events are published
    bus.publisher(sleep=sleeps.append, base_delay=0.05).publish(events)
    # Then the second call carries only the two throttled entries, after one jittered back-off
    assert [len(c) for c in bus.calls] == [5, 2]
    assert [json.loads(e["Detail"])["event_id"] for e in bus.calls[1]] == [events[0].event_id, events[2].event_id]
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.1
    # and each event arrived exactly once
    assert sorted(m["detail"]["event_id"] for m in bus.received()) == sorted(e.event_id for e in events)


def test_a_permanent_entry_failure_is_reported_not_retried(bus: Bus) -> None:
    # Given EventBridge rejects entry 1 for good
    bus.fault = lambda call, entries: [None, "InvalidArgument", None] if call == 1 else None
    events = [changed(n) for n in range(3)]
    # When published / Then PublishFailed names exactly that event, after a single call
    with pytest.raises(PublishFailed) as caught:
        bus.publisher().publish(events)
    assert [(f.event, f.code) for f in caught.value.failed] == [(events[1], "InvalidArgument")]
    assert len(bus.calls) == 1
    # and the others were delivered
    assert sorted(m["detail"]["event_id"] for m in bus.received()) == sorted([events[0].event_id, events[2].event_id])


def test_persistent_throttling_gives_up_after_max_attempts(bus: Bus) -> None:
    # Given EventBridge throttles the whole call every time
    bus.fault = lambda call, entries: "ThrottlingException"
    sleeps: list[float] = []
    events = [changed(n) for n in range(12)]
    # When published with 3 attempts
    with pytest.raises(PublishFailed) as caught:
        bus.publisher(max_attempts=3, sleep=sleeps.append, base_delay=0.1, max_delay=0.15).publish(events)
    # Then each of the two batches was tried 3 times with bounded back-off, and all 12 are reported
    assert [len(c) for c in bus.calls] == [10, 10, 10, 2, 2, 2]
    assert len(sleeps) == 4
    assert all(0 <= s <= 0.15 for s in sleeps)
    assert sorted(f.event.event_id for f in caught.value.failed) == sorted(e.event_id for e in events)
    assert {f.code for f in caught.value.failed} == {"ThrottlingException"}
    assert bus.received() == []


def test_a_missing_bus_fails_at_once(bus: Bus) -> None:
    # Given a publisher pointed at a bus that does not exist
    publisher = EventBridgePublisher("no-such-bus", client_factory=lambda: bus.events, sleep=lambda _s: None)
    # When it publishes / Then it fails after one call (not retryable), naming the AWS error
    with pytest.raises(PublishFailed) as caught:
        publisher.publish([changed(1)])
    assert len(bus.calls) == 1
    assert caught.value.failed[0].code == "ResourceNotFoundException"


def test_nothing_to_publish_makes_no_call(bus: Bus) -> None:
    bus.publisher().publish([])
    assert bus.calls == []
