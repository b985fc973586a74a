"""The ingest use case (parcelhub.app.ingest) over the in-memory store.

Real plugins parse real-shaped pushes (REFERENCE fixtures); poll envelopes carry canonical events. The
events asserted are those the outbox relay derives from the store's committed changes.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parcelhub.adapters.s3 import gunzip_lines, gzip_lines
from parcelhub.app.envelopes import (
    PollEnvelope,
    PushEnvelope,
    batch_id,
    parse_envelope,
    poll_envelope_json,
    raw_key,
)
from parcelhub.app.ingest import BatchResult, InboundMessage, Ingestor
from parcelhub.carriers.base import ProviderPlugin
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import data_sign
from parcelhub.config import HubConfig, PollerConfig
from parcelhub.domain.models import (
    CHINA_TZ,
    Carrier,
    EventSource,
    Item,
    Money,
    Parcel,
    Provider,
    Shipment,
    TrackingEvent,
    Waybill,
)
from parcelhub.domain.policy import StallRules
from parcelhub.domain.stall import StallRule
from parcelhub.domain.status import Status, SubStatus, TrackingState
from parcelhub.events import (
    ShipmentDelivered,
    ShipmentException,
    ShipmentStatusChanged,
    StallResolved,
)
from parcelhub.ports.errors import StoreUnavailable
from parcelhub.ports.store import ClaimFacts, StatusChange, TrackingClaim
from tests.fakes.relay import Announced
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KDNIAO_KEY = "00000000-1111-2222-3333-444444444444"
NOW = datetime(2024, 5, 2, 2, 0, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=CHINA_TZ)

LIFECYCLE: tuple[tuple[Status, SubStatus, str, str], ...] = (
    (Status.PICKED_UP, SubStatus.NONE, "1", "【杭州市】快件已揽收"),
    (Status.IN_TRANSIT, SubStatus.NONE, "2", "【杭州市】快件已发往 上海转运中心"),
    (Status.ARRIVED_AT_DESTINATION_CITY, SubStatus.NONE, "201", "【上海市】快件已到达 上海转运中心"),
    (Status.OUT_FOR_DELIVERY, SubStatus.NONE, "202", "【上海市】快递员正在派件"),
    (Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT, "301", "【上海市】快件已签收，签收人：本人"),
)


class MemoryArchive:
    """An in-memory RawArchive (the S3 adapter is exercised in the integration tests)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put_lines(self, key: str, lines: Sequence[str]) -> None:
        self.puts += 1
        self.objects[key] = gzip_lines(lines)

    def get_lines(self, key: str) -> list[str]:
        return gunzip_lines(self.objects[key])


class Metrics:
    def __init__(self) -> None:
        self.seen: list[tuple[str, float, dict[str, str]]] = []

    def __call__(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
        self.seen.append((name, value, dimensions))

    def total(self, name: str) -> float:
        return sum(value for metric, value, _ in self.seen if metric == name)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def kdniao_plugin() -> KdniaoPlugin:
    return KdniaoPlugin(KdniaoSettings(ebusiness_id="1234567", app_key=KDNIAO_KEY))  # type: ignore[arg-type]


class World:
    """A hub on in-memory ports."""

    def __init__(self, config: HubConfig | None = None, store: InMemoryShipmentStore | None = None) -> None:
        self.store = store or InMemoryShipmentStore()
        self.publisher = Announced(self.store, config)
        self.archive = MemoryArchive()
        self.metrics = Metrics()
        self.clock = Clock()
        plugins: dict[Provider, ProviderPlugin] = {Provider.KDNIAO: kdniao_plugin()}
        self.ingestor = Ingestor(
            store=self.store,
            archive=self.archive,
            plugins=plugins.__getitem__,
            config=config or HubConfig(),
            clock=self.clock,
            metric=self.metrics,
        )
        self._seq = 0
        self.sent: list[InboundMessage] = []

    def shipment(
        self,
        tracking_number: str,
        carrier: Carrier = Carrier.ZTO,
        *,
        province: str = "上海市",
        claim: bool = True,
    ) -> str:
        self._seq += 1
        shipment_id = f"shp-{self._seq:04d}"
        self.store.create(
            Shipment(
                shipment_id=shipment_id,
                order_id=f"ORD-{self._seq:04d}",
                declared_value=Money(amount=Decimal("99.00")),
                parcels=[Parcel(weight_kg=1.2)],
                items=[Item(name="T恤", quantity=1)],
                receiver_masked={"name": "张*", "phone": "138****0000"},
                origin_province="浙江省",
                origin_city="杭州市",
                destination_province=province,
                destination_city="上海市",
                created_at=NOW - timedelta(days=2),
                updated_at=NOW - timedelta(days=2),
            )
        )
        waybill = Waybill(provider=Provider.KDNIAO, carrier=carrier, tracking_number=tracking_number)
        self.store.save_waybill(shipment_id, waybill, [], NOW - timedelta(days=2))
        if claim:
            self.claim(shipment_id, tracking_number, carrier)
        return shipment_id

    def claim(self, shipment_id: str, tracking_number: str, carrier: Carrier = Carrier.ZTO) -> None:
        order_id = self.store.get(shipment_id).order_id
        self.store.claim_tracking(carrier.value, tracking_number, shipment_id, order_id)

    def ingest(self, bodies: Sequence[str], receive_count: int = 1) -> BatchResult:
        self.sent = [InboundMessage(f"m-{self._seq}-{i}", body, receive_count) for i, body in enumerate(bodies)]
        self._seq += 1
        return self.ingestor.process_batch(self.sent)


def lifecycle_events(
    tracking_number: str, stages: int = len(LIFECYCLE), carrier: Carrier = Carrier.ZTO
) -> list[TrackingEvent]:
    return [
        TrackingEvent(
            carrier=carrier,
            provider=Provider.KDNIAO,
            tracking_number=tracking_number,
            occurred_at=T0 + timedelta(hours=6 * index),
            status=status,
            sub_status=sub,
            raw_code=code,
            raw_text=text,
            location="上海市" if index >= 2 else "杭州市",
            source=EventSource.POLL,
        )
        for index, (status, sub, code, text) in enumerate(LIFECYCLE[:stages])
    ]


def poll_body(events: Sequence[TrackingEvent]) -> str:
    return poll_envelope_json(Provider.KDNIAO, events, NOW)


def timeline(world: World, shipment_id: str) -> list[tuple[str, str, str, str]]:
    return [
        (e.occurred_at.isoformat(), e.status.value, e.raw_code, e.raw_text)
        for e in world.store.list_events(shipment_id)
    ]


# ------------------------------------------------------------------------------------------ envelopes


def test_envelopes_round_trip_and_the_push_envelope_is_read_as_written_by_the_webhook() -> None:
    # Given a webhook envelope without a "kind" (the webhook writes exactly these keys) and a poll envelope
    from functions.carrier_webhook.handler import envelope_json

    push = envelope_json(Provider.SF, b'{"Body":{}}', "application/json", {"token": "t" * 20}, NOW)
    poll = poll_body(lifecycle_events("73100000000001", 2))
    # When parsed
    read_push, read_poll = parse_envelope(push), parse_envelope(poll)
    # Then each becomes its model, the raw body byte for byte
    assert isinstance(read_push, PushEnvelope)
    assert read_push.request().body == b'{"Body":{}}'
    assert read_push.request().header("content-type") == "application/json"
    assert read_push.request().path_params == {"token": "t" * 20}
    assert isinstance(read_poll, PollEnvelope)
    assert [e.content_hash for e in read_poll.events] == [e.content_hash for e in lifecycle_events("73100000000001", 2)]


def test_archive_key_is_per_day_and_batch_and_stable_for_the_same_messages() -> None:
    assert raw_key(NOW, "abc") == "raw/2024/05/02/abc.jsonl.gz"
    assert batch_id(["b", "a"]) == batch_id(["a", "b"]) != batch_id(["a"])


# ------------------------------------------------------------------------------------------ pushes


def kdniao_fixture_body(name: str) -> str:
    form = json.loads((FIXTURES / "kdniao" / "pushes" / name).read_text(encoding="utf-8"))
    raw = urllib.parse.urlencode(form).encode("utf-8")
    return json.dumps(
        {
            "provider": "kdniao",
            "received_at": NOW.isoformat(),
            "content_type": "application/x-www-form-urlencoded;charset=utf-8",
            "body_b64": base64.b64encode(raw).decode("ascii"),
            "path_params": {},
        }
    )


def test_a_signed_kdniao_push_is_archived_once_deduped_and_moves_the_status() -> None:
    # Given a shipment claiming the tracking number of REFERENCE's 102 push fixture
    world = World()
    shipment_id = world.shipment("73100000000001")
    body = kdniao_fixture_body("102_reference.json")
    # When the push arrives twice in one batch and once more in a later batch
    first = world.ingest([body, body])
    second = world.ingest([body])
    # Then one archive object per batch, each message on its own line
    assert world.archive.puts == 2
    assert len(world.archive.get_lines(first.archive_key)) == 2
    # And the traces were written once, the duplicates only counted
    events = world.store.list_events(shipment_id)
    assert len(events) == first.events_new
    assert second.events_new == 0
    assert world.metrics.total("TrackingEventsDuplicate") == 2 * len(events)
    # And the status is the newest trace's, with exactly one status change published
    shipment = world.store.get(shipment_id)
    assert shipment.status is Status.OUT_FOR_DELIVERY
    assert shipment.last_event_text == max(events, key=lambda e: e.occurred_at).raw_text
    changed = world.publisher.of_type(ShipmentStatusChanged)
    assert len(changed) == 1
    assert (changed[0].old_status, changed[0].new_status) == (Status.WAYBILL_CREATED, Status.OUT_FOR_DELIVERY)
    assert changed[0].order_id == shipment.order_id
    assert changed[0].carrier is Carrier.ZTO
    assert changed[0].provider is Provider.KDNIAO


def test_a_claim_carrying_its_shipments_facts_is_ingested_without_reading_the_shipment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two parcels on the same push fixture: one claimed as the waybill step claims (with its shipment's
    # lane, service and creation time), one claimed without them (a claim written before they were kept)
    outcomes = []
    for with_facts, number in ((True, "73100000000001"), (False, "73100000000001")):
        world = World()
        shipment_id = world.shipment(number, claim=False)
        shipment = world.store.get(shipment_id)
        facts = ClaimFacts.of(shipment) if with_facts else None
        world.store.claim_tracking("ZTO", number, shipment_id, shipment.order_id, facts=facts)
        reads: list[str] = []
        get = world.store.get
        monkeypatch.setattr(world.store, "get", lambda sid, _get=get, _reads=reads: _reads.append(sid) or _get(sid))
        # When its push is ingested
        world.ingest([kdniao_fixture_body("102_reference.json")])
        stored = get(shipment_id)
        stall = world.store._row(shipment_id).stall  # the stall mark the same write carried
        outcomes.append((len(reads), stored.status, stored.status_key, stall, stored.last_event_text))
    # Then with the facts on the claim no shipment was read, and the outcome is the same as with the read
    (reads_with, *with_facts_outcome), (reads_without, *without_outcome) = outcomes
    assert (reads_with, reads_without) == (0, 1)
    assert with_facts_outcome == without_outcome
    assert with_facts_outcome[0] is Status.OUT_FOR_DELIVERY


def test_a_push_with_a_wrong_signature_fails_its_message_and_nothing_is_stored() -> None:
    # Given a shipment and a push signed with the wrong key, batched with a good push
    world = World()
    shipment_id = world.shipment("73100000000001")
    bad, good = kdniao_fixture_body("102_reference_wrong_key.json"), kdniao_fixture_body("102_reference.json")
    # When ingested
    result = world.ingest([bad, good])
    # Then only the bad message is reported failed (-> DLQ after retries); the good one is applied
    assert list(result.failures) == [world.sent[0].message_id]
    assert "PushRejected" in result.failures[world.sent[0].message_id]
    assert world.store.get(shipment_id).status is Status.OUT_FOR_DELIVERY


def test_unknown_carrier_codes_are_counted_per_provider_and_code() -> None:
    world = World()
    world.shipment("73100000000001")
    world.ingest([kdniao_fixture_body("102_unknown_code.json")])
    unmapped = [dims for name, _, dims in world.metrics.seen if name == "UnmappedCarrierCode"]
    assert unmapped
    assert all(d["provider"] == "kdniao" and d["code"] for d in unmapped)


def test_a_message_that_is_not_an_envelope_fails_alone() -> None:
    world = World()
    shipment_id = world.shipment("73100000000001")
    result = world.ingest(["not json", poll_body(lifecycle_events("73100000000001", 2))])
    assert list(result.failures) == [world.sent[0].message_id]
    assert world.store.get(shipment_id).status is Status.IN_TRANSIT


# ------------------------------------------------------------------------------------------ order independence


def test_a_late_in_transit_never_moves_a_delivered_parcel_back_but_joins_the_timeline() -> None:
    # Given a delivered parcel
    world = World()
    shipment_id = world.shipment("73100000000002")
    events = lifecycle_events("73100000000002")
    world.ingest([poll_body([events[0], events[-1]])])
    assert world.store.get(shipment_id).status is Status.DELIVERED
    world.publisher.clear()
    # When an in-transit scan arrives late (even stamped after the delivery: carrier clock skew)
    late = events[1].model_copy(update={"occurred_at": events[-1].occurred_at + timedelta(hours=1), "content_hash": ""})
    late = TrackingEvent.model_validate(late.model_dump())
    world.ingest([poll_body([late])])
    # Then the status stays DELIVERED, nothing is published, and the late event is in the timeline
    assert world.store.get(shipment_id).status is Status.DELIVERED
    assert world.publisher.events == []
    assert late.content_hash in {e.content_hash for e in world.store.list_events(shipment_id)}


def test_delivered_and_exception_changes_publish_their_own_events() -> None:
    world = World()
    shipment_id = world.shipment("73100000000003")
    events = lifecycle_events("73100000000003", 2)
    failed = TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number="73100000000003",
        occurred_at=T0 + timedelta(days=1),
        status=Status.DELIVERY_FAILED,
        sub_status=SubStatus.RECIPIENT_UNREACHABLE,
        raw_code="405",
        raw_text="派送不成功，电话 13800001111 无人接听",
    )
    world.ingest([poll_body([*events, failed])])
    exception = world.publisher.of_type(ShipmentException)
    assert [(e.shipment_id, e.new_status, e.sub_status) for e in exception] == [
        (shipment_id, Status.DELIVERY_FAILED, SubStatus.RECIPIENT_UNREACHABLE)
    ]
    assert "13800001111" not in (exception[0].description or "")  # carrier text redacted in events
    # (scanned before it is received: a scan stamped after its receive time would be flagged, issue 14)
    later = T0 + timedelta(days=1, minutes=30)
    delivered = lifecycle_events("73100000000003")[-1].model_copy(update={"occurred_at": later})
    delivered = TrackingEvent.model_validate(delivered.model_dump() | {"content_hash": ""})
    world.ingest([poll_body([delivered])])
    assert [e.shipment_id for e in world.publisher.of_type(ShipmentDelivered)] == [shipment_id]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.permutations(range(len(LIFECYCLE))),
    duplicates=st.lists(st.integers(0, len(LIFECYCLE) - 1), max_size=4),
    batch_size=st.integers(1, 4),
    snapshots=st.booleans(),
)
def test_any_order_and_duplication_gives_the_in_order_timeline_and_status(
    order: list[int], duplicates: list[int], batch_size: int, snapshots: bool
) -> None:
    # Given the same lifecycle delivered in order to one hub and shuffled + duplicated to another
    # (as increments like SF, or as growing full snapshots like Kdniao/Kuaidi100)
    def messages(sequence: Sequence[int]) -> list[str]:
        events = lifecycle_events("73100000000009")
        return [poll_body(events[: i + 1] if snapshots else [events[i]]) for i in sequence]

    in_order, shuffled = World(), World()
    a, b = in_order.shipment("73100000000009"), shuffled.shipment("73100000000009")
    for body in messages(range(len(LIFECYCLE))):
        in_order.ingest([body])
    bodies = messages([*order, *duplicates])
    # When the shuffled stream arrives in batches of any size
    for start in range(0, len(bodies), batch_size):
        shuffled.ingest(bodies[start : start + batch_size])
    # Then the timelines and the final status are identical, and the delivery is announced exactly once
    assert timeline(shuffled, b) == timeline(in_order, a)
    assert shuffled.store.get(b).status is in_order.store.get(a).status is Status.DELIVERED
    assert shuffled.store.get(b).status_key == in_order.store.get(a).status_key
    assert len(shuffled.publisher.of_type(ShipmentDelivered)) == 1
    # And no ShipmentStatusChanged ever reports a move that is not a change
    assert all(e.old_status != e.new_status for e in shuffled.publisher.of_type(ShipmentStatusChanged))


# ------------------------------------------------------------------------------------------ stall and poll index


def test_the_stall_mark_uses_the_destination_province_and_a_terminal_state_clears_both_indexes() -> None:
    # Given the default rules (in transit: 48 h; 新疆: 96 h) and a shipment to 新疆
    world = World()
    shipment_id = world.shipment("73100000000004", province="新疆维吾尔自治区")
    events = lifecycle_events("73100000000004")
    # When an in-transit scan arrives
    world.ingest([poll_body(events[:2])])
    # Then the shipment is due for a stall check 96 h after that scan, and for a poll after quiet_hours
    due = list(world.store.query_due_stalls(events[1].occurred_at + timedelta(hours=96)))
    assert [(d.shipment_id, d.rule) for d in due] == [(shipment_id, StallRule.NO_UPDATE_IN_TRANSIT.value)]
    assert not list(world.store.query_due_stalls(events[1].occurred_at + timedelta(hours=95)))
    assert [p.shipment_id for p in world.store.query_due_polls(NOW + timedelta(hours=6))] == [shipment_id]
    assert not world.store.query_due_polls(NOW + timedelta(hours=5))
    # When it is delivered
    world.ingest([poll_body(events)])
    # Then it leaves both indexes
    assert not list(world.store.query_due_stalls(NOW + timedelta(days=365)))
    assert not world.store.query_due_polls(NOW + timedelta(days=365))


def test_a_carrier_reported_timeout_is_due_at_once() -> None:
    world = World(HubConfig(stall=StallRules(time_scale=1.0), poller=PollerConfig(quiet_hours=1)))
    shipment_id = world.shipment("73100000000005")
    timeout = TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number="73100000000005",
        occurred_at=T0,
        status=Status.EXCEPTION,
        sub_status=SubStatus.CARRIER_TIMEOUT_NO_UPDATE,
        raw_code="412",
        raw_text="超时未更新",
    )
    world.ingest([poll_body([timeout])])
    due = list(world.store.query_due_stalls(T0))
    assert [(d.shipment_id, d.rule) for d in due] == [(shipment_id, StallRule.CARRIER_REPORTED_TIMEOUT.value)]


# ------------------------------------------------------------------------------------------ parked pushes


def test_a_push_before_its_claim_is_parked_and_applied_when_the_claim_appears() -> None:
    # Given a shipment whose tracking claim is not recorded yet
    world = World()
    shipment_id = world.shipment("73100000000006", claim=False)
    events = lifecycle_events("73100000000006", 3)
    # When pushes for it arrive (one small: inline; one big: by archive reference)
    small = poll_body(events[:1])
    big_events = [e.model_copy(update={"raw_text": e.raw_text + "。" + "备注" * 800}) for e in events[1:3]]
    big_events = [TrackingEvent.model_validate(e.model_dump() | {"content_hash": ""}) for e in big_events]
    big = poll_body(big_events)
    result = world.ingest([small, big])
    # Then they are parked, nothing is applied
    assert result.parked == 2
    assert world.metrics.total("PushParked") == 2
    assert world.store.list_events(shipment_id) == []
    # When the waybill workflow records the claim and replays the parked pushes
    world.claim(shipment_id, "73100000000006")
    replay = world.ingestor.apply_parked("ZTO", "73100000000006")
    # Then both are applied and the status moved
    assert replay.replayed == 2
    assert len(world.store.list_events(shipment_id)) == 3
    assert world.store.get(shipment_id).status is Status.ARRIVED_AT_DESTINATION_CITY
    assert len(world.publisher.of_type(ShipmentStatusChanged)) == 1
    # And a second replay finds nothing
    assert world.ingestor.apply_parked("ZTO", "73100000000006").replayed == 0


class WorkflowBeforePark(InMemoryShipmentStore):
    """Runs ``before`` once, right before the first park: the waybill workflow claiming the number and replaying
    its parked pushes between the normalizer's read of the claim (none yet) and its park."""

    def __init__(self) -> None:
        super().__init__()
        self.before: Callable[[], None] | None = None

    def park_push(
        self, carrier: str, tracking_number: str, payload_ref: str, received_at: datetime, expires_at: datetime
    ) -> None:
        hook, self.before = self.before, None
        if hook is not None:
            hook()
        super().park_push(carrier, tracking_number, payload_ref, received_at, expires_at)


def test_a_push_parked_while_the_workflow_claims_its_number_is_applied_at_once_not_stranded() -> None:
    # Given a shipment whose waybill workflow claims the number and replays parked pushes (none yet) exactly
    # between the normalizer's claim read and its park
    world = World(store=WorkflowBeforePark())
    shipment_id = world.shipment("73100000000007", claim=False)
    replayed: list[int] = []

    def workflow() -> None:
        world.claim(shipment_id, "73100000000007")
        replayed.append(world.ingestor.apply_parked("ZTO", "73100000000007").replayed)

    world.store.before = workflow  # type: ignore[attr-defined]
    # When the first push for it arrives (and no later push ever comes)
    result = world.ingest([poll_body(lifecycle_events("73100000000007", 1))])
    # Then the workflow's replay found nothing, the push was parked, and applied at once by the re-read claim
    assert replayed == [0]
    assert (result.parked, result.replayed) == (1, 1)
    assert [e.raw_code for e in world.store.list_events(shipment_id)] == ["1"]
    assert world.store.get(shipment_id).status is Status.PICKED_UP
    assert world.store.take_parked("ZTO", "73100000000007", now=NOW - timedelta(days=30)) == []


def test_a_batch_reads_its_claims_once_writes_its_scans_in_batches_of_25_and_queries_no_parked_pushes() -> None:
    # Given 30 claimed parcels with no scans yet
    world = World()
    numbers = [f"7310000001{n:04d}" for n in range(30)]
    shipments = [world.shipment(number) for number in numbers]
    reads = world.store.claim_reads
    # When one batch brings each its first two scans
    result = world.ingest([poll_body(lifecycle_events(number, 2)) for number in numbers])
    # Then one read of the 30 claims, the 60 scans in 3 batch writes, no query of parked pushes, and per
    # parcel one write of its scans' hashes together with its state (none of the hashes alone)
    assert world.store.claim_reads - reads == 1
    assert world.store.event_batches == 3
    assert world.store.parked_queries == 0
    assert (world.store.one_writes, world.store.hash_records) == (30, 0)
    assert (result.events_new, result.failures) == (60, {})
    assert {world.store.get(s).status for s in shipments} == {Status.IN_TRANSIT}


class CrashesOnRecord(InMemoryShipmentStore):
    """Logs the order of the timeline writes; refuses to record the hashes of one number (a crash there)."""

    def __init__(self, number: str) -> None:
        super().__init__()
        self.number = number
        self.log: list[str] = []

    def put_events(self, events: Sequence[tuple[str, TrackingEvent]]) -> None:
        self.log.append("put")
        super().put_events(events)

    def record_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        self.log.append(f"record {claim.tracking_number}")
        if claim.tracking_number == self.number:
            raise StoreUnavailable("crashed before the hash set was written", code="ServiceUnavailable")
        return super().record_events(claim, events)

    def record_and_apply_state(
        self, claim: TrackingClaim, events: Sequence[TrackingEvent], state: TrackingState, **write: Any
    ) -> tuple[list[TrackingEvent], StatusChange | None] | None:
        self.log.append(f"record {claim.tracking_number}")
        if claim.tracking_number == self.number:
            raise StoreUnavailable("crashed before the hash set was written", code="ServiceUnavailable")
        return super().record_and_apply_state(claim, events, state, **write)


def test_every_scan_item_is_written_before_any_hash_set_and_a_crash_between_reports_each_scan_new_once() -> None:
    # Given two parcels, and a store that fails while recording the hashes of the first
    store = CrashesOnRecord("73100000000021")
    world = World(store=store)
    first, second = world.shipment("73100000000021"), world.shipment("73100000000022")
    bodies = [poll_body(lifecycle_events(n, 2)) for n in ("73100000000021", "73100000000022")]
    # When one batch brings both
    result = world.ingest(bodies)
    # Then both scans' items were written first, in one write, before either hash set
    assert store.log == ["put", "record 73100000000021", "record 73100000000022"]
    assert list(result.failures) == [world.sent[0].message_id]
    assert world.store.get(second).status is Status.IN_TRANSIT
    # When the failed message is redelivered once the store works again
    store.number = ""
    again = world.ingest(bodies[:1], receive_count=2)
    # Then its scans are applied and reported new exactly once over both deliveries
    assert result.events_new + again.events_new == 4
    assert world.store.get(first).status is Status.IN_TRANSIT
    assert len(world.store.list_events(first)) == 2


def test_parked_pushes_put_back_by_a_failed_replay_are_taken_by_the_next_push() -> None:
    # Given a push parked before its claim, whose replay by the waybill workflow fails (the store refuses it)
    world = World(store=FailsOn("1"))
    shipment_id = world.shipment("73100000000009", claim=False)
    events = lifecycle_events("73100000000009", 3)
    world.ingest([poll_body(events[:1])])
    world.claim(shipment_id, "73100000000009")
    with pytest.raises(ValueError, match="item too large"):
        world.ingestor.apply_parked("ZTO", "73100000000009")
    claim = world.store.find_by_tracking("ZTO", "73100000000009")
    assert claim is not None
    assert claim.parked
    # When the store works again and the next push arrives
    world.store.code = ""  # type: ignore[attr-defined]
    world.ingest([poll_body(events[2:3])])
    # Then the parked push is in the timeline too, and the claim no longer says pushes are waiting
    assert {e.raw_code for e in world.store.list_events(shipment_id)} == {"1", "201"}
    claim = world.store.find_by_tracking("ZTO", "73100000000009")
    assert claim is not None
    assert not claim.parked


def test_a_parked_push_past_its_ttl_is_counted_as_expired_and_not_applied() -> None:
    world = World(HubConfig(parked_push_ttl_hours=1))
    shipment_id = world.shipment("73100000000008", claim=False)
    world.ingest([poll_body(lifecycle_events("73100000000008", 1))])
    world.clock.now = NOW + timedelta(hours=2)
    world.claim(shipment_id, "73100000000008")
    replay = world.ingestor.apply_parked("ZTO", "73100000000008")
    assert (replay.replayed, replay.expired) == (0, 1)
    assert world.metrics.total("PushParkedExpired") == 1
    assert world.store.list_events(shipment_id) == []


def test_a_redelivered_message_reapplies_the_state_when_its_events_are_already_stored() -> None:
    # Given events appended by a first attempt that crashed before the status update
    world = World()
    shipment_id = world.shipment("73100000000010")
    events = lifecycle_events("73100000000010", 2)
    claim = world.store.find_by_tracking("ZTO", "73100000000010")
    assert claim is not None
    world.store.append_events(claim, events)
    # When the message is delivered again (ApproximateReceiveCount 2)
    world.ingest([poll_body(events)], receive_count=2)
    # Then the status is applied
    assert world.store.get(shipment_id).status is Status.IN_TRANSIT
    # While a first delivery of already-known events applies nothing (no write, no event)
    world.publisher.clear()
    world.ingest([poll_body(events)])
    assert world.publisher.events == []


def test_a_new_event_after_an_alerted_stall_publishes_stall_resolved() -> None:
    # Given an in-transit parcel whose stall episode was alerted by the detector
    world = World()
    shipment_id = world.shipment("73100000000011")
    events = lifecycle_events("73100000000011")
    world.ingest([poll_body(events[:2])])
    due = next(iter(world.store.query_due_stalls(NOW + timedelta(days=30))))
    assert world.store.mark_stall_alerted(shipment_id, due.episode, NOW + timedelta(days=3))
    # When the parcel moves again
    world.ingest([poll_body(events[:3])])
    # Then StallResolved names the episode it closed
    resolved = world.publisher.of_type(StallResolved)
    assert [(e.shipment_id, e.episode_id) for e in resolved] == [(shipment_id, due.episode)]


# ------------------------------------------------------------------------------------------ order references


def referenced(events: list[TrackingEvent], ref: str) -> list[TrackingEvent]:
    return [TrackingEvent.model_validate(e.model_dump() | {"order_ref": ref}) for e in events]


@pytest.mark.parametrize("by", ["order_id", "shipment_id"])
def test_a_push_without_a_claim_is_matched_by_the_order_reference_it_echoes(by: str) -> None:
    # Given a shipment whose waybill is recorded but whose tracking claim is not (yet)
    world = World()
    shipment_id = world.shipment("73100000000020", claim=False)
    ref = world.store.get(shipment_id).order_id if by == "order_id" else shipment_id
    # When a push for the number arrives echoing the order reference (Kdniao CallBack, SF orderid)
    result = world.ingest([poll_body(referenced(lifecycle_events("73100000000020", 2), ref))])
    # Then it is applied to that shipment at once (not parked) and the number is claimed for it
    assert result.parked == 0
    assert world.store.get(shipment_id).status is Status.IN_TRANSIT
    claim = world.store.find_by_tracking("ZTO", "73100000000020")
    assert claim is not None
    assert claim.shipment_id == shipment_id
    assert world.metrics.total("PushMatchedByOrderRef") == 1
    # And the waybill workflow's own claim later is a no-op
    world.claim(shipment_id, "73100000000020")


def test_an_order_reference_naming_another_parcel_is_not_trusted() -> None:
    # Given a shipment whose waybill is another number (or the same number with another carrier)
    world = World()
    other = world.shipment("73100000000021", claim=False)
    # When pushes echo those shipments' references for numbers that are not theirs, or taken
    pushes = [
        poll_body(referenced(lifecycle_events("73100000000099", 1), other)),  # not its waybill
        poll_body(referenced(lifecycle_events("73100000000021", 1, Carrier.YTO), other)),  # not its carrier
        poll_body(referenced(lifecycle_events("73100000000098", 1), "no-such-order")),  # no such order
    ]
    result = world.ingest(pushes)
    # Then nothing is applied to them: the pushes are parked as before
    assert result.parked == 3
    assert world.store.list_events(other) == []
    assert world.metrics.total("PushMatchedByOrderRef") == 0


def test_codes_explained_by_another_signal_are_counted_apart_from_unmapped_ones() -> None:
    # Given a push whose last trace carries an unknown code but names its milestone in the text
    world = World()
    world.shipment("73100000000001")
    form = json.loads((FIXTURES / "kdniao" / "pushes" / "102_reference.json").read_text("utf-8"))
    data = json.loads(form["RequestData"])
    data["Data"][0]["Traces"][-1]["Action"] = "299"
    form["RequestData"] = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    form["DataSign"] = data_sign(form["RequestData"], KDNIAO_KEY)
    envelope = json.loads(kdniao_fixture_body("102_reference.json"))
    envelope["body_b64"] = base64.b64encode(urllib.parse.urlencode(form).encode()).decode()
    # When ingested
    world.ingest([json.dumps(envelope)])
    # Then the code is counted as inferred (the tables can catch up), not as unmapped
    assert [dims for name, _, dims in world.metrics.seen if name == "InferredCarrierCode"] == [
        {"provider": "kdniao", "code": "299"}
    ]
    assert world.metrics.total("UnmappedCarrierCode") == 0


# ------------------------------------------------------------------------------------------ isolation (issue 14)


class RaisingPlugin:
    """A provider whose parser raises what hostile pushes made real parsers raise."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def parse_push(self, request: Any) -> Any:
        raise self.error


def sf_push_body(body: bytes = b'{"Body": null}') -> str:
    return json.dumps(
        {
            "provider": "sf",
            "received_at": NOW.isoformat(),
            "content_type": "application/json",
            "body_b64": base64.b64encode(body).decode("ascii"),
            "path_params": {"token": "t" * 20},
        }
    )


@pytest.mark.parametrize(
    "error",
    [OverflowError("date value out of range"), RecursionError("maximum recursion depth"), TypeError("NoneType")],
    ids=["year-0001", "deep-nesting", "null-body"],
)
def test_whatever_one_message_raises_only_that_message_fails_with_its_reason(error: BaseException) -> None:
    # Given a batch with a valid poll result and a signed push whose parser raises an unexpected error
    world = World()
    shipment_id = world.shipment("73100000000001")
    world.ingestor.plugins = {Provider.KDNIAO: kdniao_plugin(), Provider.SF: RaisingPlugin(error)}.__getitem__  # type: ignore[assignment,dict-item]
    logged: list[tuple[str, dict[str, Any]]] = []
    world.ingestor._log = type("Log", (), {"warning": lambda self, msg, extra: logged.append((msg, extra))})()
    # When the batch is ingested
    result = world.ingest([poll_body(lifecycle_events("73100000000001", 2)), sf_push_body()])
    # Then only the push fails (reported for the DLQ), the valid message is applied
    assert list(result.failures) == [world.sent[1].message_id]
    assert world.store.get(shipment_id).status is Status.IN_TRANSIT
    # And the reason is one structured log line and a metric
    assert logged == [
        (
            "tracking message failed",
            {
                "message_id": world.sent[1].message_id,
                "receive_count": 1,
                "stage": "read",
                "error": type(error).__name__,
                "reason": f"{type(error).__name__}: {error}",
            },
        )
    ]
    assert world.metrics.total("TrackingMessageFailed") == 1


class FailsOn(InMemoryShipmentStore):
    """A store that refuses events with a raw code (as DynamoDB refuses an item it cannot take)."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def put_events(self, events: Sequence[tuple[str, TrackingEvent]]) -> None:
        if any(e.raw_code == self.code for _, e in events):
            raise ValueError("item too large")  # the whole BatchWriteItem is refused
        super().put_events(events)


def test_a_valid_message_sharing_a_tracking_number_with_a_hostile_one_is_applied_on_first_delivery() -> None:
    # Given a valid scan and a scan the store refuses, for the same parcel, in two messages of one batch
    world = World()
    world.store = world.ingestor.store = FailsOn("BOOM")  # type: ignore[assignment]
    shipment_id = world.shipment("73100000000001")
    valid = lifecycle_events("73100000000001", 1)
    hostile = valid[0].model_copy(update={"raw_code": "BOOM", "content_hash": "", "occurred_at": T0})
    hostile = TrackingEvent.model_validate(hostile.model_dump())
    result = world.ingest([poll_body(valid), poll_body([hostile])])
    # Then only the hostile message fails; the valid one is applied now
    assert list(result.failures) == [world.sent[1].message_id]
    assert world.store.get(shipment_id).status is Status.PICKED_UP
    assert [e.raw_code for e in world.store.list_events(shipment_id)] == ["1"]


# ------------------------------------------------------------------------------------------ scan times (issue 14)


def test_implausible_scan_times_are_kept_flagged_and_never_decide_the_status_or_postpone_a_stall() -> None:
    world = World(HubConfig(stall=StallRules(in_transit_hours=48)))
    shipment_id = world.shipment("73100000000001")
    created = world.store.get(shipment_id).created_at
    picked = lifecycle_events("73100000000001", 2)  # picked up, in transit (before NOW)
    future = picked[1].model_copy(
        update={"occurred_at": NOW + timedelta(days=3), "content_hash": "", "raw_text": "未来"}
    )
    ancient = picked[1].model_copy(
        update={"occurred_at": created - timedelta(days=30), "content_hash": "", "raw_text": "远古"}
    )
    delivered_future = lifecycle_events("73100000000001")[-1].model_copy(
        update={"occurred_at": NOW + timedelta(hours=1), "content_hash": ""}
    )
    scans = [TrackingEvent.model_validate(e.model_dump()) for e in (future, ancient, delivered_future)]
    world.ingest([poll_body([*picked, *scans])])
    # Then every scan is in the timeline, the implausible ones flagged
    stored = {e.raw_text: e.time_flag for e in world.store.list_events(shipment_id)}
    assert stored["未来"] == "future"
    assert stored["远古"] == "before_shipment"
    assert stored[delivered_future.raw_text] == "future"
    assert stored[picked[1].raw_text] is None
    # And the status and the stall due time come from the plausible scans only
    shipment = world.store.get(shipment_id)
    assert (shipment.status, shipment.last_event_at) == (Status.IN_TRANSIT, picked[1].occurred_at)
    due = list(world.store.query_due_stalls(picked[1].occurred_at + timedelta(hours=49)))
    assert [d.shipment_id for d in due] == [shipment_id]
    assert world.metrics.total("ScanTimeFlagged") == 3


# ------------------------------------------------------------------------------------------ replay (issue 14)


def test_a_replay_after_a_mapping_fix_corrects_the_status_even_downwards_and_a_second_replay_changes_nothing() -> None:
    from parcelhub.app.envelopes import replay_body
    from parcelhub.config import CodeOverride

    # Given parcels whose newest scan carried codes the mapping got wrong: 999 (unknown: IN_TRANSIT/UNMAPPED,
    # really signed for) and 998 (mapped DELIVERED, really still in transit)
    world = World()
    first, second = world.shipment("73100000000001"), world.shipment("73100000000002")
    picked_a, picked_b = lifecycle_events("73100000000001", 1)[0], lifecycle_events("73100000000002", 1)[0]
    unknown = TrackingEvent.model_validate(
        picked_a.model_dump() | {"raw_code": "999", "raw_text": "新代码", "occurred_at": T0 + timedelta(hours=5),
                                 "status": Status.IN_TRANSIT, "sub_status": SubStatus.UNMAPPED, "content_hash": ""}
    )  # fmt: skip
    wrong = TrackingEvent.model_validate(
        picked_b.model_dump() | {"raw_code": "998", "raw_text": "错映射", "occurred_at": T0 + timedelta(hours=5),
                                 "status": Status.DELIVERED, "sub_status": SubStatus.NONE, "content_hash": ""}
    )  # fmt: skip
    bodies = [poll_body([picked_a, unknown]), poll_body([picked_b, wrong])]
    world.ingest(bodies)
    assert world.store.get(first).status is Status.IN_TRANSIT
    assert world.store.get(second).status is Status.DELIVERED
    # When the mapping is fixed and the archived messages are replayed
    fixed = HubConfig(
        code_overrides={
            Provider.KDNIAO: {
                "999": CodeOverride(status=Status.DELIVERED, sub_status=SubStatus.SIGNED_BY_RECIPIENT),
                "998": CodeOverride(status=Status.IN_TRANSIT),
            }
        }
    )
    world.ingestor.config = fixed
    world.publisher.clear()
    replays = [body for body in (replay_body(b) for b in bodies) if body is not None]
    result = world.ingest(replays)
    # Then both parcels are corrected (one upwards, one downwards), the stored scans remapped, and announced
    assert result.corrected == 2
    assert world.store.get(first).status is Status.DELIVERED
    assert world.store.get(second).status is Status.IN_TRANSIT
    assert {e.raw_code: e.status for e in world.store.list_events(second)}["998"] is Status.IN_TRANSIT
    assert sorted((e.shipment_id, e.new_status) for e in world.publisher.of_type(ShipmentStatusChanged)) == [
        (first, Status.DELIVERED),
        (second, Status.IN_TRANSIT),
    ]
    # When replayed a second time
    world.publisher.clear()
    changes = len(world.store.changes)
    again = world.ingest(replays)
    # Then nothing changes and nothing is announced
    assert (again.corrected, again.failures) == (0, {})
    assert len(world.store.changes) == changes
    assert world.publisher.events == []


def test_scan_texts_are_stored_with_phones_and_names_masked_and_redelivery_is_still_a_duplicate() -> None:
    # Given a parcel, and a delivery scan naming the signer and the courier's phone
    world = World()
    shipment_id = world.shipment("73100000000077")
    signed = lifecycle_events("73100000000077")[-1].model_copy(
        update={"raw_text": "【上海市】已签收，签收人：张三，派件员电话13800138000", "content_hash": ""}
    )
    signed = TrackingEvent.model_validate(signed.model_dump())
    # When it is pushed, and pushed again
    world.ingest([poll_body([signed])])
    world.ingest([poll_body([signed])])
    # Then the stored scan keeps the place and the action, but no name or phone in clear, and it is stored once
    (stored,) = world.store.list_events(shipment_id)
    assert "13800138000" not in stored.raw_text
    assert "张三" not in stored.raw_text
    assert stored.raw_text.startswith("【上海市】已签收")
    assert stored.content_hash == signed.content_hash
    assert world.store.get(shipment_id).status is Status.DELIVERED
