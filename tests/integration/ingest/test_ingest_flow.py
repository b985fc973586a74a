"""Pushes from the real sandboxes -> the real webhook -> SQS (moto) -> the real normalizer handler ->
DynamoDB, S3 and EventBridge (moto). Also the poller against the sandboxes' query APIs."""

from __future__ import annotations

import collections
import gzip
import json
import random
import time
import urllib.parse
from typing import Any

import boto3
import pytest

from functions.tracking_poller.handler import lambda_handler as poller_handler
from parcelhub import composition
from parcelhub.domain.models import Carrier, Provider
from parcelhub.domain.status import Status
from sandbox.carriers.base import PushRequest, SandboxParcel, Stage
from tests.fakes.transaction_conflicts import TransactionConflicts

from .conftest import REGION, Hub, LambdaContext, Sandboxes, WebhookBridge

pytestmark = pytest.mark.integration

CASES = [
    (Provider.KDNIAO, Carrier.ZTO),
    (Provider.SF, Carrier.SF),
    (Provider.KUAIDI100, Carrier.YTO),
]
NUMBER_PREFIX = {Provider.KDNIAO: "7310000", Provider.SF: "SF140000", Provider.KUAIDI100: "YT740000"}


def number(provider: Provider, n: int) -> str:
    return f"{NUMBER_PREFIX[provider]}{n:07d}"


def lifecycle_pushes(box: Any, carrier: Carrier, tracking_number: str, stages: tuple[Stage, ...]) -> list[PushRequest]:
    """One push per scan, in order, as the provider sends them (snapshots or increments)."""
    parcel = box.track(
        SandboxParcel(
            carrier=carrier.value, tracking_number=tracking_number, order_id=f"O{tracking_number}", subscribed=True
        )
    )
    pushes: list[PushRequest] = []
    for stage in stages:
        scan = box.add_scan(parcel, stage)
        pushes += box.build_push([(parcel, list(parcel.scans) if box.full_snapshot else [scan])])
    return pushes


def timeline(hub: Hub, shipment_id: str) -> list[tuple[str, str, str, str]]:
    return [(e.status.value, e.sub_status.value, e.raw_code, e.raw_text) for e in hub.store.list_events(shipment_id)]


def send_all(box: Any, pushes: list[PushRequest]) -> None:
    for push in pushes:
        assert box.send(push) == 200, box.push_log[-1]


HAPPY = (Stage.PICKED_UP, Stage.IN_TRANSIT, Stage.ARRIVED_DEST_CITY, Stage.OUT_FOR_DELIVERY, Stage.DELIVERED)


@pytest.mark.parametrize(("provider", "carrier"), CASES, ids=[c[0].value for c in CASES])
def test_shuffled_pushes_with_30_percent_duplicates_give_the_in_order_timeline_and_status(
    hub: Hub, sandboxes: Sandboxes, provider: Provider, carrier: Carrier
) -> None:
    # Given two shipments of the same provider, and the same lifecycle for each
    box = sandboxes.of(provider)
    in_order_no, shuffled_no = number(provider, 1), number(provider, 2)
    a = hub.shipment(provider, carrier, in_order_no)
    b = hub.shipment(provider, carrier, shuffled_no)
    ordered = lifecycle_pushes(box, carrier, in_order_no, HAPPY)
    chaotic = lifecycle_pushes(box, carrier, shuffled_no, HAPPY)
    # When one is pushed in order and the other shuffled with 30% duplicates, in several batches
    rng = random.Random(6)
    chaotic = chaotic + [p for p in chaotic if rng.random() < 0.3] + [chaotic[0]]
    rng.shuffle(chaotic)
    send_all(box, ordered)
    hub.normalize()
    send_all(box, chaotic[: len(chaotic) // 2])
    hub.normalize(batch_size=3)
    send_all(box, chaotic[len(chaotic) // 2 :])
    hub.normalize(batch_size=3)
    # Then both have the same timeline and final status
    assert len(timeline(hub, a)) == len(HAPPY)
    assert timeline(hub, b) == timeline(hub, a)
    assert hub.store.get(a).status is hub.store.get(b).status is Status.DELIVERED
    # And each delivery was announced once on the bus, with the ids, carrier and statuses
    published = hub.published()
    delivered = [e["detail"] for e in published if e["detail-type"] == "ShipmentDelivered"]
    assert sorted(d["shipment_id"] for d in delivered) == sorted([a, b])
    changes = [e["detail"] for e in published if e["detail-type"] == "ShipmentStatusChanged"]
    assert all(c["old_status"] != c["new_status"] for c in changes)
    assert {c["carrier"] for c in changes} == {carrier.value}
    assert {c["provider"] for c in changes} == {provider.value}
    assert all(c["order_id"].startswith("ORD-") and c["tracking_number"] for c in changes)
    # And nothing went to the DLQ
    assert hub.queued() == 0


@pytest.mark.parametrize(("provider", "carrier"), CASES, ids=[c[0].value for c in CASES])
def test_a_late_in_transit_push_never_moves_a_delivered_parcel_back(
    hub: Hub, sandboxes: Sandboxes, provider: Provider, carrier: Carrier
) -> None:
    # Given a delivered parcel
    box = sandboxes.of(provider)
    tracking_number = number(provider, 3)
    shipment_id = hub.shipment(provider, carrier, tracking_number)
    send_all(box, lifecycle_pushes(box, carrier, tracking_number, HAPPY))
    hub.normalize()
    hub.published()
    # When an in-transit scan is pushed afterwards (stamped later: a late re-scan)
    parcel = box.parcels[tracking_number]
    late = box.add_scan(parcel, Stage.IN_TRANSIT)
    send_all(box, box.build_push([(parcel, list(parcel.scans) if box.full_snapshot else [late])]))
    hub.normalize()
    # Then it is still DELIVERED, the late event is in the timeline, and no status event was published
    assert hub.store.get(shipment_id).status is Status.DELIVERED
    events = hub.store.list_events(shipment_id)
    assert len(events) == len(HAPPY) + 1
    assert events[0].status is Status.IN_TRANSIT  # newest first: the late scan
    assert [e for e in hub.published() if e["detail-type"] == "ShipmentStatusChanged"] == []


def test_one_archive_object_per_batch(hub: Hub, sandboxes: Sandboxes) -> None:
    # Given 7 pushes queued for 2 shipments
    box = sandboxes.kdniao
    for n in (4, 5):
        hub.shipment(Provider.KDNIAO, Carrier.ZTO, number(Provider.KDNIAO, n))
    pushes = [
        *lifecycle_pushes(box, Carrier.ZTO, number(Provider.KDNIAO, 4), HAPPY[:4]),
        *lifecycle_pushes(box, Carrier.ZTO, number(Provider.KDNIAO, 5), HAPPY[:3]),
    ]
    send_all(box, pushes)
    # When the normalizer takes them in one batch
    hub.normalize(batch_size=10)
    # Then one gzip JSON-lines object holds all seven raw messages
    s3 = boto3.client("s3", region_name=REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=hub.bucket, Prefix="raw/").get("Contents", [])]
    assert len(keys) == 1
    assert keys[0].startswith("raw/")
    assert keys[0].endswith(".jsonl.gz")
    lines = gzip.decompress(s3.get_object(Bucket=hub.bucket, Key=keys[0])["Body"].read()).decode().splitlines()
    assert len(lines) == 7
    assert all(json.loads(json.loads(line)["body"])["provider"] == "kdniao" for line in lines)


def test_a_push_before_the_waybill_is_recorded_is_parked_then_applied_by_apply_parked(
    hub: Hub, sandboxes: Sandboxes
) -> None:
    # Given an SF shipment whose waybill claim is not recorded yet, and its first pushes arriving
    box = sandboxes.sf
    tracking_number = number(Provider.SF, 6)
    shipment_id = hub.shipment(Provider.SF, Carrier.SF, tracking_number, claim=False)
    send_all(box, lifecycle_pushes(box, Carrier.SF, tracking_number, HAPPY[:2]))
    hub.normalize()
    assert hub.store.list_events(shipment_id) == []
    assert hub.queued() == 0  # parked, not failed
    # When the waybill step records the claim and calls apply_parked (the default, deployed wiring)
    hub.claim(shipment_id, Carrier.SF, tracking_number)
    replayed = composition.ingestor().apply_parked("SF", tracking_number).replayed
    # Then both pushes are applied, the status moved and the change was published
    assert replayed == 2
    assert hub.store.get(shipment_id).status is Status.IN_TRANSIT
    assert len(hub.store.list_events(shipment_id)) == 2
    assert [e["detail"]["new_status"] for e in hub.published() if e["detail-type"] == "ShipmentStatusChanged"] == [
        "IN_TRANSIT"
    ]
    assert composition.ingestor().apply_parked("SF", tracking_number).replayed == 0


def test_a_large_parked_snapshot_is_replayed_from_the_archive(hub: Hub, sandboxes: Sandboxes) -> None:
    # Given a Kdniao snapshot too large to park inline (many traces), for an unclaimed number
    box = sandboxes.kdniao
    tracking_number = number(Provider.KDNIAO, 7)
    shipment_id = hub.shipment(Provider.KDNIAO, Carrier.ZTO, tracking_number, claim=False)
    stages = (Stage.PICKED_UP, *([Stage.IN_TRANSIT] * 40))
    pushes = lifecycle_pushes(box, Carrier.ZTO, tracking_number, stages)
    send_all(box, pushes[-1:])
    hub.normalize()
    # When the claim appears and the next push arrives (no explicit replay: the opportunistic re-check)
    hub.claim(shipment_id, Carrier.ZTO, tracking_number)
    parcel = box.parcels[tracking_number]
    box.add_scan(parcel, Stage.ARRIVED_DEST_CITY)
    send_all(box, box.build_push([(parcel, list(parcel.scans))]))
    hub.normalize()
    # Then everything is in the timeline once
    assert len(hub.store.list_events(shipment_id)) == len(stages) + 1
    assert hub.store.get(shipment_id).status is Status.ARRIVED_AT_DESTINATION_CITY


def test_the_poller_queries_due_shipments_and_feeds_the_same_queue(hub: Hub, sandboxes: Sandboxes) -> None:
    # Given a Kdniao shipment due for a poll whose scans the sandbox knows but never pushed
    box = sandboxes.kdniao
    tracking_number = number(Provider.KDNIAO, 8)
    shipment_id = hub.shipment(Provider.KDNIAO, Carrier.ZTO, tracking_number)
    parcel = box.track(SandboxParcel(carrier="ZTO", tracking_number=tracking_number, order_id="O8", subscribed=True))
    for stage in HAPPY[:3]:
        box.add_scan(parcel, stage)
    from datetime import UTC, datetime, timedelta

    hub.store.set_poll_due(shipment_id, datetime.now(UTC) - timedelta(minutes=5))
    # When the scheduled poller runs, then the normalizer
    summary = poller_handler({"source": "aws.scheduler"}, LambdaContext("tracking-poller"))
    hub.normalize()
    # Then the provider was queried once (over HTTP), the scans were ingested, and the poll moved forward
    assert summary["polled"] == 1
    assert summary["events"] == 3
    assert [r["operation"] for r in box.request_log].count("query") == 1
    assert hub.store.get(shipment_id).status is Status.ARRIVED_AT_DESTINATION_CITY
    assert {e.source.value for e in hub.store.list_events(shipment_id)} == {"poll"}
    assert hub.store.query_due_polls(datetime.now(UTC)) == []


def test_requests_per_tracking_update_for_a_ten_update_lifecycle(
    hub: Hub, sandboxes: Sandboxes, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SF shipment (increments) and a botocore hook counting every AWS call
    box = sandboxes.sf
    tracking_number = number(Provider.SF, 9)
    hub.shipment(Provider.SF, Carrier.SF, tracking_number)
    stages = (
        Stage.PICKED_UP,
        Stage.IN_TRANSIT,
        Stage.IN_TRANSIT,
        Stage.IN_TRANSIT,
        Stage.ARRIVED_DEST_CITY,
        Stage.ARRIVED_DEST_CITY,
        Stage.OUT_FOR_DELIVERY,
        Stage.DELIVERY_FAILED,
        Stage.OUT_FOR_DELIVERY,
        Stage.DELIVERED,
    )
    pushes = lifecycle_pushes(box, Carrier.SF, tracking_number, stages)
    counts: collections.Counter[str] = collections.Counter()

    def count(event_name: str, **_: Any) -> None:
        service, _, operation = event_name.removeprefix("before-call.").partition(".")
        counts[f"{service}.{operation}"] += 1

    boto3.DEFAULT_SESSION or boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call", count)
    from .conftest import reset_caches

    reset_caches()  # clients built after the hook is registered
    try:
        # When the ten updates are pushed one by one, each normalized in its own batch
        for push in pushes:
            assert box.send(push) == 200
            hub.normalize(batch_size=10)
    finally:
        session.events.unregister("before-call", count)
    # Then the per-update cost is small and bounded (reported for the cost model)
    hub_calls = {k: v for k, v in counts.items() if not k.startswith("sqs.ReceiveMessage") and "DeleteMessage" not in k}
    per_update = sum(hub_calls.values()) / len(stages)
    with capsys.disabled():
        print(f"\nAWS requests for a {len(stages)}-update SF lifecycle: {dict(sorted(hub_calls.items()))}")
        print(f"per tracking update: {per_update:.1f} (+1 SQS receive and 1 delete by the event source mapping)")
    assert counts["sqs.SendMessage"] == len(stages)
    assert counts["s3.PutObject"] == len(stages)
    assert counts["dynamodb.GetItem"] == 1  # the destination province once (this claim carries no facts)
    # one read of the batch's claims each, and the lane cells once (the three milestones come within a minute)
    assert counts["dynamodb.BatchGetItem"] == len(stages) + 1
    assert counts["dynamodb.Query"] == 0  # no look for parked pushes: nothing was parked
    assert per_update <= 8


@pytest.mark.parametrize("provider", [Provider.KDNIAO, Provider.SF, Provider.KUAIDI100], ids=lambda p: p.value)
def test_webhook_ack_latency_in_process(
    hub: Hub, sandboxes: Sandboxes, provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 200 correctly signed pushes of the provider, as API Gateway events
    from functions.carrier_webhook.handler import receive

    box = sandboxes.of(provider)
    carrier = {Provider.KDNIAO: Carrier.ZTO, Provider.SF: Carrier.SF, Provider.KUAIDI100: Carrier.YTO}[provider]
    events = []
    for n in range(200):
        tracking_number = number(provider, 1000 + n)
        push = lifecycle_pushes(box, carrier, tracking_number, (Stage.PICKED_UP,))[0]
        path = urllib.parse.urlsplit((box.webhook_url or "") + push.path_suffix).path
        events.append(WebhookBridge.event(path, {"Content-Type": push.content_type}, push.body))
    receive(events[0])  # warm: plugin built, secret fetched, client created
    # When each is handled in-process (verify + one SendMessage to moto SQS + the reply)
    timings = []
    for event in events:
        start = time.perf_counter()
        response = receive(event)
        timings.append(time.perf_counter() - start)
        assert response["statusCode"] == 200
    timings.sort()
    p50, p95 = timings[len(timings) // 2], timings[int(len(timings) * 0.95)]
    with capsys.disabled():
        figures = f"p50 {p50 * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"
        print(f"\nwebhook ACK latency {provider.value}: {figures} (200 pushes, moto SQS)")
    # Then every push was acknowledged well within a carrier's timeout
    assert hub.queued() == 201
    assert p95 < 0.5


@pytest.mark.parametrize("every", [1, 2], ids=["every-fold-transaction", "every-other-fold-transaction"])
def test_fold_transactions_cancelled_for_a_conflict_fall_back_to_two_writes_and_lose_nothing(
    hub: Hub, sandboxes: Sandboxes, every: int
) -> None:
    # Given two ZTO parcels whose pushes come shuffled with duplicates, and DynamoDB cancelling fold
    # transactions for a conflicting transaction on the same items
    box = sandboxes.kdniao
    numbers = [number(Provider.KDNIAO, 40), number(Provider.KDNIAO, 41)]
    shipments = [hub.shipment(Provider.KDNIAO, Carrier.ZTO, n) for n in numbers]
    pushes = [p for n in numbers for p in lifecycle_pushes(box, Carrier.ZTO, n, HAPPY)]
    rng = random.Random(21)
    pushes += [p for p in pushes if rng.random() < 0.3]
    rng.shuffle(pushes)
    conflicts = TransactionConflicts.every(every)
    boto3.DEFAULT_SESSION or boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    conflicts.register(session.events)
    from .conftest import reset_caches

    reset_caches()  # clients built after the hook is registered
    responses: list[dict[str, Any]] = []
    try:
        # When they are normalized in batches of three
        for start in range(0, len(pushes), 3):
            send_all(box, pushes[start : start + 3])
            responses += hub.normalize(batch_size=3)
    finally:
        conflicts.unregister(session.events)
        reset_caches()
    # Then transactions were cancelled, and yet every scan is stored once and both parcels are delivered
    assert conflicts.cancelled >= 1
    assert conflicts.cancelled == conflicts.sent // every
    # (each in the batch that carried it: a cancelled fold falls back to its two writes, no message failed)
    assert [r for r in responses if r.get("batchItemFailures")] == []
    for shipment_id in shipments:
        assert [e.status for e in hub.store.list_events(shipment_id)] == [
            Status.DELIVERED,
            Status.OUT_FOR_DELIVERY,
            Status.ARRIVED_AT_DESTINATION_CITY,
            Status.IN_TRANSIT,
            Status.PICKED_UP,
        ]
        assert hub.store.get(shipment_id).status is Status.DELIVERED
    # And each delivery is announced once, every status change once, nothing left queued or dead-lettered
    published = hub.published()
    delivered = [e["detail"]["shipment_id"] for e in published if e["detail-type"] == "ShipmentDelivered"]
    assert sorted(delivered) == sorted(shipments)
    changes = [
        (e["detail"]["shipment_id"], e["detail"]["new_status"])
        for e in published
        if e["detail-type"] == "ShipmentStatusChanged"
    ]
    assert len(changes) == len(set(changes))
    assert hub.queued() == 0
