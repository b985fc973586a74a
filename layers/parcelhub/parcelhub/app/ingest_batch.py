"""The values one normalizer batch is made of: the messages it reads (and how each is archived, and its
scans redacted and overridden), what each message contributed to which (carrier, tracking number) group,
and what the batch did (:class:`BatchResult`, whose failures the handler reports as batch item failures)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parcelhub.domain.models import Carrier, Provider, TrackingEvent
from parcelhub.ports.store import ParkedPush, StatusChange, TrackingClaim


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


def _keys(group: _Group) -> list[tuple[str, str]]:
    """The claim keys a group's number may be claimed under: its carrier's first, then the alternates'."""
    carriers = [group.carrier, *sorted(group.alternates)]
    return [(carrier.value, group.tracking_number) for carrier in carriers]


@dataclass(slots=True)
class _Plan:
    """A group whose claim was found: its checked scans (and the parked pushes taken for it) to write."""

    group: _Group
    claim: TrackingClaim
    events: list[TrackingEvent]
    taken: list[ParkedPush]


def overridden(event: TrackingEvent, overrides: dict[str, Any]) -> TrackingEvent:
    fix = overrides.get(event.raw_code)
    if fix is None or (fix.status, fix.sub_status) == (event.status, event.sub_status):
        return event
    return event.model_copy(update={"status": fix.status, "sub_status": fix.sub_status})


def archive_line(message: InboundMessage) -> str:
    line = json.dumps({"message_id": message.message_id, "body": message.body}, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep the line, escaped
        line = json.dumps({"message_id": message.message_id, "body": message.body})
    return line


def redacted(event: TrackingEvent) -> TrackingEvent:
    """The scan as stored: phones and the signer's or courier's name masked in its texts (the place and the
    action stay). Its content hash is the carrier's original, so a redelivered scan is still the same one."""
    from parcelhub.security.masking import redact_text

    text = redact_text(event.raw_text)
    reason = redact_text(event.exception_text) if event.exception_text else event.exception_text
    if text == event.raw_text and reason == event.exception_text:
        return event
    return event.model_copy(update={"raw_text": text, "exception_text": reason})
