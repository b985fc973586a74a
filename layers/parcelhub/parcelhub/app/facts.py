"""Delivery facts: what parcelhub remembers of a shipment once it ended, derived from committed changes.

:func:`derive_fact` turns a shipment and its timeline into a :class:`~parcelhub.domain.lanes.DeliveryFact`.
It reads the timeline as a *set* (events deduplicated by content hash; each milestone is the earliest
scan of its kind), so any order and any duplication of the same scans give the same fact.

:class:`FactRecorder` is the second consumer of the table's stream (``functions/delivery_facts``): a
shipment item whose committed status *enters* an ending one (delivered, returned, lost, cancelled after
pickup) gives a fact, which lands in S3 (the history, JSON lines per day, at least once) and is recorded
through the :class:`~parcelhub.ports.analytics.Scorecards` port (the fact and every scorecard cell in one
transaction, conditional on the fact being new: exactly once however often the record is delivered).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from parcelhub.config import HubConfig
from parcelhub.domain.lanes import DeliveryFact, Lane, Outcome
from parcelhub.domain.models import Shipment, ShipmentKind, TrackingEvent
from parcelhub.domain.status import Status, SubStatus
from parcelhub.domain.tariff import Tariffs, price
from parcelhub.ports.analytics import FactArchive, Scorecards
from parcelhub.ports.changes import ChangeDecoder, ShipmentImage
from parcelhub.ports.store import Timeline

#: statuses of a parcel on its way (the first of them stands for the pickup when no pickup scan came)
_MOVING = frozenset(
    {
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.ARRIVED_AT_DESTINATION_CITY,
        Status.OUT_FOR_DELIVERY,
        Status.AVAILABLE_FOR_PICKUP,
        Status.DELIVERY_FAILED,
        Status.DELIVERED,
    }
)
_EXCEPTIONS = frozenset({Status.EXCEPTION, Status.DELIVERY_FAILED})
_ATTEMPTS = frozenset({Status.DELIVERY_FAILED, Status.DELIVERED})
#: the exception reason of a scan whose sub-status says nothing more
UNSPECIFIED = "UNSPECIFIED"


def ending(shipment: Shipment) -> bool:
    """Is the shipment in a status a fact is written at (cancelled counts; whether it was picked up is
    decided from the timeline)?"""
    status = shipment.status
    return status in {Status.DELIVERED, Status.RETURNED, Status.CANCELLED} or (
        status is Status.EXCEPTION and shipment.sub_status is SubStatus.LOST
    )


def _earliest(events: Iterable[TrackingEvent], statuses: frozenset[Status]) -> datetime | None:
    times = [event.occurred_at for event in events if event.status in statuses]
    return min(times) if times else None


def _outcome(shipment: Shipment, picked_up: datetime | None) -> Outcome | None:
    if shipment.status is Status.DELIVERED:
        return Outcome.DELIVERED
    if shipment.status is Status.RETURNED:
        return Outcome.RETURNED
    if shipment.status is Status.EXCEPTION and shipment.sub_status is SubStatus.LOST:
        return Outcome.LOST
    if shipment.status is Status.CANCELLED and picked_up is not None:
        return Outcome.CANCELLED_AFTER_PICKUP
    return None


def _fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _cost(shipment: Shipment, tariffs: Tariffs) -> tuple[int | None, bool, float | None]:
    """(fen, billed, chargeable kg): the billed freight when the provider reported it, else the tariff's."""
    if shipment.billed_cost is not None:
        return _fen(shipment.billed_cost.amount), True, None
    tariff = tariffs.tariff(shipment.carrier, shipment.service) if shipment.carrier else None
    if tariff is None:
        return None, False, None
    quote = price(
        tariff,
        shipment.parcels,
        origin_province=shipment.origin_province,
        destination_province=shipment.destination_province,
        declared_fen=_fen(shipment.declared_value.amount),
    )
    return quote.total_fen, False, quote.chargeable_kg


def derive_fact(shipment: Shipment, timeline: Iterable[TrackingEvent], tariffs: Tariffs) -> DeliveryFact | None:
    """The fact of an ended shipment (``None`` when it has not ended, or was cancelled before pickup, or
    has no waybill, or is not an order's: a tracked number's lane and price are unknown, a return is not a
    delivery). Pure, order-independent and idempotent in ``timeline``."""
    if shipment.kind is not ShipmentKind.ORDER or shipment.carrier is None or not ending(shipment):
        return None
    # the timeline as a set; scans with an implausible time (flagged by the ingest) never date a milestone
    events = [e for e in {e.content_hash: e for e in timeline}.values() if e.time_flag is None]
    picked_up = _earliest(events, frozenset({Status.PICKED_UP})) or _earliest(events, _MOVING)
    outcome = _outcome(shipment, picked_up)
    if outcome is None:
        return None
    delivered = _earliest(events, frozenset({Status.DELIVERED}))
    ended_by = {
        Outcome.DELIVERED: delivered,
        Outcome.RETURNED: _earliest(events, frozenset({Status.RETURNED})),
        Outcome.LOST: min((e.occurred_at for e in events if e.sub_status is SubStatus.LOST), default=None),
        Outcome.CANCELLED_AFTER_PICKUP: _earliest(events, frozenset({Status.CANCELLED})),
    }[outcome]
    reasons = {
        (e.sub_status.value if e.sub_status not in (SubStatus.NONE,) else UNSPECIFIED)
        for e in events
        if e.status in _EXCEPTIONS
    }
    failed = sum(1 for e in events if e.status is Status.DELIVERY_FAILED)
    cost, billed, weight = _cost(shipment, tariffs)
    promise = shipment.promised_delivery
    return DeliveryFact(
        shipment_id=shipment.shipment_id,
        carrier=shipment.carrier.value,
        provider=shipment.provider.value if shipment.provider else "",
        service=shipment.service.value,
        lane=Lane(
            shipment.origin_province,
            shipment.origin_city,
            shipment.destination_province,
            shipment.destination_city,
        ),
        outcome=outcome,
        created_at=shipment.created_at,
        picked_up_at=picked_up,
        arrived_at=_earliest(events, frozenset({Status.ARRIVED_AT_DESTINATION_CITY})),
        out_for_delivery_at=_earliest(events, frozenset({Status.OUT_FOR_DELIVERY})),
        first_attempt_at=_earliest(events, _ATTEMPTS),
        delivered_at=delivered if outcome is Outcome.DELIVERED else None,
        ended_at=ended_by or shipment.last_event_at or shipment.updated_at,
        attempts=failed + (1 if outcome is Outcome.DELIVERED and delivered else 0),
        exception_reasons=tuple(sorted(reasons)),
        promised_latest=promise.latest if promise else None,
        promised_most_likely=promise.most_likely if promise else None,
        cost_fen=cost,
        cost_billed=billed,
        weight_kg=weight,
    )


# ------------------------------------------------------------------------------------------ the consumer


def ended_now(change_old: ShipmentImage | None, change_new: ShipmentImage) -> bool:
    """Did this committed write move the shipment *into* an ending status?"""
    return ending(change_new.shipment) and (change_old is None or not ending(change_old.shipment))


@dataclass(slots=True)
class FactBatchResult:
    """What one stream batch did; ``failed_record`` (when set) is reported as the batch item failure."""

    records: int = 0
    facts: int = 0
    recorded: int = 0
    already_recorded: int = 0
    archived: int = 0
    failed_record: str | None = None
    reason: str | None = None
    recorded_ids: list[str] = field(default_factory=list)


def record_id(record: Mapping[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber") or record.get("eventID") or "")


class FactRecorder:
    """Stream records -> facts -> S3 (one object per day of the batch) -> scorecards (once per shipment).

    In stream order; the first record that cannot be handled is reported and the stream retries from it.
    A retried or replayed record is recorded again harmlessly: the scorecards' write is conditional on
    the fact being new, so it counts once."""

    def __init__(
        self,
        *,
        decode: ChangeDecoder,
        timeline: Timeline,
        scorecards: Scorecards,
        archive: FactArchive,
        config: Callable[[], HubConfig],
        metric: Callable[..., None] | None = None,
    ) -> None:
        self.decode = decode
        self.timeline = timeline
        self.scorecards = scorecards
        self.archive = archive
        self.config = config
        self._metric = metric

    def metric(self, name: str, value: float) -> None:
        if value <= 0:
            return
        if self._metric is not None:
            self._metric(name, value, "Count")
            return
        from parcelhub.observability import add_metric

        add_metric(name, value, "Count")

    def fact_of(self, record: Mapping[str, Any]) -> DeliveryFact | None:
        change = self.decode(record)
        if change is None or not isinstance(change.new, ShipmentImage):
            return None
        old = change.old if isinstance(change.old, ShipmentImage) else None
        if not ended_now(old, change.new):
            return None
        shipment = change.new.shipment
        return derive_fact(shipment, self.timeline.list_events(shipment.shipment_id), self.config().tariffs)

    def handle(self, records: Sequence[Mapping[str, Any]]) -> FactBatchResult:
        result = FactBatchResult(records=len(records))
        facts: list[tuple[str, DeliveryFact]] = []
        stopped: tuple[str, str] | None = None
        for record in records:
            try:
                fact = self.fact_of(record)
            except Exception as exc:  # the timeline could not be read: retry from here
                stopped = (record_id(record), f"{type(exc).__name__}: {exc}")
                break
            if fact is not None:
                facts.append((record_id(record), fact))
        result.facts = len(facts)
        if facts:
            try:
                self.archive.put_facts([fact for _, fact in facts])
                result.archived = len(facts)
            except Exception as exc:
                return self._fail(result, facts[0][0], exc)
        for at, fact in facts:
            try:
                new = self.scorecards.record_fact(fact)
            except Exception as exc:
                return self._fail(result, at, exc)
            if new:
                result.recorded += 1
                result.recorded_ids.append(fact.shipment_id)
            else:
                result.already_recorded += 1
        if stopped is not None:
            result.failed_record, result.reason = stopped
        self.metric("DeliveryFactsRecorded", result.recorded)
        self.metric("DeliveryFactsAlreadyRecorded", result.already_recorded)
        return result

    def _fail(self, result: FactBatchResult, record_id: str, exc: Exception) -> FactBatchResult:
        result.failed_record, result.reason = record_id, f"{type(exc).__name__}: {exc}"
        self.metric("DeliveryFactsRecorded", result.recorded)
        self.metric("DeliveryFactsFailed", 1)
        return result


__all__ = ["FactBatchResult", "FactRecorder", "derive_fact", "ended_now", "ending"]
