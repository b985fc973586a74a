"""The table's stream (``NEW_AND_OLD_IMAGES``) read as :class:`~parcelhub.ports.changes.Change` values.

Only the items something is announced from are decoded: shipments (``SHP#…``/``META``), carrier health
(``CARRIER#…``/``HEALTH``) and staged outbox events (``OUTBOX#…``/``OUTBOX``). Everything else (tracking
events, claims, parked pushes, leases) gives ``None``. The template's event source filter sends only
those three kinds to the relay; this module does not rely on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.ports.changes import Change, HealthImage, Image, OutboxImage, ShipmentImage

#: the sort keys of the items the relay reads (the event source mapping's filter uses the same list)
ANNOUNCED_SORT_KEYS = (ser.META, ser.HEALTH, ser.OUTBOX)


def decode_record(record: Mapping[str, Any]) -> Change | None:
    """A Lambda DynamoDB stream record -> the change it carries (``None``: nothing to announce from it)."""
    data = record.get("dynamodb") or {}
    keys = ser.from_wire(data.get("Keys") or {})
    if str(keys.get("sk", "")) not in ANNOUNCED_SORT_KEYS:
        return None
    old = _image(data.get("OldImage"))
    new = _image(data.get("NewImage"))
    if old is None and new is None:
        return None
    return Change(record_id=str(data.get("SequenceNumber", "")), old=old, new=new)


def _image(wire: Mapping[str, Any] | None) -> Image | None:
    if not wire:
        return None
    item = ser.from_wire(wire)
    pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
    if sk == ser.META and pk.startswith("SHP#"):
        return shipment_image(item)
    if sk == ser.HEALTH:
        return HealthImage(
            provider=str(item.get("provider") or pk.removeprefix("CARRIER#")),
            state=json.loads(str(item.get("state") or "{}")),
            version=int(item.get("version", 0)),
        )
    if sk == ser.OUTBOX:
        return OutboxImage(detail_type=str(item["detail_type"]), detail=str(item["detail"]))
    return None


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value) if value not in (None, "") else None


def shipment_image(item: Mapping[str, Any]) -> ShipmentImage:
    """A shipment item (as ``from_wire`` gives it) with its index and winning-scan attributes."""
    alerted_at, alerted_due = _text(item, "stall_alerted_at"), _text(item, "stall_alerted_due")
    return ShipmentImage(
        shipment=ser.shipment_from_item(item),
        status_source=_text(item, "status_source"),
        last_event_location=_text(item, "last_event_location"),
        last_event_provider=_text(item, "last_event_provider"),
        stall_rule=_text(item, "stall_rule"),
        stall_episode=_text(item, "stall_episode"),
        alerted_episode=_text(item, "stall_alerted"),
        alerted_at=ser.parse_iso(alerted_at) if alerted_at else None,
        alerted_due=ser.parse_iso(alerted_due) if alerted_due else None,
    )
