"""An in-memory :class:`parcelhub.events.EventPublisher` for logic tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from parcelhub.events import MAX_CALL_BYTES, Event, FailedEvent, PublishFailed, entry_size, to_entry

E = TypeVar("E", bound=Event)


class InMemoryPublisher:
    """A publisher for logic tests: keeps the events (and the PutEvents entries they would become)."""

    def __init__(self, bus_name: str = "parcelhub-test") -> None:
        self.bus_name = bus_name
        self.events: list[Event] = []
        self.entries: list[dict[str, Any]] = []

    def publish(self, events: Iterable[Event]) -> None:
        batch = list(events)
        entries = [to_entry(e, bus_name=self.bus_name) for e in batch]
        too_large = [
            FailedEvent(e, "EntryTooLarge", "entry exceeds 256 KiB")
            for e, entry in zip(batch, entries, strict=True)
            if entry_size(entry) > MAX_CALL_BYTES
        ]
        if too_large:
            raise PublishFailed(too_large)
        self.events.extend(batch)
        self.entries.extend(entries)

    def of_type(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]

    def clear(self) -> None:
        self.events.clear()
        self.entries.clear()
