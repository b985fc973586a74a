"""Publishing events: the :class:`EventPublisher` port, its errors, and the pure PutEvents rules
(entries, their size as EventBridge counts it, batching, which error codes are worth a retry).

The AWS implementation is :class:`parcelhub.adapters.eventbridge.EventBridgePublisher`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from parcelhub.events.base import SOURCE, Event

#: PutEvents limits: 10 entries and 256 KiB per call (an entry's size: Source + DetailType + Detail +
#: Resources in UTF-8 bytes, + 14 bytes when Time is set).
MAX_ENTRIES_PER_CALL = 10
MAX_CALL_BYTES = 256 * 1024


class PublishError(Exception):
    """Base of publishing errors."""


@dataclass(frozen=True, slots=True)
class FailedEvent:
    event: Event
    code: str
    message: str


class PublishFailed(PublishError):
    """Some events could not be published after retries; ``failed`` lists them with EventBridge's code."""

    def __init__(self, failed: Sequence[FailedEvent]) -> None:
        codes = sorted({f.code for f in failed})
        super().__init__(f"{len(failed)} event(s) not published: {', '.join(codes)}")
        self.failed = list(failed)


@runtime_checkable
class EventPublisher(Protocol):
    """Publishes events; raises :class:`PublishFailed` with the ones that could not be published."""

    def publish(self, events: Iterable[Event]) -> None: ...


def to_entry(event: Event, *, bus_name: str, source: str = SOURCE) -> dict[str, Any]:
    """The PutEvents entry of an event."""
    return {
        "Source": source,
        "DetailType": event.detail_type(),
        "Detail": event.detail_json(),
        "EventBusName": bus_name,
        "Time": event.emitted_at,
    }


def entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents entry size as EventBridge counts it."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key, "")).encode("utf-8"))
    size += sum(len(str(r).encode("utf-8")) for r in entry.get("Resources", []))
    return size


def batches(
    sizes: Sequence[int], *, max_entries: int = MAX_ENTRIES_PER_CALL, max_bytes: int = MAX_CALL_BYTES
) -> Iterator[list[int]]:
    """Split entry indexes into PutEvents calls of <= ``max_entries`` entries and <= ``max_bytes``."""
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and (len(current) == max_entries or used + size > max_bytes):
            yield current
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        yield current


#: PutEvents error codes (per entry or per call) that a retry can cure.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalFailure",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestLimitExceeded",
    }
)
