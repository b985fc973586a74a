"""The table's outbox: events a durable workflow step announces are committed as items, and the stream
relay publishes them (``OUTBOX#<event_id>`` / ``OUTBOX``).

An :class:`~parcelhub.events.EventPublisher` whose "publish" is one conditional ``PutItem`` per event:
staging the same event twice (a retried task) writes nothing the second time, so the stream carries one
record per event id. Items expire through the table's TTL a week later (the stream has them by then).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Table
from parcelhub.events import Event

#: how long a staged event stays in the table after it was staged (the stream keeps records for 24 h)
OUTBOX_TTL = timedelta(days=7)


class DynamoOutbox(Table):
    """Stages events in the table; the stream relay (``functions/event_relay``) publishes them."""

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            item = {
                "pk": ser.outbox_pk(event.event_id),
                "sk": ser.OUTBOX,
                "event_id": event.event_id,
                "detail_type": event.detail_type(),
                "detail": event.detail_json(),
                "expires_at": ser.epoch(datetime.now(UTC) + OUTBOX_TTL),
            }
            try:
                self._call(
                    "put_item",
                    TableName=self.table_name,
                    Item=ser.to_wire(item),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ConditionFailed:
                continue  # staged before (a retried step): the stream has it already
