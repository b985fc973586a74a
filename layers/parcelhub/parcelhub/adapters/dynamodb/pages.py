"""Tracking-page records: the shipment with its timeline in one Query, the order claim for the lookup
form, and the lookup form's attempt counters.

| item             | pk                              | sk                                   |
|------------------|---------------------------------|--------------------------------------|
| attempt counter  | ``RATE#<sha256(key)[:32]>``     | ``<window start UTC ISO>``           |

The shipment item (``sk = META``) sorts after its events (``sk = EVT#…``), so one Query of the
shipment's partition, newest first, returns the item and then the newest events. Counters expire with
the table's TTL (``expires_at``) one window after their own ends; the key is hashed, so neither a source
IP nor an order id is stored in the clear.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Expr, Table
from parcelhub.domain.models import Shipment, TrackingEvent
from parcelhub.ports.errors import ShipmentNotFound
from parcelhub.ports.store import OrderLookup

RATE_PREFIX = "RATE#"


def rate_pk(key: str) -> str:
    return RATE_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def window_start(now: datetime, window_seconds: int) -> datetime:
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % window_seconds, tz=UTC)


class TrackingPageRecords(Table):
    """The :class:`~parcelhub.ports.store.TrackingPages` and :class:`~parcelhub.ports.store.AttemptCounters`
    ports on the single table."""

    def shipment_with_timeline(self, shipment_id: str, limit: int = 200) -> tuple[Shipment, list[TrackingEvent]]:
        response = self._call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": ser.shipment_pk(shipment_id)}},
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        shipment: Shipment | None = None
        events: list[TrackingEvent] = []
        for wire in response.get("Items", []):
            item: dict[str, Any] = ser.from_wire(wire)
            sk = str(item.get("sk", ""))
            if sk == ser.META:
                shipment = ser.shipment_from_item(item)
            elif sk.startswith(ser.EVENT_PREFIX) and len(events) < limit:
                events.append(ser.event_from_item(item))
        if shipment is None:
            raise ShipmentNotFound(shipment_id)
        return shipment, events

    def find_order(self, order_id: str) -> OrderLookup | None:
        item = self._get_item(ser.order_pk(order_id), ser.ORDER, consistent=False)
        if item is None:
            return None
        digest = item.get("lookup_digest")
        return OrderLookup(
            order_id=order_id, shipment_id=str(item["shipment_id"]), lookup_digest=str(digest) if digest else None
        )

    def count_attempt(self, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
        start = window_start(now, window_seconds)
        expr = Expr()
        count = expr.n("attempts")
        expr.set("expires_at", ser.epoch(start + timedelta(seconds=2 * window_seconds)))
        expr.adds.append(f"{count} {expr.v(1)}")
        condition = f"attribute_not_exists({count}) OR {count} < {expr.v(limit)}"
        try:
            self._update(rate_pk(key), ser.iso(start), expr, condition)
        except ConditionFailed:
            return False
        return True
