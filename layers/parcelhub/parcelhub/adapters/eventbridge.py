"""The EventBridge implementation of :class:`parcelhub.events.EventPublisher` (PutEvents).

The client comes from :func:`parcelhub.adapters.aws.client` (built on first use, cached per process).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from parcelhub.adapters import aws
from parcelhub.events.base import SOURCE, Event
from parcelhub.events.publishing import (
    MAX_CALL_BYTES,
    RETRYABLE_CODES,
    FailedEvent,
    PublishFailed,
    batches,
    entry_size,
    to_entry,
)


def events_client() -> Any:
    """The EventBridge client, built on first use (never at import)."""
    return aws.client("events")


class EventBridgePublisher:
    """PutEvents in batches of <= 10 entries / 256 KiB, retrying throttled entries with full jitter."""

    def __init__(
        self,
        bus_name: str,
        *,
        source: str = SOURCE,
        client_factory: Callable[[], Any] = events_client,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not bus_name:
            raise ValueError("an event bus name is required")
        self.bus_name = bus_name
        self.source = source
        self._client_factory = client_factory
        self._max_attempts = max(1, max_attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._rng = rng

    @property
    def client(self) -> Any:
        return self._client_factory()

    def publish(self, events: Iterable[Event]) -> None:
        pending = list(events)
        if not pending:
            return
        entries = [to_entry(e, bus_name=self.bus_name, source=self.source) for e in pending]
        sizes = [entry_size(e) for e in entries]
        failed: list[FailedEvent] = []
        sendable: list[int] = []
        for index, size in enumerate(sizes):
            if size > MAX_CALL_BYTES:
                failed.append(FailedEvent(pending[index], "EntryTooLarge", f"{size} bytes > {MAX_CALL_BYTES}"))
            else:
                sendable.append(index)
        for batch in batches([sizes[i] for i in sendable]):
            indexes = [sendable[i] for i in batch]
            failed.extend(self._put(indexes, entries, pending))
        if failed:
            raise PublishFailed(failed)

    def _put(self, indexes: list[int], entries: list[Any], events: list[Event]) -> list[FailedEvent]:
        """One batch: send, keep the permanent failures, retry the throttled entries with full jitter."""
        from botocore.exceptions import BotoCoreError, ClientError

        failed: list[FailedEvent] = []
        todo = indexes
        last: dict[int, tuple[str, str]] = {}
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(self._rng() * min(self._max_delay, self._base_delay * 2**attempt))
            try:
                reply = self.client.put_events(Entries=[entries[i] for i in todo])
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code, message = str(error.get("Code", "ClientError")), str(error.get("Message", ""))
                last = dict.fromkeys(todo, (code, message))
                if code in RETRYABLE_CODES:
                    continue
                break
            except BotoCoreError as exc:
                last = dict.fromkeys(todo, (type(exc).__name__, str(exc)))
                continue
            retry: list[int] = []
            for index, result in zip(todo, reply.get("Entries", []), strict=True):
                code = result.get("ErrorCode")
                if not code:
                    continue
                if code in RETRYABLE_CODES:
                    retry.append(index)
                    last[index] = (str(code), str(result.get("ErrorMessage", "")))
                else:
                    failed.append(FailedEvent(events[index], str(code), str(result.get("ErrorMessage", ""))))
            todo = retry
            if not todo:
                return failed
        return failed + [FailedEvent(events[i], *last[i]) for i in todo]
