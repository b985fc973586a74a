"""What the table committed, as the outbox relay reads it: one :class:`Change` per stream record.

Every state change others must hear of is announced from these (``parcelhub.app.outbox``), never from
the code path that wrote it: a write that committed is announced even when its writer died right after.
The DynamoDB adapter decodes stream records (``NEW_AND_OLD_IMAGES``) into these values; the in-memory
fake store records the same values for unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from parcelhub.domain.models import Shipment

#: ``status_source`` of a status written by the tracking fold (announced as ``ShipmentStatusChanged``)
TRACKING = "tracking"
#: ``status_source`` of a status written by the waybill workflow or the OMS API (announced by their own events)
WORKFLOW = "workflow"


@dataclass(frozen=True, slots=True)
class ShipmentImage:
    """A shipment item as committed, with the attributes of its indexes and of the winning scan."""

    shipment: Shipment
    #: who wrote the status: :data:`TRACKING` (the fold) or :data:`WORKFLOW`; None on items written before
    status_source: str | None = None
    last_event_location: str | None = None
    last_event_provider: str | None = None
    stall_rule: str | None = None
    stall_episode: str | None = None
    #: the stall episode whose alert was claimed, when, and the due time it had in the index
    alerted_episode: str | None = None
    alerted_at: datetime | None = None
    alerted_due: datetime | None = None


@dataclass(frozen=True, slots=True)
class HealthImage:
    """A provider's circuit-breaker item (the breaker's JSON state and its version)."""

    provider: str
    state: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True, slots=True)
class OutboxImage:
    """An event a use case staged in the table's outbox (``detail`` is the event's JSON)."""

    detail_type: str
    detail: str


Image = ShipmentImage | HealthImage | OutboxImage


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write: the item before (None for an insert) and after (None for a delete).

    ``record_id`` identifies the stream record (its sequence number): the relay reports the first one it
    could not announce, and the stream retries from there."""

    record_id: str
    old: Image | None
    new: Image | None


class ChangeDecoder(Protocol):
    """Turns a raw stream record into a :class:`Change`; None for items nobody announces (events, claims)."""

    def __call__(self, record: Mapping[str, Any]) -> Change | None: ...
