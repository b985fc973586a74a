"""The transactional outbox's relay: every announcement is derived from what the table committed.

The table's stream (``NEW_AND_OLD_IMAGES``) feeds ``functions/event_relay``; for each committed write
:func:`derive` compares the item before and after and names the events it means:

* shipment, the tracking fold wrote a new winning state that moved the status: ``ShipmentStatusChanged``
  (+ ``ShipmentDelivered`` / ``ShipmentException``);
* shipment, that new winning state ended an alerted stall episode: ``StallResolved``;
* shipment, the stall sweep claimed an episode's alert: ``ShipmentStalled``;
* shipment, a carrier order not kept was marked ``cancel_failed`` (every cancel failed):
  ``WaybillCancelFailed``;
* shipment, the write made or moved ``estimated_delivery`` (the waybill step, a milestone scan):
  ``EstimatedDeliveryChanged``;
* carrier health, closed -> open / half-open -> closed: ``CarrierCircuitOpened`` / ``CarrierCircuitClosed``;
* shipment, its return (``app.returns.return_view``) came to be, was collected, arrived or was cancelled:
  ``ReturnCreated``, ``ReturnPickedUp``, ``ReturnReceived``, ``ReturnCancelled``;
* an outbox item inserted (a workflow step staged it): that event (``WaybillCreated``, ``WaybillFailed``,
  ``CarrierFailover``).

So a change is announced even when its writer died right after the write, and a write that changed
nothing announces nothing. Every event id is a hash of the event's identity (shipment, status, scan
time; episode; provider and opening time; shipment and provider order): a record relayed twice gives
consumers the same id to dedupe.

Failure handling (:class:`OutboxRelay`): records are relayed in stream order; a ``PutEvents`` answer with
failed entries stops the batch and reports the first record not fully published (the stream retries from
it: never dropped). A record that cannot be turned into events (a bug, a hand-edited item) is set aside
with its content and the reason in the relay's dead-letter queue, so it cannot block the shard; once
fixed, ``python -m tools.recover redrive relay`` announces it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from parcelhub.app.circuit import CircuitState, Health
from parcelhub.app.stalls import threshold_seconds
from parcelhub.config import CircuitBreakerConfig, HubConfig
from parcelhub.domain.models import Carrier, Provider, Shipment
from parcelhub.domain.status import Status
from parcelhub.events import (
    MAX_ENTRIES_PER_CALL,
    CarrierCircuitClosed,
    CarrierCircuitOpened,
    DeliveryConfirmed,
    EstimatedDeliveryChanged,
    Event,
    EventPublisher,
    PublishFailed,
    ShipmentDelivered,
    ShipmentException,
    ShipmentStalled,
    ShipmentStatusChanged,
    StallResolved,
    WaybillCancelFailed,
    parse_event,
)
from parcelhub.ports.changes import TRACKING, Change, ChangeDecoder, HealthImage, OutboxImage, ShipmentImage
from parcelhub.ports.messaging import MessageSink


class Unannounceable(ValueError):
    """A committed change that should be announced lacks what the event needs (e.g. no waybill)."""


# ------------------------------------------------------------------------------------------ derivation


def derive(change: Change, config: HubConfig) -> list[Event]:
    """The events a committed change means (none for most writes). Pure: the same change, the same ids."""
    old, new = change.old, change.new
    if isinstance(new, ShipmentImage):
        return _shipment_events(old if isinstance(old, ShipmentImage) else None, new, config)
    if isinstance(new, HealthImage):
        return _circuit_events(old if isinstance(old, HealthImage) else None, new, config.circuit)
    if isinstance(new, OutboxImage) and old is None:
        return [parse_event(new.detail_type, new.detail)]
    return []


def _shipment_events(old: ShipmentImage | None, new: ShipmentImage, config: HubConfig) -> list[Event]:
    shipment, before = new.shipment, (old.shipment if old else None)
    out: list[Event] = []
    tracked = (
        new.status_source == TRACKING
        and shipment.status_key is not None
        and (before is None or before.status_key != shipment.status_key)
    )
    if tracked:
        old_status = before.status if before else None
        if old_status != shipment.status:
            out += _status_events(new, old_status)
        if old is not None and old.alerted_episode and old.alerted_episode == old.stall_episode:
            out.append(_resolved(old, new))
    if new.alerted_episode and (old is None or old.alerted_episode != new.alerted_episode):
        out.append(_stalled(new, config))
    out += _cancels_failed(before, shipment) + _estimate_changed(before, shipment) + _confirmed(old, new)
    return out + _return_events(before, shipment)


def _confirmed(old: ShipmentImage | None, new: ShipmentImage) -> list[Event]:
    """The write recorded the proof of delivery, or the receipt that backs it: once per change."""
    shipment, before = new.shipment, (old.shipment if old else None)
    proof, receipt = shipment.proof, shipment.receipt
    if proof is None or (before is not None and before.proof == proof and before.receipt == receipt):
        return []
    return [
        DeliveryConfirmed(
            **_tracked(new, scan_provider=False),
            signed_at=proof.signed_at,
            sign_type=proof.sign_type,
            station=proof.station,
            receipt=receipt.state if receipt else "none",
        )
    ]


def _estimate_changed(before: Shipment | None, shipment: Shipment) -> list[Event]:
    """The write made or moved the delivery estimate: once per change (the id is the window's)."""
    window, previous = shipment.estimated_delivery, before.estimated_delivery if before else None
    if window is None or window == previous:
        return []
    return [
        EstimatedDeliveryChanged(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            carrier=shipment.carrier,
            provider=shipment.provider,
            tracking_number=shipment.tracking_number,
            earliest=window.earliest,
            most_likely=window.most_likely,
            latest=window.latest,
            confidence=window.confidence,
            basis=window.basis,
            previous_latest=previous.latest if previous else None,
        )
    ]


def _cancels_failed(before: Shipment | None, shipment: Shipment) -> list[Event]:
    """A carrier order this write marked ``cancel_failed``: the ops alert (its reason is the write's
    ``cancel_failed`` line in ``waybill_attempts``)."""
    earlier = before.carrier_orders if before else {}
    out: list[Event] = []
    for key, order in shipment.carrier_orders.items():
        if order.state != "cancel_failed" or (key in earlier and earlier[key].state == "cancel_failed"):
            continue
        line = next(
            (
                a
                for a in reversed(shipment.waybill_attempts)
                if a.outcome == "cancel_failed" and (a.provider, a.carrier) == (order.provider, order.carrier)
            ),
            None,
        )
        out.append(
            WaybillCancelFailed(
                shipment_id=shipment.shipment_id,
                order_id=shipment.order_id,
                provider=order.provider,
                carrier=order.carrier,
                provider_order_id=order.order_id,
                tracking_number=order.tracking_number,
                cancel_attempts=max(1, order.cancel_attempts),
                error_code=line.error_code if line else None,
                error_message=line.error_message if line else None,
                failed_at=line.at if line else shipment.updated_at,
            )
        )
    return out


def _tracked(image: ShipmentImage, *, scan_provider: bool) -> dict[str, Any]:
    shipment = image.shipment
    provider = image.last_event_provider if scan_provider and image.last_event_provider else shipment.provider
    if shipment.carrier is None or provider is None or not shipment.tracking_number:
        raise Unannounceable(f"shipment {shipment.shipment_id} has no waybill to announce a tracking change of")
    return {
        "shipment_id": shipment.shipment_id,
        "order_id": shipment.order_id,
        "carrier": Carrier(shipment.carrier),
        "provider": Provider(provider),
        "tracking_number": shipment.tracking_number,
    }


def _status_events(new: ShipmentImage, old_status: Status | None) -> list[Event]:
    shipment = new.shipment
    if shipment.last_event_at is None:
        raise Unannounceable(f"shipment {shipment.shipment_id}: a tracking state without its scan time")
    common = _tracked(new, scan_provider=True)
    detail: dict[str, Any] = {
        "sub_status": shipment.sub_status,
        "occurred_at": shipment.last_event_at,
        "location": new.last_event_location,
        "description": shipment.last_event_text or None,
    }
    out: list[Event] = [ShipmentStatusChanged(**common, old_status=old_status, new_status=shipment.status, **detail)]
    if shipment.status is Status.DELIVERED:
        out.append(ShipmentDelivered(**common, **detail))
    elif shipment.status in (Status.EXCEPTION, Status.DELIVERY_FAILED):
        out.append(ShipmentException(**common, old_status=old_status, new_status=shipment.status, **detail))
    return out


def _resolved(old: ShipmentImage, new: ShipmentImage) -> StallResolved:
    resolved_at = new.shipment.updated_at
    due = old.alerted_due
    return StallResolved(
        **_tracked(new, scan_provider=True),
        rule=str(old.stall_rule or str(old.alerted_episode).partition(":")[0]),
        episode_id=str(old.alerted_episode),
        new_status=new.shipment.status,
        sub_status=new.shipment.sub_status,
        stalled_for_seconds=max(0, int((resolved_at - due).total_seconds())) if due else 0,
        resolved_at=resolved_at,
    )


def _stalled(new: ShipmentImage, config: HubConfig) -> ShipmentStalled:
    shipment = new.shipment
    rule = str(new.stall_rule or str(new.alerted_episode).partition(":")[0])
    detected = new.alerted_at or shipment.updated_at
    threshold = threshold_seconds(rule, config.stall)
    if shipment.last_event_at is not None:
        started = shipment.last_event_at.timestamp()
    elif new.alerted_due is not None:
        started = new.alerted_due.timestamp() - threshold
    else:
        started = detected.timestamp()
    return ShipmentStalled(
        **_tracked(new, scan_provider=False),
        status=shipment.status,
        rule=rule,
        threshold_seconds=threshold,
        stalled_for_seconds=max(0, int(detected.timestamp() - started)),
        last_event_text=shipment.last_event_text,
        last_event_at=shipment.last_event_at,
        episode_id=str(new.alerted_episode),
        detected_at=detected,
    )


def _return_events(before: Shipment | None, shipment: Shipment) -> list[Event]:
    """A return came to be, was collected, arrived or was cancelled (``app.returns.return_view`` of the
    item before and after): once per step, whichever write made it (the id is the return's)."""
    from parcelhub.app.returns import return_view
    from parcelhub.domain.returns import RANK, ReturnState
    from parcelhub.events import ReturnCancelled, ReturnCreated, ReturnPickedUp, ReturnReceived

    new = return_view(shipment)
    if new is None:
        return []
    old = return_view(before) if before is not None else None
    common: dict[str, Any] = {
        "shipment_id": shipment.shipment_id,
        "order_id": shipment.order_id,
        "carrier": shipment.carrier,
        "provider": shipment.provider,
        "tracking_number": shipment.tracking_number,
        "original_shipment_id": new.original_shipment_id,
        "reason": new.reason,
        "linked_from_tracking": new.linked_from_tracking,
    }
    out: list[Event] = []
    if old is None:
        window = shipment.pickup.window if shipment.pickup else shipment.pickup_window
        out.append(
            ReturnCreated(
                **common,
                return_state=new.state,
                pickup_window_start=window.start if window else None,
                pickup_window_end=window.end if window else None,
            )
        )
    ended = (ReturnState.CANCELLED, ReturnState.EXPIRED)
    if new.state in ended:
        if old is None or old.state is not new.state:
            out.append(ReturnCancelled(**common, return_state=new.state))
        return out
    before_rank = RANK[old.state] if old is not None and old.state not in ended else -1
    scanned_at = shipment.last_event_at
    if not new.linked_from_tracking and before_rank < RANK[ReturnState.PICKED_UP] <= RANK[new.state]:
        picked = scanned_at if new.state is ReturnState.PICKED_UP else None
        out.append(ReturnPickedUp(**common, picked_up_at=picked))
    if new.state is ReturnState.RECEIVED and (old is None or old.state is not ReturnState.RECEIVED):
        out.append(ReturnReceived(**common, received_at=scanned_at))
    return out


def _utc(epoch: float | None) -> datetime:
    return datetime.fromtimestamp(epoch if epoch is not None else 0, UTC)


def _circuit_events(old: HealthImage | None, new: HealthImage, config: CircuitBreakerConfig) -> list[Event]:
    before = Health.of(dict(old.state)) if old else Health()
    after = Health.of(dict(new.state))
    provider = Provider(new.provider)
    if before.state is CircuitState.CLOSED and after.state is CircuitState.OPEN:
        return [
            CarrierCircuitOpened(
                provider=provider,
                failures=max(1, len(after.failures)),
                window_seconds=max(1, round(config.window_seconds)),
                cool_down_seconds=max(1, round(config.cool_down_seconds)),
                opened_at=_utc(after.opened_at),
                half_open_at=_utc(after.open_until),
                last_error_code=after.last_error_code,
                last_error_message=after.last_error_message or None,
            )
        ]
    if before.state is CircuitState.HALF_OPEN and after.state is CircuitState.CLOSED:
        return [
            CarrierCircuitClosed(
                provider=provider,
                opened_at=_utc(before.opened_at),
                closed_at=_utc(after.closed_at) if after.closed_at else datetime.now(UTC),
            )
        ]
    return []


# ------------------------------------------------------------------------------------------ the relay


@dataclass(slots=True)
class RelayResult:
    """What one stream batch did; ``failed_record`` (when set) is reported as the batch item failure."""

    records: int = 0
    published: int = 0
    quarantined: int = 0
    failed_record: str | None = None
    reason: str | None = None
    by_type: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Item:
    record_id: str
    record: Mapping[str, Any]
    events: list[Event] = field(default_factory=list)
    error: Exception | None = None


def record_id(record: Mapping[str, Any]) -> str:
    """The stream record's sequence number (what Lambda's partial batch response names)."""
    return str((record.get("dynamodb") or {}).get("SequenceNumber") or record.get("eventID") or "")


class OutboxRelay:
    """Stream records -> events -> ``PutEvents``, in order, stopping at the first failure."""

    def __init__(
        self,
        *,
        publisher: EventPublisher,
        decode: ChangeDecoder,
        quarantine: MessageSink,
        config: Callable[[], HubConfig],
        metric: Callable[..., None] | None = None,
        log: Any | None = None,
    ) -> None:
        self.publisher = publisher
        self.decode = decode
        self.quarantine = quarantine
        self.config = config
        self._metric = metric
        self._log = log

    @property
    def log(self) -> Any:
        if self._log is None:
            from parcelhub.observability import logger

            self._log = logger()
        return self._log

    def metric(self, name: str, value: float = 1, **dimensions: str) -> None:
        if value <= 0:
            return
        if self._metric is not None:
            self._metric(name, value, "Count", **dimensions)
            return
        from parcelhub.observability import add_metric

        add_metric(name, value, "Count", **dimensions)

    def derive(self, record: Mapping[str, Any]) -> list[Event]:
        change = self.decode(record)
        return derive(change, self.config()) if change is not None else []

    def relay(self, records: Sequence[Mapping[str, Any]]) -> RelayResult:
        result = RelayResult(records=len(records))
        items: list[_Item] = []
        for record in records:
            item = _Item(record_id(record), record)
            try:
                item.events = self.derive(record)
            except Exception as exc:  # deterministic: retrying cannot help, it must not block the shard
                item.error = exc
            items.append(item)
        chunk: list[_Item] = []
        for item in items:
            if item.error is not None or sum(len(i.events) for i in chunk) + len(item.events) > MAX_ENTRIES_PER_CALL:
                if not self._flush(chunk, result):
                    return self._done(result)
                chunk = []
            if item.error is not None:
                if not self._set_aside(item, result):
                    return self._done(result)
                continue
            if item.events:
                chunk.append(item)
        self._flush(chunk, result)
        return self._done(result)

    def _flush(self, chunk: list[_Item], result: RelayResult) -> bool:
        events = [event for item in chunk for event in item.events]
        if not events:
            return True
        try:
            self.publisher.publish(events)
        except PublishFailed as exc:
            failed = {f.event.event_id for f in exc.failed}
            first = next((item for item in chunk if any(e.event_id in failed for e in item.events)), chunk[0])
            result.failed_record, result.reason = first.record_id, str(exc)
            result.published += sum(1 for e in events if e.event_id not in failed)
            self.metric("RelayPublishFailed", len(failed))
            self.log.warning(
                "events not published: the stream retries from this record",
                extra={"record": first.record_id, "failed": len(failed), "reason": str(exc)[:200]},
            )
            return False
        except Exception as exc:
            result.failed_record, result.reason = chunk[0].record_id, f"{type(exc).__name__}: {exc}"
            self.metric("RelayPublishFailed", len(events))
            self.log.exception("events not published: the stream retries from this record")
            return False
        result.published += len(events)
        result.by_type.update(e.detail_type() for e in events)
        return True

    def _set_aside(self, item: _Item, result: RelayResult) -> bool:
        error = item.error
        reason = f"{type(error).__name__}: {error}"[:1000]
        body = json.dumps({"reason": reason, "record": item.record}, ensure_ascii=False, default=str)
        try:
            self.quarantine.send([body])
        except Exception as exc:
            result.failed_record, result.reason = item.record_id, f"not set aside: {exc}"
            self.log.exception("record could not be set aside: the stream retries it")
            return False
        result.quarantined += 1
        self.metric("RelayRecordSetAside", 1, reason=type(error).__name__)
        self.log.error("stream record set aside: nothing announced", extra={"record": item.record_id, "reason": reason})
        return True

    def _done(self, result: RelayResult) -> RelayResult:
        self.metric("EventsRelayed", result.published)
        return result


__all__ = ["OutboxRelay", "RelayResult", "Unannounceable", "derive", "record_id"]
