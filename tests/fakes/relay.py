"""What the outbox relay would announce from a fake store's changes (its stream)."""

from __future__ import annotations

from typing import TypeVar

from parcelhub.app.outbox import derive
from parcelhub.config import HubConfig
from parcelhub.events import Event
from tests.fakes.store import InMemoryShipmentStore

E = TypeVar("E", bound=Event)


class Announced:
    """The events :func:`parcelhub.app.outbox.derive` finds in the store's changes (read on every access)."""

    def __init__(self, store: InMemoryShipmentStore, config: HubConfig | None = None) -> None:
        self.store = store
        self.config = config or HubConfig()
        self._seen = 0

    @property
    def events(self) -> list[Event]:
        return [event for change in self.store.changes[self._seen :] for event in derive(change, self.config)]

    def of_type(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]

    def clear(self) -> None:
        """Forget what was announced so far (later changes only)."""
        self._seen = len(self.store.changes)
