"""Tracking ingest: raw carrier pushes and poll results -> canonical events -> one status per parcel.

The use case behind ``tracking_normalizer`` (ARCHITECTURE §1, §3, §4; issues 6 and 14). One SQS batch:

1. **archive** every raw message in ONE gzip JSON-lines object per batch
   (``raw/<yyyy>/<mm>/<dd>/<batch-id>.jsonl.gz``) — never one PUT per push. An archive failure fails the
   whole batch (SQS redelivers it): the archive is what a replay after a mapping fix reads;
2. **parse** each message: a push envelope with its provider plugin (``parse_push`` verifies again: a
   forged message that reached the queue fails here and ends in the DLQ), a poll envelope carries the
   canonical events already; configured code overrides (``HubConfig.code_overrides``) apply to both;
3. **group** the events by (carrier, tracking number) across the whole batch;
4. **claims**: every group's claim (under its carrier and the alternates its push named) in ONE strongly
   consistent read for the batch (``find_claims``). Unknown -> **park** the push (payload reference = the
   inline envelope when small, else the archive key + line) with a TTL. Known -> check every scan time
   against the push's receive time and the shipment's creation (``domain.scan_time``: implausible scans
   are stored flagged and left out of the fold);
5. **write**, in this order: the scans new to every group in ONE ``put_events`` (BatchWriteItems of 25),
   then per group its hashes and the :class:`TrackingState` they ``fold`` into, in ONE request when it can
   decide both (``record_and_apply_state``: the hash ADD on condition that none is recorded yet, with the
   state's conditional update carrying the stall mark and the poll due time), else in two
   (``record_events``: each scan is reported new once; then ``apply_tracking_state``) — that part is
   :mod:`parcelhub.app.tracking_state`. A crash between the steps leaves scans written whose hashes are
   not recorded: the redelivery writes them again and reports them.

Nothing is published here: the committed write is the announcement. The stream relay
(``parcelhub.app.outbox``) derives ``ShipmentStatusChanged``, ``ShipmentDelivered``,
``ShipmentException`` and ``StallResolved`` from it, so a crash or an EventBridge failure after the write
can no longer lose them.

**Isolation.** Whatever one message raises — while being read, or while its group is applied — only that
message fails: it is reported as a batch item failure (the handler), logged as one structured line
(``tracking message failed``: message id, receive count, stage, error, reason) and counted
(``TrackingMessageFailed``, dimensions ``stage`` and ``error``). A failing group is re-applied message by
message, so a valid push sharing a tracking number with a hostile one is still applied on first delivery.

**Replay.** A message with ``replay: true`` (``python -m tools.recover replay``) replaces its scans as
stored (the same content hash, a corrected mapping) and re-decides the status from the whole timeline,
replacing the stored state only when it differs and has not moved meanwhile: replaying twice changes
nothing.

Parked pushes (:mod:`parcelhub.app.parked_pushes`) are replayed by :meth:`Ingestor.apply_parked` (called
by the waybill workflow right after ``claim_tracking``); by this ingest when, right after parking, a second
read finds the number claimed meanwhile (the workflow's replay may have run before the park), when it
claims the number itself (echoed order reference, carrier correction), and when a failed replay flagged
the claim. No claim's first scans cost a look for parked pushes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from parcelhub.app.envelopes import PollEnvelope, batch_id, parse_envelope, raw_key
from parcelhub.app.estimates import LANE_CACHE_SECONDS, DeliveryEstimator
from parcelhub.app.ingest_batch import (
    BatchResult,
    InboundMessage,
    IngestFailed,
    _Group,
    _keys,
    _Plan,
    _Read,
    _Source,
    archive_line,
    overridden,
    redacted,
)
from parcelhub.app.parked_pushes import PushParking
from parcelhub.app.tracking_state import TrackingWriter
from parcelhub.carriers.base import ProviderPlugin, PushUnreadable
from parcelhub.domain.models import Carrier, Provider, TrackingEvent
from parcelhub.ports.analytics import LaneHistory
from parcelhub.ports.messaging import RawArchive
from parcelhub.ports.store import ClaimFacts, StatusChange, TrackingClaim

if TYPE_CHECKING:
    from parcelhub.app.trackings import TrackingRegistry
    from parcelhub.config import HubConfig
    from parcelhub.ports.store import IngestStore


def utc_now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------ ports


class MetricSink(Protocol):
    def __call__(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None: ...


# ------------------------------------------------------------------------------------------ the use case


class Ingestor:
    """The ingest use case over its ports. Cheap to build: build one per invocation."""

    def __init__(
        self,
        *,
        store: IngestStore,
        archive: RawArchive,
        plugins: Callable[[Provider], ProviderPlugin],
        config: HubConfig,
        clock: Callable[[], datetime] = utc_now,
        metric: MetricSink | None = None,
        log: Any | None = None,
        lanes: LaneHistory | None = None,
        trackings: Callable[[], TrackingRegistry] | None = None,
    ) -> None:
        self.store = store
        self.trackings = trackings
        self.lanes = lanes
        self.archive = archive
        self.plugins = plugins
        self.config = config
        self.clock = clock
        self._metric = metric
        self._log = log

    # ------------------------------------------------------------------------------ plumbing
    def metric(self, name: str, value: float = 1, **dimensions: str) -> None:
        if value <= 0:
            return
        if self._metric is not None:
            self._metric(name, value, "Count", **dimensions)
            return
        from parcelhub.observability import add_metric

        add_metric(name, value, "Count", **dimensions)

    @property
    def log(self) -> Any:
        if self._log is None:
            from parcelhub.observability import logger

            self._log = logger()
        return self._log

    def _fail(self, result: BatchResult, message_id: str, receive_count: int, stage: str, exc: BaseException) -> None:
        """Only this message fails: reported, logged as one structured line, counted."""
        reason = f"{type(exc).__name__}: {exc}"[:500]
        result.failures.setdefault(message_id, reason)
        self.metric("TrackingMessageFailed", 1, stage=stage, error=type(exc).__name__)
        self.log.warning(
            "tracking message failed",
            extra={
                "message_id": message_id,
                "receive_count": receive_count,
                "stage": stage,
                "error": type(exc).__name__,
                "reason": reason,
            },
        )

    # ------------------------------------------------------------------------------ batch
    def process_batch(self, messages: Sequence[InboundMessage]) -> BatchResult:
        """Ingest one SQS batch. Raises only when the archive fails (the whole batch is retried)."""
        result = BatchResult()
        if not messages:
            return result
        now = self.clock()
        key = raw_key(now, batch_id(m.message_id for m in messages))
        try:
            self.archive.put_lines(key, [archive_line(m) for m in messages])
        except Exception:
            self.metric("RawArchiveFailed", 1)
            self.log.exception("raw archive not written: the batch is retried", extra={"key": key})
            raise
        result.archive_key = key

        groups: dict[tuple[Carrier, str], _Group] = {}
        for line, message in enumerate(messages):
            try:
                self._group(message, self._read(message.body), key, line, groups)
            except Exception as exc:  # whatever one message raises, only that message fails
                self._fail(result, message.message_id, message.receive_count, "read", exc)

        # every group is applied even when one of its messages failed elsewhere: a retried message is re-applied
        # idempotently (content hashes, the precedence-key condition)
        found = self._prefetch(groups.values())
        plans: list[_Plan] = []
        parked: list[_Group] = []
        for group in groups.values():
            prepare = functools.partial(self._prepare, group, now, result, found, plans=plans, parked=parked)
            self._isolated(group, now, result, prepare)
        self._apply_all(plans, now, result)
        self._recheck(parked, now, result)
        self.metric("TrackingEventsNew", result.events_new)
        self.metric("TrackingEventsDuplicate", result.events_duplicate)
        return result

    def _group(
        self, message: InboundMessage, read: _Read, key: str, line: int, groups: dict[tuple[Carrier, str], _Group]
    ) -> None:
        for code in read.unmapped:
            self.metric("UnmappedCarrierCode", 1, provider=read.provider.value, code=code)
        for code in read.inferred:
            self.metric("InferredCarrierCode", 1, provider=read.provider.value, code=code)
        ref = PushParking.payload_ref(message.body, key, line)
        source = _Source(message.message_id, ref, read.received_at, message.receive_count > 1, message.receive_count)
        numbers_by_tn: dict[str, set[Carrier]] = {}
        for carrier, number in read.numbers:
            numbers_by_tn.setdefault(number, set()).add(carrier)
        for event in read.events:
            group = groups.setdefault(
                (event.carrier, event.tracking_number), _Group(event.carrier, event.tracking_number)
            )
            group.scans.append((event, read.received_at, message.message_id))
            group.order_ref = group.order_ref or event.order_ref
            group.sources.setdefault(message.message_id, source)
            group.alternates |= numbers_by_tn.get(event.tracking_number, set()) - {event.carrier}
            group.replay = group.replay or read.replay

    def _isolated(self, group: _Group, now: datetime, result: BatchResult, attempt: Callable[[], None]) -> None:
        """Run ``attempt`` for the group; when it raises, only the group's failing messages fail: a group of
        several messages is applied again message by message."""
        try:
            attempt()
            return
        except Exception as exc:
            if len(group.sources) == 1:
                source = next(iter(group.sources.values()))
                self._fail(result, source.message_id, source.receive_count, "apply", exc)
                return
            self.log.warning(
                "tracking group failed: applying its messages one by one",
                extra={"carrier": group.carrier.value, "tracking_number": group.tracking_number[:40]},
            )
        for single in group.split():
            source = next(iter(single.sources.values()))
            try:
                # force: the failed attempt may have stored the events already; the state must still be applied
                self._ingest_group(single, now, result, force=True)
            except Exception as exc:
                self._fail(result, source.message_id, source.receive_count, "apply", exc)

    def _read(self, body: str) -> _Read:
        envelope = parse_envelope(body)
        if isinstance(envelope, PollEnvelope):
            events = list(envelope.events)
            numbers = list(dict.fromkeys((e.carrier, e.tracking_number) for e in events))
            read = _Read(envelope.provider, events, numbers, [], envelope.received_at or self.clock())
        else:
            try:
                request = envelope.request()
            except ValueError as exc:
                raise PushUnreadable(envelope.provider.value, "body_b64 is not base64") from exc
            parsed = self.plugins(envelope.provider).parse_push(request)
            read = _Read(
                envelope.provider,
                list(parsed.events),
                list(parsed.tracking_numbers),
                list(parsed.unmapped_codes),
                envelope.received_at,
                list(parsed.inferred_codes),
            )
        read.replay = envelope.replay
        read.events = [redacted(event) for event in read.events]
        overrides = self.config.code_overrides.get(read.provider, {})
        if overrides:
            read.unmapped = [code for code in read.unmapped if code not in overrides]
            read.events = [overridden(event, overrides) for event in read.events]
        return read

    # ------------------------------------------------------------------------------ one tracking number
    def _prefetch(self, groups: Iterable[_Group]) -> dict[tuple[str, str], TrackingClaim] | None:
        """Every claim the batch may need (each number under its carrier and its alternates) in one read;
        ``None`` when that read failed: each group then reads its own (and fails alone if it must)."""
        keys = [key for group in groups for key in _keys(group)]
        if not keys:
            return None
        try:
            return self.store.find_claims(keys)
        except Exception:
            self.log.warning("claims not read in one batch: read group by group", exc_info=True)
            return None

    def _lookup(self, carrier: str, number: str, found: dict[tuple[str, str], TrackingClaim] | None) -> Any:
        return self.store.find_by_tracking(carrier, number) if found is None else found.get((carrier, number))

    def _ingest_group(self, group: _Group, now: datetime, result: BatchResult, *, force: bool = False) -> None:
        """One group on its own (the fallback when its batch's writes failed): read, write, recheck."""
        plans: list[_Plan] = []
        parked: list[_Group] = []
        self._prepare(group, now, result, None, plans=plans, parked=parked)
        for plan in plans:
            self._apply_plan(plan, now, result, stored=False, force=force)
        self._recheck(parked, now, result, strict=True)

    def _prepare(
        self,
        group: _Group,
        now: datetime,
        result: BatchResult,
        found: dict[tuple[str, str], TrackingClaim] | None,
        *,
        plans: list[_Plan],
        parked: list[_Group],
    ) -> None:
        """Find the group's claim: none -> park the group's pushes; a replay -> correct now; else plan the
        write. Pushes parked for the number are taken only where they may wait: the claim was just written
        here (by the echoed order reference or a carrier correction), or a replay of them failed (flag)."""
        claim, fresh = self._claim_of(group, found)
        if claim is None:
            self.parking.park(group, now, result)
            parked.append(group)
            return
        scans = [(event, received_at) for event, received_at, _ in group.scans]
        taken = self.parking.take(claim, also=(group.carrier.value,)) if fresh or claim.parked else []
        try:
            scans += self.parking.replay(claim, taken, now, result)
            events = self._checked(claim, scans, result)
            if group.replay:
                self._changed(result, self.writer.correct(claim, events, now), corrected=True)
                return
        except Exception:
            self.parking.repark(claim, taken, now)
            raise
        plans.append(_Plan(group, claim, events, taken))

    def _claim_of(
        self, group: _Group, found: dict[tuple[str, str], TrackingClaim] | None
    ) -> tuple[TrackingClaim | None, bool]:
        """The claim of the group's number, and whether it was written just now (by this ingest)."""
        claim = self._lookup(group.carrier.value, group.tracking_number, found)
        for alternate in sorted(group.alternates):
            if claim is not None:
                return claim, False
            claim = self._lookup(alternate.value, group.tracking_number, found)
            if claim is not None and self.trackings is not None:
                # the provider says the number is another company's (Kuaidi100 autoCheck): a tracked number
                # registered under a guessed carrier is corrected; an order's waybill keeps its carrier
                corrected = self.trackings().correct(group.tracking_number, alternate, group.carrier)
                if corrected is not None:
                    return corrected, corrected.carrier != claim.carrier
        if claim is None and group.order_ref:
            claim = self._claim_by_order_ref(group)
            return claim, claim is not None
        return claim, False

    def _apply_all(self, plans: Sequence[_Plan], now: datetime, result: BatchResult) -> None:
        """The scans new to every planned group in ONE ``put_events`` (BatchWriteItems of 25) before any
        group records its hashes (then writes its state): a crash in between leaves items that the retry
        writes again (same key, same content) and hashes not yet recorded, so nothing is reported twice or
        lost. When that write fails, every group is applied on its own (and message by message)."""
        items = [(plan.claim.shipment_id, event) for plan in plans for event in plan.claim.unseen(plan.events)]
        try:
            if items:
                self.store.put_events(items)
        except Exception:
            self.log.warning("scans not written in one batch: applying group by group", exc_info=True)
            for plan in plans:
                self.parking.repark(plan.claim, plan.taken, now)
                self._isolated(plan.group, now, result, functools.partial(self._ingest_group, plan.group, now, result))
            return
        for plan in plans:
            self._isolated(plan.group, now, result, functools.partial(self._apply_plan, plan, now, result, stored=True))

    def _apply_plan(
        self, plan: _Plan, now: datetime, result: BatchResult, *, stored: bool, force: bool = False
    ) -> None:
        try:
            self._apply(plan.claim, plan.events, now, result, force=force or plan.group.redelivered, stored=stored)
        except Exception:
            self.parking.repark(plan.claim, plan.taken, now)
            raise

    def _recheck(self, parked: Sequence[_Group], now: datetime, result: BatchResult, *, strict: bool = False) -> None:
        """Read the claims of the numbers just parked again (one read) and replay at once those claimed
        meanwhile: the waybill workflow may have claimed one and run ``apply_parked`` between our first read
        and the park. A claim written after this (strongly consistent) read was written after the park, so
        the workflow's ``apply_parked`` finds the push: no parked push is stranded. When the read or the
        replay fails, the group's messages fail (``strict``: raise) and their redelivery applies them."""
        if not parked:
            return
        try:
            found = self.store.find_claims([key for group in parked for key in _keys(group)])
        except Exception as exc:
            if strict:
                raise
            for group in parked:
                for source in group.sources.values():
                    self._fail(result, source.message_id, source.receive_count, "recheck", exc)
            return
        for group in parked:
            claim = next((found[key] for key in _keys(group) if key in found), None)
            if claim is None:
                continue
            try:
                self._replay_parked(claim, (group.carrier.value,), now, result)
            except Exception as exc:
                if strict:
                    raise
                for source in group.sources.values():
                    self._fail(result, source.message_id, source.receive_count, "recheck", exc)

    def _claim_by_order_ref(self, group: _Group) -> TrackingClaim | None:
        """No claim for the number, but the provider echoed our order reference: find the shipment by it
        (``get_by_order``; our own references are shipment ids, so ``get`` next) and, when its waybill is
        this very number and carrier, claim it. Idempotent: the waybill workflow's own claim of the same
        shipment is then a no-op; a number claimed by another shipment is left alone (parked)."""
        from parcelhub.ports.errors import ShipmentNotFound, TrackingClaimConflict

        ref = group.order_ref or ""
        shipment = None
        for lookup in (self.store.get_by_order, self.store.get):
            try:
                shipment = lookup(ref)
                break
            except ShipmentNotFound:
                continue
        waybill = shipment.waybill if shipment is not None else None
        if shipment is None or waybill is None or waybill.tracking_number != group.tracking_number:
            return None
        if waybill.carrier not in group.alternates | {group.carrier}:
            return None
        facts = ClaimFacts.of(shipment)
        try:
            self.store.claim_tracking(
                waybill.carrier.value, group.tracking_number, shipment.shipment_id, shipment.order_id, facts=facts
            )
        except TrackingClaimConflict:
            return None
        self.metric("PushMatchedByOrderRef", 1)
        self.log.info(
            "push matched to its shipment by the echoed order reference",
            extra={"carrier": waybill.carrier.value, "tracking_number": group.tracking_number},
        )
        return TrackingClaim(
            shipment.shipment_id, shipment.order_id, waybill.carrier.value, group.tracking_number, facts=facts
        )

    @property
    def parking(self) -> PushParking:
        """Parked pushes: park, take, read back, put back."""
        return PushParking(
            self.store, self.archive, self.config, read=self._read, metric=self.metric, log=lambda: self.log
        )

    @property
    def writer(self) -> TrackingWriter:
        """Scans -> the stored tracking state (built per use: it reads the current store and config)."""
        estimator = None
        if self.lanes is not None:
            settings = self.config.estimates.settings
            estimator = DeliveryEstimator(
                self.lanes, settings, metric=self.metric, log=lambda: self.log, cache_seconds=LANE_CACHE_SECONDS
            )
        return TrackingWriter(self.store, self.config, metric=self.metric, log=lambda: self.log, estimator=estimator)

    def _checked(
        self, claim: TrackingClaim, scans: Sequence[tuple[TrackingEvent, datetime]], result: BatchResult
    ) -> list[TrackingEvent]:
        events = self.writer.checked(claim, scans)
        result.flagged += sum(1 for e in events if e.time_flag is not None)
        result.events_duplicate += len(scans) - len(events)  # the same scan twice in this batch
        return events

    def _apply(
        self,
        claim: TrackingClaim,
        events: list[TrackingEvent],
        now: datetime,
        result: BatchResult,
        *,
        force: bool,
        stored: bool = False,
    ) -> None:
        new, change = self.writer.apply(claim, events, now, force=force, stored=stored)
        result.events_new += len(new)
        result.events_duplicate += len(events) - len(new)
        self._changed(result, change)

    @staticmethod
    def _changed(result: BatchResult, change: StatusChange | None, *, corrected: bool = False) -> None:
        if change is not None:
            result.changes.append(change)
            result.corrected += int(corrected)

    # ------------------------------------------------------------------------------ parked replay
    def apply_parked(self, carrier: str, tracking_number: str) -> BatchResult:
        """Replay the pushes parked for a number that has just been claimed. Idempotent."""
        result = BatchResult()
        claim = self.store.find_by_tracking(carrier, tracking_number)
        if claim is not None:
            self._replay_parked(claim, (), self.clock(), result)
        return result

    def _replay_parked(self, claim: TrackingClaim, also: Sequence[str], now: datetime, result: BatchResult) -> None:
        """Take the claim's parked pushes and apply them; on failure they are parked again and flagged."""
        taken = self.parking.take(claim, also)
        if not taken:
            return
        try:
            scans = self.parking.replay(claim, taken, now, result)
            if scans:
                self._apply(claim, self._checked(claim, scans, result), now, result, force=True)
        except Exception:
            self.parking.repark(claim, taken, now)
            extra = {"carrier": claim.carrier, "tracking_number": claim.tracking_number}
            self.log.exception("parked replay failed", extra=extra)
            raise


__all__ = [
    "BatchResult",
    "InboundMessage",
    "IngestFailed",
    "Ingestor",
    "MetricSink",
]
