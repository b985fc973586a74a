"""A circuit breaker per provider, its state in the table (``CARRIER#<provider>`` / ``HEALTH``).

::

    closed --(failure_threshold failures within window_seconds)--> open        [CarrierCircuitOpened]
    open   --(cool_down_seconds passed; the FIRST caller takes the probe)--> half_open
    half_open --(the probe succeeds)--> closed                                 [CarrierCircuitClosed]
    half_open --(the probe fails)--> open again (same episode: no second alert)

Every transition is a conditional write on the item's version (``put_health(expected_version)``), so
with any number of concurrent Lambda invocations exactly one writer wins each transition. The transition
written IS the announcement: the stream relay (``parcelhub.app.outbox``) derives one
``CarrierCircuitOpened`` and one ``CarrierCircuitClosed`` per episode from the committed item, so an
invocation that dies right after the write still gets its transition announced.
A probe that never reports back (its Lambda died) is given up after ``cool_down_seconds`` and another
caller may probe.

Only provider *health* counts: ``CarrierUnavailable`` and ``CarrierAuthError``. A business rejection
(bad address) says nothing about the provider and is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from parcelhub.carriers.base import CarrierError
from parcelhub.config import CircuitBreakerConfig
from parcelhub.observability import add_metric, logger
from parcelhub.ports.store import CircuitHealth

#: optimistic-lock retries before giving up on a transition (someone else keeps writing: they decide)
MAX_WRITE_ATTEMPTS = 8


class CircuitOpen(CarrierError):
    """The provider's circuit is open (or its one half-open probe is taken): try the next candidate.

    The waybill workflow catches it by this class name; it is not retried against the same provider."""

    def __init__(self, provider: str, until: float | None = None) -> None:
        when = f" until {datetime.fromtimestamp(until, UTC).isoformat(timespec='seconds')}" if until else ""
        super().__init__(provider, f"circuit open{when}", "CIRCUIT_OPEN")
        self.until = until


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Health:
    """The stored state (a small JSON dict; times are epoch seconds)."""

    state: CircuitState = CircuitState.CLOSED
    failures: tuple[float, ...] = ()
    opened_at: float | None = None  # start of the episode (kept across re-opens)
    open_until: float | None = None
    probe_started_at: float | None = None
    last_error_code: str | None = None
    last_error_message: str | None = None
    closed_at: float | None = None  # when the probe closed the circuit (the CarrierCircuitClosed time)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Health:
        return cls(
            state=CircuitState(raw.get("state", CircuitState.CLOSED)),
            failures=tuple(float(x) for x in raw.get("failures", ())),
            opened_at=raw.get("opened_at"),
            open_until=raw.get("open_until"),
            probe_started_at=raw.get("probe_started_at"),
            last_error_code=raw.get("last_error_code"),
            last_error_message=raw.get("last_error_message"),
            closed_at=raw.get("closed_at"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "failures": list(self.failures),
            "opened_at": self.opened_at,
            "open_until": self.open_until,
            "probe_started_at": self.probe_started_at,
            "last_error_code": self.last_error_code,
            "last_error_message": self.last_error_message,
            "closed_at": self.closed_at,
        }


class CircuitBreaker:
    """Per-provider breaker over the store's versioned health items."""

    def __init__(
        self,
        store: CircuitHealth,
        config: CircuitBreakerConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    # ------------------------------------------------------------------------------------ reading

    def health(self, provider: str) -> Health:
        raw, _ = self.store.get_health(provider)
        return Health.of(raw)

    def blocked(self, provider: str) -> bool:
        """Read-only: would a call be refused right now? (open within the cool-down, or a live probe)."""
        return self._refusal(self.health(provider), self.clock()) is not None

    def _refusal(self, health: Health, now: float) -> float | None:
        """When the circuit refuses a call at ``now``: the time it may let one through; else None."""
        if health.state is CircuitState.OPEN and health.open_until is not None and now < health.open_until:
            return health.open_until
        if health.state is CircuitState.HALF_OPEN and health.probe_started_at is not None:
            lease_end = health.probe_started_at + self.config.cool_down_seconds
            if now < lease_end:
                return lease_end
        return None

    # ------------------------------------------------------------------------------------ transitions

    def acquire(self, provider: str) -> None:
        """Before calling the provider: raise :class:`CircuitOpen` unless the call may go through.

        After the cool-down exactly one caller wins the half-open probe (a conditional write)."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            raw, version = self.store.get_health(provider)
            health, now = Health.of(raw), self.clock()
            until = self._refusal(health, now)
            if until is not None:
                raise CircuitOpen(provider, until)
            if health.state is CircuitState.CLOSED:
                return
            probing = Health(
                state=CircuitState.HALF_OPEN,
                failures=(),
                opened_at=health.opened_at,
                open_until=health.open_until,
                probe_started_at=now,
                last_error_code=health.last_error_code,
                last_error_message=health.last_error_message,
            )
            if self.store.put_health(provider, probing.to_dict(), version):
                logger().info("circuit half-open: probing", extra={"provider": provider})
                return
        raise CircuitOpen(provider)

    def record_failure(self, provider: str, error: CarrierError) -> bool:
        """Count a health failure; returns True when this call opened the circuit (the relay announces it)."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            raw, version = self.store.get_health(provider)
            health, now = Health.of(raw), self.clock()
            window_start = now - self.config.window_seconds
            code, message = error.code, error.message[:200]
            if health.state is CircuitState.OPEN:
                return False  # an in-flight call admitted before the circuit opened: already counted
            if health.state is CircuitState.HALF_OPEN:
                reopened = Health(
                    state=CircuitState.OPEN,
                    opened_at=health.opened_at or now,
                    open_until=now + self.config.cool_down_seconds,
                    last_error_code=code,
                    last_error_message=message,
                )
                if self.store.put_health(provider, reopened.to_dict(), version):
                    logger().warning("circuit probe failed: open again", extra={"provider": provider})
                    add_metric("CircuitProbeFailed", provider=provider)
                    return False
                continue
            failures = (*[t for t in health.failures if t > window_start], now)
            if len(failures) < self.config.failure_threshold:
                counted = Health(failures=failures, last_error_code=code, last_error_message=message)
                if self.store.put_health(provider, counted.to_dict(), version):
                    return False
                continue
            opened = Health(
                state=CircuitState.OPEN,
                failures=failures,
                opened_at=now,
                open_until=now + self.config.cool_down_seconds,
                last_error_code=code,
                last_error_message=message,
            )
            if self.store.put_health(provider, opened.to_dict(), version):
                logger().warning("circuit opened", extra={"provider": provider, "failures": len(failures)})
                add_metric("CircuitOpened", provider=provider)
                return True
        return False

    def record_success(self, provider: str) -> bool:
        """A call went through; returns True when this call closed the circuit (the relay announces it)."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            raw, version = self.store.get_health(provider)
            health, now = Health.of(raw), self.clock()
            if health.state is CircuitState.CLOSED:
                if not health.failures:
                    return False
                # a success does not erase the window's failures (a flapping provider still trips),
                # so nothing to write: failures age out of the window by themselves.
                return False
            if health.state is CircuitState.OPEN:
                return False  # a call admitted before the circuit opened: only the probe closes it
            if self.store.put_health(provider, Health(closed_at=now).to_dict(), version):
                logger().info("circuit closed", extra={"provider": provider})
                add_metric("CircuitClosed", provider=provider)
                return True
        return False
