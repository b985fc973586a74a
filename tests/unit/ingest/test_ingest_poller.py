"""The poller (parcelhub.app.poller): token buckets, the poll index sweep, one ingest path."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.app.envelopes import PollEnvelope, parse_envelope
from parcelhub.app.poller import Poller, TokenBucket
from parcelhub.carriers.base import Capability, CarrierUnavailable, ParsedPush
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
from parcelhub.domain.status import Status
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 2, 2, 0, tzinfo=UTC)


class VirtualTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(0.5, 50), calls=st.integers(1, 200))
def test_a_token_bucket_never_exceeds_its_rate(rate: float, calls: int) -> None:
    # Given a bucket of `rate` per second (burst = max(1, rate)) on a virtual clock
    time = VirtualTime()
    bucket = TokenBucket(rate, clock=time.monotonic, sleep=time.sleep)
    # When `calls` tokens are taken back to back
    for _ in range(calls):
        bucket.acquire()
    # Then the elapsed time is at least what the rate allows beyond the initial burst
    burst = max(1.0, rate)
    assert time.t >= max(0.0, (calls - burst) / rate) - 1e-6
    assert time.t <= max(0.0, (calls - burst) / rate) + 1.0 / rate + 1e-6


class ScriptedProvider:
    """A provider port answering queries from a script (the real plugins run in the integration tests)."""

    name = Provider.KDNIAO
    capabilities = frozenset({Capability.ISSUE_WAYBILLS, Capability.PUSH_TRACKING})

    def __init__(self, answers: dict[str, list[TrackingEvent]], down: Sequence[str] = ()) -> None:
        self.answers = answers
        self.down = set(down)
        self.queries: list[str] = []

    def query_tracking(self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None) -> ParsedPush:
        self.queries.append(tracking_number)
        if tracking_number in self.down:
            raise CarrierUnavailable("kdniao", "timeout")
        return ParsedPush(events=list(self.answers.get(tracking_number, [])))


class Sink:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: Sequence[str]) -> None:
        self.bodies.extend(bodies)


def shipment(store: InMemoryShipmentStore, n: int) -> tuple[str, str]:
    shipment_id, number = f"shp-{n:04d}", f"7310000000{n:04d}"
    store.create(
        Shipment(
            shipment_id=shipment_id,
            order_id=f"ORD-{n:04d}",
            declared_value=Money(amount=Decimal("10.00")),
            parcels=[Parcel(weight_kg=1)],
            items=[Item(name="杯子", quantity=1)],
            receiver_masked={"name": "李*"},
            origin_province="浙江省",
            origin_city="杭州市",
            destination_province="上海市",
            destination_city="上海市",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    store.save_waybill(
        shipment_id, Waybill(provider=Provider.KDNIAO, carrier=Carrier.ZTO, tracking_number=number), [], NOW
    )
    return shipment_id, number


def scan(number: str) -> TrackingEvent:
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number=number,
        occurred_at=datetime(2024, 5, 1, 12, tzinfo=CHINA_TZ),
        status=Status.IN_TRANSIT,
        raw_code="2",
        raw_text="【杭州市】快件已发往 上海转运中心",
        source=EventSource.PUSH,
    )


def test_due_shipments_are_polled_in_batches_enqueued_as_poll_envelopes_and_pushed_forward() -> None:
    # Given 7 shipments of which 5 are due for a poll (2 due tomorrow), batch size 2, quiet 6 h
    store = InMemoryShipmentStore()
    ids = [shipment(store, n) for n in range(7)]
    for index, (shipment_id, _) in enumerate(ids):
        store.set_poll_due(shipment_id, NOW - timedelta(minutes=1) if index < 5 else NOW + timedelta(days=1))
    provider = ScriptedProvider({number: [scan(number)] for _, number in ids[:3]}, down=[ids[3][1]])
    sink, time = Sink(), VirtualTime()
    config = HubConfig(poller=PollerConfig(batch_size=2, quiet_hours=6, rate_limits={Provider.KDNIAO: 2.0}))
    poller = Poller(
        store=store,
        plugins=lambda _: provider,  # type: ignore[arg-type,return-value]
        sink=sink,
        config=config,
        clock=lambda: NOW,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    # When the poller runs
    report = poller.run()
    # Then exactly the 5 due shipments were queried, in 3 batches, at <= 2 queries per second
    assert sorted(provider.queries) == sorted(number for _, number in ids[:5])
    assert report.batches == 3
    assert time.t >= (5 - 2) / 2.0
    # And the answers went to the queue as poll envelopes with canonical events (source = poll)
    envelopes = [parse_envelope(body) for body in sink.bodies]
    assert all(isinstance(e, PollEnvelope) for e in envelopes)
    assert sorted(e.events[0].tracking_number for e in envelopes if isinstance(e, PollEnvelope)) == sorted(
        number for _, number in ids[:3]
    )
    assert all(ev.source is EventSource.POLL for e in envelopes if isinstance(e, PollEnvelope) for ev in e.events)
    # And the failure is reported, and every polled shipment's due time moved forward by quiet_hours
    assert list(report.failures) == [ids[3][0]]
    assert store.query_due_polls(NOW) == []
    assert sorted(p.shipment_id for p in store.query_due_polls(NOW + timedelta(hours=6))) == sorted(
        i for i, _ in ids[:5]
    )


class UnmappedProvider(ScriptedProvider):
    """Answers like ``ScriptedProvider`` and reports one code it cannot map, as a plugin's parser does."""

    def query_tracking(self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None) -> ParsedPush:
        answer = super().query_tracking(carrier, tracking_number, phone_last4)
        return ParsedPush(events=answer.events, unmapped_codes=["499"])


def test_polled_unknown_codes_are_counted_like_pushed_ones() -> None:
    # Given one due shipment whose provider answers with a code it cannot map
    store = InMemoryShipmentStore()
    shipment_id, number = shipment(store, 1)
    store.set_poll_due(shipment_id, NOW - timedelta(minutes=1))
    metrics: list[tuple[str, float, str, dict[str, str]]] = []

    def metric(name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
        metrics.append((name, value, unit, dimensions))

    poller = Poller(
        store=store,
        plugins=lambda _: UnmappedProvider({number: [scan(number)]}),  # type: ignore[arg-type,return-value]
        sink=Sink(),
        config=HubConfig(poller=PollerConfig(rate_limits={Provider.KDNIAO: 100.0})),
        clock=lambda: NOW,
        metric=metric,
    )
    # When the poller runs
    report = poller.run()
    # Then the events are enqueued and the code is counted with the ingest path's metric and dimensions
    assert report.events == 1
    assert metrics == [("UnmappedCarrierCode", 1, "Count", {"provider": "kdniao", "code": "499"})]


class DyingSink(Sink):
    """A queue that takes ``accepts`` messages, then the invocation dies (the Lambda timed out)."""

    def __init__(self, accepts: int) -> None:
        super().__init__()
        self.accepts = accepts

    def send(self, bodies: Sequence[str]) -> None:
        if len(self.bodies) >= self.accepts:
            raise TimeoutError("the invocation was killed")
        super().send(bodies)


def poller_for(store: InMemoryShipmentStore, provider: ScriptedProvider, sink: Sink, clock: VirtualTime) -> Poller:
    return Poller(
        store=store,
        plugins=lambda _: provider,  # type: ignore[arg-type,return-value]
        sink=sink,
        config=HubConfig(poller=PollerConfig(batch_size=50, quiet_hours=6, rate_limits={Provider.KDNIAO: 1.0})),
        clock=lambda: NOW,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )


def test_a_run_that_dies_mid_batch_keeps_the_progress_of_every_shipment_it_finished() -> None:
    # Given 6 due shipments in one batch, and a run that dies after enqueueing 4 answers
    store = InMemoryShipmentStore()
    ids = [shipment(store, n) for n in range(6)]
    for shipment_id, _ in ids:
        store.set_poll_due(shipment_id, NOW - timedelta(minutes=1))
    provider = ScriptedProvider({number: [scan(number)] for _, number in ids})
    with pytest.raises(TimeoutError):
        poller_for(store, provider, DyingSink(accepts=4), VirtualTime()).run()
    # Then the 4 shipments it finished are not due any more: the next run polls only the 2 others
    provider.queries.clear()
    report = poller_for(store, provider, Sink(), VirtualTime()).run()
    assert report.polled == 2
    assert len(provider.queries) == 2


def test_a_slow_provider_makes_a_run_stop_on_its_time_budget_and_the_next_run_continue() -> None:
    # Given 10 due shipments, a provider limited to 1 query per second, and 20 s left in the invocation
    store = InMemoryShipmentStore()
    ids = [shipment(store, n) for n in range(10)]
    for shipment_id, _ in ids:
        store.set_poll_due(shipment_id, NOW - timedelta(minutes=1))
    provider = ScriptedProvider({number: [scan(number)] for _, number in ids})
    clock = VirtualTime()
    first = poller_for(store, provider, Sink(), clock).run(time_left=lambda: 20.0 - clock.t)
    # Then it stops while time is left, having saved each shipment it polled
    assert first.out_of_time
    assert 0 < first.polled < 10
    assert clock.t < 20.0
    # And the next run polls the rest, not the same ones again
    second = poller_for(store, provider, Sink(), VirtualTime()).run()
    assert first.polled + second.polled == 10
    assert sorted(provider.queries) == sorted(number for _, number in ids)
