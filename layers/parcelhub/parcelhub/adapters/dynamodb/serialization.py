"""Keys, time stamps and item shapes of the single table (ARCHITECTURE §3).

| item             | pk                              | sk                                   |
|------------------|---------------------------------|--------------------------------------|
| shipment         | ``SHP#<id>``                    | ``META``                             |
| order claim      | ``ORDER#<order_id>``            | ``ORDER``                            |
| tracking claim   | ``TRK#<carrier>#<tracking_no>`` | ``TRK``                              |
| event            | ``SHP#<id>``                    | ``EVT#<occurred_at UTC ISO>#<hash>`` |
| carrier health   | ``CARRIER#<provider>``          | ``HEALTH``                           |
| parked push      | ``PARK#<carrier>#<tracking_no>``| ``PUSH#<received_at UTC ISO>#<id>``  |
| lease            | ``LEASE#<name>``                | ``LEASE``                            |
| outbox event     | ``OUTBOX#<event_id>``           | ``OUTBOX``                           |

Sparse indexes (attributes present only while the shipment is in them):

* ``stall``: ``stall_pk = STALL#<shard>``, ``stall_sk = <due_at UTC ISO>``; INCLUDE projection of
  :data:`STALL_INDEX_ATTRIBUTES`, so a sweep needs no follow-up reads.
* ``poll``: ``poll_pk = POLL#<shard>``, ``poll_sk = <due_at UTC ISO>``; INCLUDE projection of
  :data:`POLL_INDEX_ATTRIBUTES`.
* ``recovery``: ``recovery_pk = RECOVER#<shard>``, ``recovery_sk = <due UTC ISO>`` while the shipment's
  waybill workflow has not settled it (INCLUDE ``shipment_id``).

Every time stamp used in a key or a condition is UTC with a fixed width
(``2025-11-11T08:00:00.000000Z``) so that DynamoDB's string order is time order.
Nested model fields are stored as native maps/lists of their pydantic JSON-mode form (floats as
numbers), top-level ``None`` values are omitted (so ``attribute_not_exists`` and sparse indexes work).
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from parcelhub.domain.models import (
    DeliveryReceipt,
    DeliveryWindow,
    ProofOfDelivery,
    SelectionRecord,
    Shipment,
    TrackingEvent,
)

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

META = "META"
ORDER = "ORDER"
TRK = "TRK"
HEALTH = "HEALTH"
LEASE = "LEASE"
OUTBOX = "OUTBOX"
EVENT_PREFIX = "EVT#"
PUSH_PREFIX = "PUSH#"

STALL_INDEX = "stall"
POLL_INDEX = "poll"
RECOVERY_INDEX = "recovery"
RECOVERY_ATTRS = ("recovery_pk", "recovery_sk", "recovery_due")
STALL_ATTRS = ("stall_pk", "stall_sk", "stall_rule", "stall_episode")
#: Set by ``mark_stall_alerted``: the alerted episode, when, and the due time it had in the index.
STALL_ALERT_ATTRS = ("stall_alerted", "stall_alerted_at", "stall_alerted_due")
POLL_ATTRS = ("poll_pk", "poll_sk")
#: Non-key attributes projected into the ``stall`` GSI (INCLUDE): what the detector's alert needs.
STALL_INDEX_ATTRIBUTES = (
    "shipment_id",
    "order_id",
    "status",
    "carrier",
    "provider",
    "tracking_number",
    "last_event_at",
    "last_event_text",
    "stall_rule",
    "stall_episode",
)
#: Non-key attributes projected into the ``poll`` GSI (INCLUDE): what the poller needs to call a provider.
POLL_INDEX_ATTRIBUTES = ("shipment_id", "carrier", "provider", "tracking_number")

_SHIPMENT_FIELDS = frozenset(Shipment.model_fields)
_EVENT_FIELDS = frozenset(TrackingEvent.model_fields)
_TIME_FIELDS = ("created_at", "updated_at", "last_event_at", "recovery_due")

# ------------------------------------------------------------------------------------------ time & keys


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO stamp (sorts like time). Naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError("store time stamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def shard_of(shipment_id: str, shards: int) -> int:
    """Stable shard of a shipment (CRC-32, the same in every process, unlike ``hash()``)."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    return zlib.crc32(shipment_id.encode("utf-8")) % shards


def shipment_pk(shipment_id: str) -> str:
    return f"SHP#{shipment_id}"


def order_pk(order_id: str) -> str:
    return f"ORDER#{order_id}"


def tracking_pk(carrier: str, tracking_number: str) -> str:
    return f"TRK#{carrier}#{tracking_number}"


def health_pk(provider: str) -> str:
    return f"CARRIER#{provider}"


def lease_pk(name: str) -> str:
    return f"LEASE#{name}"


def outbox_pk(event_id: str) -> str:
    return f"OUTBOX#{event_id}"


def park_pk(carrier: str, tracking_number: str) -> str:
    return f"PARK#{carrier}#{tracking_number}"


def event_sk(event: TrackingEvent) -> str:
    return f"{EVENT_PREFIX}{iso(event.occurred_at)}#{event.content_hash}"


def park_sk(received_at: datetime, payload_ref: str) -> str:
    digest = hashlib.sha256(payload_ref.encode("utf-8")).hexdigest()[:16]
    return f"{PUSH_PREFIX}{iso(received_at)}#{digest}"


def stall_pk(shard: int) -> str:
    return f"STALL#{shard}"


def poll_pk(shard: int) -> str:
    return f"POLL#{shard}"


def recovery_pk(shard: int) -> str:
    return f"RECOVER#{shard}"


def recovery_attributes(shipment_id: str, due_at: datetime, shards: int) -> dict[str, str]:
    """The attributes that put a shipment item into the sparse ``recovery`` index (and say when)."""
    return {
        "recovery_pk": recovery_pk(shard_of(shipment_id, shards)),
        "recovery_sk": iso(due_at),
        "recovery_due": iso(due_at),
    }


def stall_attributes(shipment_id: str, due_at: datetime, rule: str, episode: str, shards: int) -> dict[str, str]:
    """The attributes that put a shipment item into the sparse ``stall`` index."""
    return {
        "stall_pk": stall_pk(shard_of(shipment_id, shards)),
        "stall_sk": iso(due_at),
        "stall_rule": rule,
        "stall_episode": episode,
    }


# ------------------------------------------------------------------------------------------ item shapes


def _plain(value: Any) -> Any:
    """JSON-mode value -> something TypeSerializer accepts (floats become exact decimals)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _python(value: Any) -> Any:
    """TypeDeserializer value -> JSON-mode value (decimals back to int/float, sets to sorted lists)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _python(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_python(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(_python(item) for item in value)
    return value


def window_value(window: DeliveryWindow) -> dict[str, Any]:
    """A delivery window as the shipment item's map attribute (``estimated_delivery``, ``promised_delivery``)."""
    return {key: _plain(value) for key, value in window.model_dump(mode="json", exclude_none=True).items()}


def model_value(model: ProofOfDelivery | DeliveryReceipt) -> dict[str, Any]:
    """A proof of delivery or a receipt as the shipment item's map attribute (``proof``, ``receipt``)."""
    return {key: _plain(value) for key, value in model.model_dump(mode="json", exclude_none=True).items()}


def selection_value(selection: SelectionRecord) -> dict[str, Any]:
    """How the carrier was chosen, as the shipment item's map attribute ``selection``."""
    data = selection.model_dump(mode="json", exclude_none=True)
    return {key: _plain(value) for key, value in data.items()}


def shipment_to_item(shipment: Shipment) -> dict[str, Any]:
    data = shipment.model_dump(mode="json")
    for name in _TIME_FIELDS:
        moment = getattr(shipment, name)
        data[name] = iso(moment) if moment is not None else None
    item = {key: _plain(value) for key, value in data.items() if value is not None}
    item["pk"] = shipment_pk(shipment.shipment_id)
    item["sk"] = META
    return item


def shipment_from_item(item: Mapping[str, Any]) -> Shipment:
    data = {key: _python(value) for key, value in item.items() if key in _SHIPMENT_FIELDS}
    return Shipment.model_validate(data)


def event_to_item(shipment_id: str, event: TrackingEvent) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    item = {key: _plain(value) for key, value in data.items() if value is not None}
    item["pk"] = shipment_pk(shipment_id)
    item["sk"] = event_sk(event)
    item["shipment_id"] = shipment_id
    if event.time_flag is not None:
        item["time_flag"] = event.time_flag.value
    return item


def event_from_item(item: Mapping[str, Any]) -> TrackingEvent:
    data = {key: _python(value) for key, value in item.items() if key in _EVENT_FIELDS}
    return TrackingEvent.model_validate(data)


# ------------------------------------------------------------------------------------- wire (AttributeValue)


@functools.cache
def _serializer() -> TypeSerializer:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@functools.cache
def _deserializer() -> TypeDeserializer:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """Python item -> DynamoDB AttributeValue map."""
    serialize = _serializer().serialize
    return {key: serialize(_plain(value)) for key, value in item.items()}


def wire_value(value: Any) -> dict[str, Any]:
    return dict(_serializer().serialize(_plain(value)))


def from_wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB AttributeValue map -> Python item (numbers stay ``Decimal`` until a model reads them)."""
    deserialize = _deserializer().deserialize
    return {key: deserialize(value) for key, value in item.items()}
