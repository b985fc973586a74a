"""The values one normalizer batch is made of: the messages it reads, what each message contributed to
which (carrier, tracking number) group, and what the batch did (:class:`BatchResult`, whose failures the
handler reports as batch item failures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from parcelhub.domain.models import Carrier, Provider, TrackingEvent
from parcelhub.ports.store import StatusChange


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One queue message as the use case sees it (the handler maps the SQS record to this)."""

    message_id: str
    body: str
    receive_count: int = 1


@dataclass(slots=True)
class BatchResult:
    """What a batch did. ``failures`` (message id -> reason) are reported as batch item failures."""

    archive_key: str | None = None
    failures: dict[str, str] = field(default_factory=dict)
    events_new: int = 0
    events_duplicate: int = 0
    flagged: int = 0
    parked: int = 0
    replayed: int = 0
    expired: int = 0
    corrected: int = 0
    changes: list[StatusChange] = field(default_factory=list)


class IngestFailed(Exception):
    """A message could not be ingested (the batch handler reports it; SQS redrives it to the DLQ)."""


@dataclass(slots=True)
class _Source:
    message_id: str
    payload_ref: str
    received_at: datetime
    redelivered: bool
    receive_count: int = 1


@dataclass(slots=True)
class _Group:
    carrier: Carrier
    tracking_number: str
    #: (scan, when its push was received, the message it came in)
    scans: list[tuple[TrackingEvent, datetime, str]] = field(default_factory=list)
    sources: dict[str, _Source] = field(default_factory=dict)
    #: other carriers the same push named for this number (Kuaidi100 auto-corrected company)
    alternates: set[Carrier] = field(default_factory=set)
    replay: bool = False
    #: the order reference the provider echoed back (Kdniao CallBack, SF orderid), when it did
    order_ref: str | None = None

    @property
    def redelivered(self) -> bool:
        return any(source.redelivered for source in self.sources.values())

    def split(self) -> list[_Group]:
        """One group per source message (a failing group is re-applied message by message)."""
        return [
            _Group(
                self.carrier,
                self.tracking_number,
                [scan for scan in self.scans if scan[2] == message_id],
                {message_id: source},
                set(self.alternates),
                self.replay,
                self.order_ref,
            )
            for message_id, source in self.sources.items()
        ]


@dataclass(slots=True)
class _Read:
    provider: Provider
    events: list[TrackingEvent]
    numbers: list[tuple[Carrier, str]]
    unmapped: list[str]
    received_at: datetime
    inferred: list[str] = field(default_factory=list)
    replay: bool = False
