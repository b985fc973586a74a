"""Tracking ingest: raw carrier pushes and poll results -> canonical events -> one status per parcel.

The use case behind ``tracking_normalizer`` (ARCHITECTURE §1, §3, §4; issue 6 item 2). One SQS batch:

1. **archive** every raw message in ONE gzip JSON-lines object per batch
   (``raw/<yyyy>/<mm>/<dd>/<batch-id>.jsonl.gz``) — never one PUT per push;
2. **parse** each message: a push envelope with its provider plugin (``parse_push`` verifies again: a
   forged message that reached the queue fails here and ends in the DLQ), a poll envelope carries the
   canonical events already;
3. **group** the events by (carrier, tracking number) across the whole batch;
4. per group: ``find_by_tracking`` (one GetItem). Unknown -> **park** the push (payload reference = the
   inline envelope when small, else the archive key + line) with a TTL. Known -> ``append_events``
   (only new hashes are written), ``fold`` into a :class:`TrackingState`, ``apply_tracking_state`` (one
   conditional UpdateItem carrying the stall mark), push the poll due time forward;
5. **publish** ``ShipmentStatusChanged`` (+ ``ShipmentDelivered`` / ``ShipmentException``) only on a real
   change, and ``StallResolved`` when an alerted stall episode ended — all of a batch's events in
   PutEvents batches.

A failure is isolated to the messages that contributed to the failing group; the handler reports them
as batch item failures. Parked pushes are replayed by :meth:`Ingestor.apply_parked` (called by the waybill
workflow right after ``claim_tracking``) and opportunistically here when a claim has no events yet.

No Lambda event and no boto3 call in the logic: the store, the publisher, the archive and the plugins
are ports passed in (:class:`Ingestor`); the composition root wires the AWS adapters lazily. The queue
messages it reads are :mod:`parcelhub.app.envelopes`.
"""

from __future__ import annotations

import collections
import json
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from parcelhub.app.envelopes import PollEnvelope, batch_id, parse_envelope, raw_key
from parcelhub.app.ingest_batch import BatchResult, InboundMessage, IngestFailed, _Group, _Read, _Source
from parcelhub.carriers.base import ProviderPlugin, PushRejected, PushUnreadable
from parcelhub.domain.models import Carrier, Provider, TrackingEvent
from parcelhub.domain.stall import StallRule, stall_due
from parcelhub.domain.status import Status, TrackingState, fold, is_terminal
from parcelhub.ports.messaging import RawArchive
from parcelhub.ports.store import StallMark, StatusChange, TrackingClaim

if TYPE_CHECKING:
    from parcelhub.config import HubConfig
    from parcelhub.events import Event, EventPublisher
    from parcelhub.ports.store import IngestStore, ParkedPush

#: parked payloads up to this size are stored inline in the parked item; larger ones by archive reference
PARK_INLINE_MAX_BYTES = 4096
INLINE_PREFIX = "inline:"
ARCHIVE_PREFIX = "s3:"
#: store -> shipment id -> destination province, per warm process (bounded)
_PROVINCES: weakref.WeakKeyDictionary[Any, collections.OrderedDict[str, str]] = weakref.WeakKeyDictionary()
_PROVINCE_CACHE_SIZE = 4096
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
        publisher: EventPublisher,
        archive: RawArchive,
        plugins: Callable[[Provider], ProviderPlugin],
        config: HubConfig,
        clock: Callable[[], datetime] = utc_now,
        metric: MetricSink | None = None,
        log: Any | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
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

    # ------------------------------------------------------------------------------ batch
    def process_batch(self, messages: Sequence[InboundMessage]) -> BatchResult:
        """Ingest one SQS batch. Raises only when the archive fails (the whole batch is retried)."""
        result = BatchResult()
        if not messages:
            return result
        now = self.clock()
        key = raw_key(now, batch_id(m.message_id for m in messages))
        lines = [json.dumps({"message_id": m.message_id, "body": m.body}, ensure_ascii=False) for m in messages]
        self.archive.put_lines(key, lines)
        result.archive_key = key

        groups: dict[tuple[Carrier, str], _Group] = {}
        for line, message in enumerate(messages):
            try:
                read = self._read(message.body)
            except (ValidationError, ValueError, PushRejected, PushUnreadable, LookupError) as exc:
                result.failures[message.message_id] = f"{type(exc).__name__}: {exc}"
                self.log.warning(
                    "tracking message rejected",
                    extra={"message_id": message.message_id, "error": type(exc).__name__, "reason": str(exc)[:200]},
                )
                continue
            for code in read.unmapped:
                self.metric("UnmappedCarrierCode", 1, provider=read.provider.value, code=code)
            for code in read.inferred:
                self.metric("InferredCarrierCode", 1, provider=read.provider.value, code=code)
            ref = self._payload_ref(message.body, key, line)
            source = _Source(message.message_id, ref, read.received_at, message.receive_count > 1)
            numbers_by_tn: dict[str, set[Carrier]] = {}
            for carrier, number in read.numbers:
                numbers_by_tn.setdefault(number, set()).add(carrier)
            for event in read.events:
                group = groups.setdefault(
                    (event.carrier, event.tracking_number), _Group(event.carrier, event.tracking_number)
                )
                group.events.append(event)
                group.order_ref = group.order_ref or event.order_ref
                group.sources.setdefault(message.message_id, source)
                group.alternates |= numbers_by_tn.get(event.tracking_number, set()) - {event.carrier}

        outgoing: list[tuple[Event, _Group]] = []
        for group in groups.values():
            # every group is applied even when one of its messages failed elsewhere: a retried message is
            # re-applied idempotently (content hashes, the precedence-key condition)
            try:
                outgoing += [(out, group) for out in self._ingest_group(group, now, result)]
            except Exception as exc:
                self.log.exception(
                    "tracking group failed",
                    extra={"carrier": group.carrier.value, "tracking_number": group.tracking_number},
                )
                for source in group.sources.values():
                    result.failures.setdefault(source.message_id, f"{type(exc).__name__}: {exc}")
        self._publish(outgoing, result)
        self.metric("TrackingEventsNew", result.events_new)
        self.metric("TrackingEventsDuplicate", result.events_duplicate)
        return result

    def _read(self, body: str) -> _Read:
        envelope = parse_envelope(body)
        if isinstance(envelope, PollEnvelope):
            events = list(envelope.events)
            numbers = list(dict.fromkeys((e.carrier, e.tracking_number) for e in events))
            return _Read(envelope.provider, events, numbers, [], envelope.received_at or self.clock())
        try:
            request = envelope.request()
        except ValueError as exc:
            raise PushUnreadable(envelope.provider.value, "body_b64 is not base64") from exc
        parsed = self.plugins(envelope.provider).parse_push(request)
        return _Read(
            envelope.provider,
            list(parsed.events),
            list(parsed.tracking_numbers),
            list(parsed.unmapped_codes),
            envelope.received_at,
            list(parsed.inferred_codes),
        )

    @staticmethod
    def _payload_ref(body: str, key: str, line: int) -> str:
        if len(body.encode("utf-8")) <= PARK_INLINE_MAX_BYTES:
            return INLINE_PREFIX + body
        return f"{ARCHIVE_PREFIX}{key}#{line}"

    # ------------------------------------------------------------------------------ one tracking number
    def _ingest_group(self, group: _Group, now: datetime, result: BatchResult) -> list[Event]:
        claim = self.store.find_by_tracking(group.carrier.value, group.tracking_number)
        for alternate in sorted(group.alternates):
            if claim is not None:
                break
            claim = self.store.find_by_tracking(alternate.value, group.tracking_number)
        if claim is None and group.order_ref:
            claim = self._claim_by_order_ref(group)
        if claim is None:
            self._park(group, now, result)
            return []
        events = list(group.events)
        taken: list[ParkedPush] = []
        if not claim.known_hashes:
            # the first events for this claim: pushes that arrived before the waybill was recorded may be
            # parked (the workflow replays them too, see apply_parked; whoever takes them first applies)
            taken = self._take(claim, also=(group.carrier.value,))
        try:
            events += self._replay(claim, taken, now, result)
            return self._apply(claim, events, now, result, force=group.redelivered)
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
        try:
            self.store.claim_tracking(
                waybill.carrier.value, group.tracking_number, shipment.shipment_id, shipment.order_id
            )
        except TrackingClaimConflict:
            return None
        self.metric("PushMatchedByOrderRef", 1)
        self.log.info(
            "push matched to its shipment by the echoed order reference",
            extra={"carrier": waybill.carrier.value, "tracking_number": group.tracking_number},
        )
        return TrackingClaim(shipment.shipment_id, shipment.order_id, waybill.carrier.value, group.tracking_number)

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
            extra={"carrier": group.carrier.value, "tracking_number": group.tracking_number},
        )

    def _take(self, claim: TrackingClaim, also: Sequence[str] = ()) -> list[ParkedPush]:
        """Take (read + delete) the pushes parked for the claim's number, expired ones included."""
        taken: list[ParkedPush] = []
        for carrier in dict.fromkeys([claim.carrier, *also]):
            taken += self.store.take_parked(carrier, claim.tracking_number, now=_EPOCH)
        return taken

    def _replay(
        self, claim: TrackingClaim, taken: Sequence[ParkedPush], now: datetime, result: BatchResult
    ) -> list[TrackingEvent]:
        """The events of taken parked pushes for the claim's number; expired pushes are counted, not applied
        (TTL deletion is lazy, so an expired item can still be found)."""
        events: list[TrackingEvent] = []
        cache: dict[str, list[str]] = {}
        carriers = {parked.carrier for parked in taken} | {claim.carrier}
        for parked in taken:
            if parked.expires_at <= now:
                result.expired += 1
                self.metric("PushParkedExpired", 1)
                continue
            read = self._read(self._load(parked.payload_ref, cache))
            events += [
                e for e in read.events if e.tracking_number == claim.tracking_number and e.carrier.value in carriers
            ]
            result.replayed += 1
        return events

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

    def _apply(
        self, claim: TrackingClaim, events: list[TrackingEvent], now: datetime, result: BatchResult, *, force: bool
    ) -> list[Event]:
        unique = list({e.content_hash: e for e in events}.values())
        new = self.store.append_events(claim, unique)
        result.events_new += len(new)
        result.events_duplicate += len(events) - len(new)
        # Nothing new: the state was applied when these events were new. Unless this is a redelivery (a
        # crash between append and apply): then re-apply; the conditional update makes it idempotent.
        if not new and not force:
            return []
        state = fold(unique)
        if state is None:
            return []
        winner = next(e for e in unique if e.content_hash == state.event_hash)
        stall = self._stall_mark(claim.shipment_id, state)
        quiet = timedelta(hours=self.config.poller.quiet_hours * self.config.poller.time_scale)
        change = self.store.apply_tracking_state(
            claim.shipment_id,
            state,
            last_event_text=winner.raw_text or None,
            stall=stall,
            now=now,
            poll_due=None if is_terminal(state.status) else now + quiet,  # same write: no extra UpdateItem
        )
        if change is None:
            return []
        result.changes.append(change)
        return self._events_for(change, winner, now)

    def _stall_mark(self, shipment_id: str, state: TrackingState) -> StallMark | None:
        rules = self.config.stall

        def due(province: str) -> Any:
            return stall_due(
                shipment_id=shipment_id,
                status=state.status,
                sub_status=state.sub_status,
                since=state.occurred_at,
                state_key=state.key,
                destination_province=province,
                rules=rules,
            )

        mark = due("")
        if mark is not None and mark.rule is StallRule.NO_UPDATE_IN_TRANSIT and rules.in_transit_hours_by_province:
            mark = due(self._province(shipment_id))
        if mark is None:
            return None
        return StallMark(due_at=mark.due_at, rule=mark.rule.value, episode=mark.episode)

    def _province(self, shipment_id: str) -> str:
        """The destination province: one GetItem per shipment and warm process (it never changes; the
        tracking claim does not carry it)."""
        try:
            cache = _PROVINCES.setdefault(self.store, collections.OrderedDict())
        except TypeError:  # a store that cannot be weakly referenced: no cache
            cache = collections.OrderedDict()
        province = cache.get(shipment_id)
        if province is None:
            province = self.store.get(shipment_id).destination_province
            cache[shipment_id] = province
            while len(cache) > _PROVINCE_CACHE_SIZE:
                cache.popitem(last=False)
        return province

    # ------------------------------------------------------------------------------ events
    def _events_for(self, change: StatusChange, winner: TrackingEvent, now: datetime) -> list[Event]:
        from parcelhub.events import ShipmentDelivered, ShipmentException, ShipmentStatusChanged, StallResolved

        out: list[Event] = []
        common: dict[str, Any] = {
            "shipment_id": change.shipment_id,
            "order_id": change.order_id,
            "carrier": Carrier(change.carrier) if change.carrier else winner.carrier,
            "provider": winner.provider,
            "tracking_number": change.tracking_number or winner.tracking_number,
        }
        detail: dict[str, Any] = {
            "sub_status": change.new_sub_status,
            "occurred_at": change.occurred_at,
            "location": winner.location,
            "description": winner.raw_text or None,
        }
        if change.old_status != change.new_status:
            out.append(
                ShipmentStatusChanged(**common, old_status=change.old_status, new_status=change.new_status, **detail)
            )
            if change.new_status is Status.DELIVERED:
                out.append(ShipmentDelivered(**common, **detail))
            elif change.new_status in (Status.EXCEPTION, Status.DELIVERY_FAILED):
                out.append(
                    ShipmentException(**common, old_status=change.old_status, new_status=change.new_status, **detail)
                )
        resolved = _alerted_episode(change)
        if resolved is not None:
            rule, episode, due_at = resolved
            out.append(
                StallResolved(
                    **common,
                    rule=rule,
                    episode_id=episode,
                    new_status=change.new_status,
                    sub_status=change.new_sub_status,
                    stalled_for_seconds=max(0, int((now - due_at).total_seconds())) if due_at else 0,
                    resolved_at=now,
                )
            )
        return out

    def _publish(self, outgoing: list[tuple[Event, _Group]], result: BatchResult) -> None:
        if not outgoing:
            return
        from parcelhub.events import PublishFailed

        try:
            self.publisher.publish([event for event, _ in outgoing])
        except PublishFailed as exc:
            failed_ids = {f.event.event_id for f in exc.failed}
            for event, group in outgoing:
                if event.event_id in failed_ids:
                    for source in group.sources.values():
                        result.failures.setdefault(source.message_id, f"PublishFailed: {event.detail_type()}")
            result.published += [e for e, _ in outgoing if e.event_id not in failed_ids]
            self.log.error("events not published", extra={"failed": len(failed_ids)})
            return
        result.published += [event for event, _ in outgoing]

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
            events = self._replay(claim, taken, now, result)
            published = self._apply(claim, events, now, result, force=True) if events else []
        except Exception:
            self._repark(taken, now)
            self.log.exception("parked replay failed", extra={"carrier": carrier, "tracking_number": tracking_number})
            raise
        if published:
            self.publisher.publish(published)
            result.published += published
        return result


def _alerted_episode(change: StatusChange) -> tuple[str, str, datetime | None] | None:
    """The stall episode the update ended, when one was alerted.

    Needs the store to report the previous stall attributes with the change (``stall_alerted_episode``,
    ``stall_rule``, ``stall_due_at`` on :class:`StatusChange`, from the ALL_OLD image it already reads);
    until it does, no ``StallResolved`` can be derived here.
    """
    episode = getattr(change, "stall_alerted_episode", None)
    if not episode:
        return None
    rule = str(getattr(change, "stall_rule", None) or str(episode).partition(":")[0])
    due_at = getattr(change, "stall_due_at", None)
    return rule, str(episode), due_at if isinstance(due_at, datetime) else None


__all__ = [
    "BatchResult",
    "InboundMessage",
    "IngestFailed",
    "Ingestor",
    "MetricSink",
]
