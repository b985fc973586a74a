"""Tracking poller (issue 6 item 4): query providers for shipments whose tracking went quiet.

Incremental and index-driven: every sweep reads only the shipments due for a poll from the sparse,
sharded ``poll`` index (``query_due_polls`` — never a Scan), in batches of ``PollerConfig.batch_size``.
For each due shipment it asks the tracking provider (``PollerConfig.tracking_provider`` per carrier,
else the shipment's own provider) through a token bucket per provider (``PollerConfig.rate_limits``,
queries per second), and feeds the answers to the SAME queue the webhooks feed, as ``poll`` envelopes,
so there is one ingest path (dedupe, fold, stall index, events).

Bounded work (issue 14): progress is saved per shipment — its answer is enqueued, then its poll due time
is pushed forward by ``quiet_hours`` (x ``time_scale``) — and the sweep stops taking shipments when its
time budget runs low, so a slow provider can no longer make every run redo the same batch: the next run
starts where this one stopped. A shipment whose query failed is pushed forward too (it is retried one
quiet period later, not at the head of every run). The normalizer pushes the due time forward again
whenever a real update arrives, and a terminal status removes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from parcelhub.app.envelopes import poll_envelope_json
from parcelhub.app.ingest import MetricSink
from parcelhub.carriers.base import CarrierAuthError, CarrierError, CarrierRejected, ProviderPlugin
from parcelhub.domain.models import Carrier, EventSource, Provider
from parcelhub.ports.messaging import MessageSink

if TYPE_CHECKING:
    from parcelhub.config import HubConfig
    from parcelhub.ports.store import DuePoll, PollIndex

#: stop taking shipments when less than this many seconds are left (a provider call may take ~10 s)
TIME_MARGIN_SECONDS = 12.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class TokenBucket:
    """``rate`` tokens per second, bursts up to ``capacity``; :meth:`acquire` waits for a token."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def wait_estimate(self) -> float:
        """How long :meth:`acquire` would wait now (seconds)."""
        self._refill()
        return max(0.0, (1 - self._tokens) / self.rate)

    def acquire(self) -> float:
        """Take one token, sleeping until there is one. Returns the time waited (seconds)."""
        self._refill()
        waited = 0.0
        if self._tokens < 1:
            waited = (1 - self._tokens) / self.rate
            self._sleep(waited)
            self._refill()
            # we slept exactly as long as one token takes (float rounding must not make us sleep again)
            self._tokens = max(self._tokens, 1.0)
        self._tokens -= 1
        return waited


@dataclass(slots=True)
class PollReport:
    batches: int = 0
    polled: int = 0
    with_events: int = 0
    events: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # shipment id -> error
    skipped: int = 0
    #: the sweep stopped on its time budget; the rest stays due for the next run
    out_of_time: bool = False
    waited_seconds: float = 0.0
    per_provider: dict[str, int] = field(default_factory=dict)


class Poller:
    """The poll use case over its ports (store, plugins, sink)."""

    def __init__(
        self,
        *,
        store: PollIndex,
        plugins: Callable[[Provider], ProviderPlugin],
        sink: MessageSink,
        config: HubConfig,
        shards: int | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        log: Any | None = None,
        metric: MetricSink | None = None,
    ) -> None:
        self.store = store
        self.plugins = plugins
        self.sink = sink
        self.config = config
        self.shards = shards
        self.clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._buckets: dict[Provider, TokenBucket] = {}
        self._log = log
        self._metric = metric

    @property
    def log(self) -> Any:
        if self._log is None:
            from parcelhub.observability import logger

            self._log = logger()
        return self._log

    def bucket(self, provider: Provider) -> TokenBucket:
        if provider not in self._buckets:
            rate = self.config.poller.rate_limits.get(provider, 1.0)
            self._buckets[provider] = TokenBucket(rate, clock=self._monotonic, sleep=self._sleep)
        return self._buckets[provider]

    def run(self, *, max_batches: int = 20, time_left: Callable[[], float] | None = None) -> PollReport:
        """Poll due shipments one by one until none is due, ``max_batches`` or the time budget."""
        report = PollReport()
        settings = self.config.poller
        quiet = max(timedelta(hours=settings.quiet_hours * settings.time_scale), timedelta(seconds=1))
        for _ in range(max_batches):
            now = self.clock()
            due = self.store.query_due_polls(now, self.shards, limit=settings.batch_size)
            if not due:
                break
            report.batches += 1
            for item in due:
                if time_left is not None and time_left() < TIME_MARGIN_SECONDS + self._expected_wait(item):
                    report.out_of_time = True
                    self.log.info("poll sweep out of time: the rest is left for the next run")
                    return report
                body = self._poll_one(item, now, report)
                if body is not None:
                    self.sink.send([body])  # enqueue first: a failure here leaves the due time for the next sweep
                self.store.set_poll_due(item.shipment_id, self.clock() + quiet)
        return report

    def _expected_wait(self, item: DuePoll) -> float:
        """How long the next query of this shipment's provider would wait for a token."""
        provider = self._provider_for(item)
        if provider is None:
            return 0.0
        return self.bucket(provider).wait_estimate()

    def _provider_for(self, item: DuePoll) -> Provider | None:
        try:
            carrier = Carrier(item.carrier) if item.carrier else None
        except ValueError:
            return None
        if carrier is not None and carrier in self.config.poller.tracking_provider:
            return self.config.poller.tracking_provider[carrier]
        try:
            return Provider(item.provider) if item.provider else None
        except ValueError:
            return None

    def _poll_one(self, item: DuePoll, now: datetime, report: PollReport) -> str | None:
        provider = self._provider_for(item)
        if provider is None or not item.carrier or not item.tracking_number:
            report.skipped += 1
            return None
        report.waited_seconds += self.bucket(provider).acquire()
        report.polled += 1
        report.per_provider[provider.value] = report.per_provider.get(provider.value, 0) + 1
        try:
            parsed = self.plugins(provider).query_tracking(Carrier(item.carrier), item.tracking_number)
        except (CarrierAuthError, CarrierRejected, CarrierError) as exc:
            report.failures[item.shipment_id] = f"{type(exc).__name__}: {exc}"
            self.log.warning(
                "tracking query failed",
                extra={"shipment_id": item.shipment_id, "provider": provider.value, "error": type(exc).__name__},
            )
            return None
        except LookupError as exc:  # the provider has no credentials configured
            report.failures[item.shipment_id] = str(exc)
            return None
        self._count_unmapped(provider, parsed.unmapped_codes)
        events = parsed.events
        if not events:
            return None
        polled = [
            e if e.source is EventSource.POLL else e.model_copy(update={"source": EventSource.POLL}) for e in events
        ]
        report.with_events += 1
        report.events += len(polled)
        return poll_envelope_json(provider, polled, now)

    def _count_unmapped(self, provider: Provider, codes: Sequence[str]) -> None:
        """Polled unknown codes count like pushed ones (the ingest path's ``UnmappedCarrierCode``)."""
        if self._metric is None:
            from parcelhub.observability import add_metric as metric
        else:
            metric = self._metric
        for code in codes:
            metric("UnmappedCarrierCode", 1, "Count", provider=provider.value, code=code)
