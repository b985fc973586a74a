"""Tracking ingest: raw carrier pushes and poll results -> canonical events -> one status per parcel.

The use case behind ``tracking_normalizer`` (ARCHITECTURE §1, §3, §4; issues 6 and 14). One SQS batch:

1. **archive** every raw message in ONE gzip JSON-lines object per batch
   (``raw/<yyyy>/<mm>/<dd>/<batch-id>.jsonl.gz``) — never one PUT per push. An archive failure fails the
   whole batch (SQS redelivers it): the archive is what a replay after a mapping fix reads;
2. **parse** each message: a push envelope with its provider plugin (``parse_push`` verifies again: a
   forged message that reached the queue fails here and ends in the DLQ), a poll envelope carries the
   canonical events already; configured code overrides (``HubConfig.code_overrides``) apply to both;
3. **group** the events by (carrier, tracking number) across the whole batch;
4. per group: ``find_by_tracking`` (one GetItem). Unknown -> **park** the push (payload reference = the
   inline envelope when small, else the archive key + line) with a TTL. Known -> check every scan time
   against the push's receive time and the shipment's creation (``domain.scan_time``: implausible scans
   are stored flagged and left out of the fold), ``append_events`` (only new hashes are written),
   ``fold`` into a :class:`TrackingState`, ``apply_tracking_state`` (one conditional UpdateItem carrying
   the stall mark and the poll due time) — that part is :mod:`parcelhub.app.tracking_state`.

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

Parked pushes are replayed by :meth:`Ingestor.apply_parked` (called by the waybill workflow right after
``claim_tracking``) and opportunistically here when a claim has no events yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from parcelhub.app.envelopes import PollEnvelope, batch_id, parse_envelope, raw_key
from parcelhub.app.estimates import DeliveryEstimator
from parcelhub.app.ingest_batch import BatchResult, InboundMessage, IngestFailed, _Group, _Read, _Source
from parcelhub.app.tracking_state import TrackingWriter
from parcelhub.carriers.base import ProviderPlugin, PushUnreadable
from parcelhub.domain.models import Carrier, Provider, TrackingEvent
from parcelhub.ports.analytics import LaneHistory
from parcelhub.ports.messaging import RawArchive
from parcelhub.ports.store import ClaimFacts, StatusChange, TrackingClaim

if TYPE_CHECKING:
    from parcelhub.app.trackings import TrackingRegistry
    from parcelhub.config import HubConfig
    from parcelhub.ports.store import IngestStore, ParkedPush

#: parked payloads up to this size are stored inline in the parked item; larger ones by archive reference
PARK_INLINE_MAX_BYTES = 4096
INLINE_PREFIX = "inline:"
ARCHIVE_PREFIX = "s3:"
#: passed to ``take_parked`` as "now" so the store hands back expired items too: we count them
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
            self.archive.put_lines(key, [_archive_line(m) for m in messages])
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

        for group in groups.values():
            # every group is applied even when one of its messages failed elsewhere: a retried message is
            # re-applied idempotently (content hashes, the precedence-key condition)
            self._ingest_isolated(group, now, result)
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
        ref = self._payload_ref(message.body, key, line)
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

    def _ingest_isolated(self, group: _Group, now: datetime, result: BatchResult) -> None:
        try:
            self._ingest_group(group, now, result)
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
        read.events = [_redacted(event) for event in read.events]
        overrides = self.config.code_overrides.get(read.provider, {})
        if overrides:
            read.unmapped = [code for code in read.unmapped if code not in overrides]
            read.events = [_overridden(event, overrides) for event in read.events]
        return read

    @staticmethod
    def _payload_ref(body: str, key: str, line: int) -> str:
        if len(body.encode("utf-8")) <= PARK_INLINE_MAX_BYTES:
            return INLINE_PREFIX + body
        return f"{ARCHIVE_PREFIX}{key}#{line}"

    # ------------------------------------------------------------------------------ one tracking number
    def _ingest_group(self, group: _Group, now: datetime, result: BatchResult, *, force: bool = False) -> None:
        claim = self.store.find_by_tracking(group.carrier.value, group.tracking_number)
        for alternate in sorted(group.alternates):
            if claim is not None:
                break
            claim = self.store.find_by_tracking(alternate.value, group.tracking_number)
            if claim is not None and self.trackings is not None:
                # the provider says the number is another company's (Kuaidi100 autoCheck): a tracked number
                # registered under a guessed carrier is corrected; an order's waybill keeps its carrier
                claim = self.trackings().correct(group.tracking_number, alternate, group.carrier) or claim
        if claim is None and group.order_ref:
            claim = self._claim_by_order_ref(group)
        if claim is None:
            self._park(group, now, result)
            return
        scans = [(event, received_at) for event, received_at, _ in group.scans]
        taken: list[ParkedPush] = []
        if not claim.known_hashes:
            # the first events for this claim: pushes that arrived before the waybill was recorded may be
            # parked (the workflow replays them too, see apply_parked; whoever takes them first applies)
            taken = self._take(claim, also=(group.carrier.value,))
        try:
            scans += self._replay(claim, taken, now, result)
            events = self._checked(claim, scans, result)
            if group.replay:
                self._changed(result, self.writer.correct(claim, events, now), corrected=True)
            else:
                self._apply(claim, events, now, result, force=force or group.redelivered)
        except Exception:
            self._repark(taken, now)
            raise

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

    def _park(self, group: _Group, now: datetime, result: BatchResult) -> None:
        expires_at = now + timedelta(hours=self.config.parked_push_ttl_hours)
        for source in group.sources.values():
            self.store.park_push(
                group.carrier.value, group.tracking_number, source.payload_ref, source.received_at, expires_at
            )
            result.parked += 1
            self.metric("PushParked", 1)
        self.log.info(
            "push parked: tracking number not claimed yet",
            extra={"carrier": group.carrier.value, "tracking_number": group.tracking_number[:40]},
        )

    def _take(self, claim: TrackingClaim, also: Sequence[str] = ()) -> list[ParkedPush]:
        """Take (read + delete) the pushes parked for the claim's number, expired ones included."""
        taken: list[ParkedPush] = []
        for carrier in dict.fromkeys([claim.carrier, *also]):
            taken += self.store.take_parked(carrier, claim.tracking_number, now=_EPOCH)
        return taken

    def _replay(
        self, claim: TrackingClaim, taken: Sequence[ParkedPush], now: datetime, result: BatchResult
    ) -> list[tuple[TrackingEvent, datetime]]:
        """The scans of taken parked pushes for the claim's number; expired pushes are counted, not applied
        (TTL deletion is lazy, so an expired item can still be found)."""
        scans: list[tuple[TrackingEvent, datetime]] = []
        cache: dict[str, list[str]] = {}
        carriers = {parked.carrier for parked in taken} | {claim.carrier}
        for parked in taken:
            if parked.expires_at <= now:
                result.expired += 1
                self.metric("PushParkedExpired", 1)
                continue
            read = self._read(self._load(parked.payload_ref, cache))
            scans += [
                (e, read.received_at)
                for e in read.events
                if e.tracking_number == claim.tracking_number and e.carrier.value in carriers
            ]
            result.replayed += 1
        return scans

    def _repark(self, items: Sequence[ParkedPush], now: datetime) -> None:
        """Put taken pushes back when applying them failed (they must not be lost with the retry)."""
        for item in items:
            if item.expires_at > now:
                self.store.park_push(
                    item.carrier, item.tracking_number, item.payload_ref, item.received_at, item.expires_at
                )

    def _load(self, payload_ref: str, cache: dict[str, list[str]]) -> str:
        if payload_ref.startswith(INLINE_PREFIX):
            return payload_ref[len(INLINE_PREFIX) :]
        if not payload_ref.startswith(ARCHIVE_PREFIX):
            raise ValueError(f"unknown payload reference {payload_ref[:40]!r}")
        key, _, line = payload_ref[len(ARCHIVE_PREFIX) :].rpartition("#")
        if key not in cache:
            cache[key] = self.archive.get_lines(key)
        record = json.loads(cache[key][int(line)])
        return str(record["body"])

    @property
    def writer(self) -> TrackingWriter:
        """Scans -> the stored tracking state (built per use: it reads the current store and config)."""
        estimator = None
        if self.lanes is not None:
            settings = self.config.estimates.settings
            estimator = DeliveryEstimator(self.lanes, settings, metric=self.metric, log=lambda: self.log)
        return TrackingWriter(self.store, self.config, metric=self.metric, log=lambda: self.log, estimator=estimator)

    def _checked(
        self, claim: TrackingClaim, scans: Sequence[tuple[TrackingEvent, datetime]], result: BatchResult
    ) -> list[TrackingEvent]:
        events = self.writer.checked(claim, scans)
        result.flagged += sum(1 for e in events if e.time_flag is not None)
        result.events_duplicate += len(scans) - len(events)  # the same scan twice in this batch
        return events

    def _apply(
        self, claim: TrackingClaim, events: list[TrackingEvent], now: datetime, result: BatchResult, *, force: bool
    ) -> None:
        new, change = self.writer.apply(claim, events, now, force=force)
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
        now = self.clock()
        claim = self.store.find_by_tracking(carrier, tracking_number)
        if claim is None:
            return result
        taken = self._take(claim)
        if not taken:
            return result
        try:
            scans = self._replay(claim, taken, now, result)
            if scans:
                self._apply(claim, self._checked(claim, scans, result), now, result, force=True)
        except Exception:
            self._repark(taken, now)
            self.log.exception("parked replay failed", extra={"carrier": carrier, "tracking_number": tracking_number})
            raise
        return result


def _overridden(event: TrackingEvent, overrides: dict[str, Any]) -> TrackingEvent:
    fix = overrides.get(event.raw_code)
    if fix is None or (fix.status, fix.sub_status) == (event.status, event.sub_status):
        return event
    return event.model_copy(update={"status": fix.status, "sub_status": fix.sub_status})


def _archive_line(message: InboundMessage) -> str:
    line = json.dumps({"message_id": message.message_id, "body": message.body}, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep the line, escaped
        line = json.dumps({"message_id": message.message_id, "body": message.body})
    return line


__all__ = [
    "BatchResult",
    "InboundMessage",
    "IngestFailed",
    "Ingestor",
    "MetricSink",
]


def _redacted(event: TrackingEvent) -> TrackingEvent:
    """The scan as stored: phones and the signer's or courier's name masked in its texts (the place and the
    action stay). Its content hash is the carrier's original, so a redelivered scan is still the same one."""
    from parcelhub.security.masking import redact_text

    text = redact_text(event.raw_text)
    reason = redact_text(event.exception_text) if event.exception_text else event.exception_text
    if text == event.raw_text and reason == event.exception_text:
        return event
    return event.model_copy(update={"raw_text": text, "exception_text": reason})
