"""The per-provider circuit breaker over the store's versioned health item (in-memory fake store, a
controllable clock): thresholds, window, cool-down, ONE half-open probe, one event per transition,
also under concurrency. The events are what the outbox relay derives from the committed health items."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from parcelhub.app.circuit import CircuitBreaker, CircuitOpen, CircuitState
from parcelhub.carriers.base import CarrierAuthError, CarrierUnavailable
from parcelhub.config import CircuitBreakerConfig, HubConfig
from parcelhub.events import CarrierCircuitClosed, CarrierCircuitOpened
from tests.fakes.relay import Announced
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

DOWN = CarrierUnavailable("sf", "HTTP 503", "503")


class Clock:
    def __init__(self, start: float = 1_762_819_200.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


CONFIG = CircuitBreakerConfig(failure_threshold=3, window_seconds=60, cool_down_seconds=30)


@pytest.fixture
def store() -> InMemoryShipmentStore:
    return InMemoryShipmentStore()


@pytest.fixture
def publisher(store: InMemoryShipmentStore) -> Announced:
    return Announced(store, HubConfig(circuit=CONFIG))


@pytest.fixture
def breaker(clock: Clock, store: InMemoryShipmentStore) -> CircuitBreaker:
    return CircuitBreaker(store, CONFIG, clock=clock)


def test_opens_after_n_failures_within_the_window_and_alerts_once(
    breaker: CircuitBreaker, clock: Clock, publisher: Announced
) -> None:
    # Given two failures, the circuit is still closed
    assert breaker.record_failure("sf", DOWN) is False
    clock.now += 10
    assert breaker.record_failure("sf", DOWN) is False
    breaker.acquire("sf")
    # When the third failure within 60 s arrives
    clock.now += 10
    assert breaker.record_failure("sf", DOWN) is True
    # Then it is open, calls are refused, and exactly one CarrierCircuitOpened (with its alert) was published
    assert breaker.blocked("sf")
    with pytest.raises(CircuitOpen) as refused:
        breaker.acquire("sf")
    assert type(refused.value).__name__ == "CircuitOpen"
    opened = publisher.of_type(CarrierCircuitOpened)
    assert len(opened) == 1
    assert opened[0].failures == 3
    assert opened[0].last_error_code == "503"
    assert opened[0].alert.message
    # and late failures of calls admitted before the opening change nothing
    assert breaker.record_failure("sf", DOWN) is False
    assert len(publisher.of_type(CarrierCircuitOpened)) == 1


def test_failures_outside_the_window_do_not_count(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(2):
        breaker.record_failure("sf", DOWN)
    clock.now += 61
    assert breaker.record_failure("sf", DOWN) is False
    assert breaker.health("sf").state is CircuitState.CLOSED
    assert not breaker.blocked("sf")


def test_after_the_cool_down_exactly_one_probe_goes_through_and_its_success_closes(
    breaker: CircuitBreaker, clock: Clock, publisher: Announced
) -> None:
    for _ in range(3):
        breaker.record_failure("sf", DOWN)
    # Given the cool-down has passed
    clock.now += 30
    assert not breaker.blocked("sf")
    # When two callers ask, the first gets the probe and the second is refused
    breaker.acquire("sf")
    assert breaker.health("sf").state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.acquire("sf")
    # When the probe succeeds, the circuit closes with one CarrierCircuitClosed
    assert breaker.record_success("sf") is True
    assert breaker.record_success("sf") is False
    assert breaker.health("sf").state is CircuitState.CLOSED
    closed = publisher.of_type(CarrierCircuitClosed)
    assert len(closed) == 1
    assert closed[0].opened_at == publisher.of_type(CarrierCircuitOpened)[0].opened_at
    breaker.acquire("sf")


def test_a_failed_probe_reopens_without_a_second_alert(
    breaker: CircuitBreaker, clock: Clock, publisher: Announced
) -> None:
    for _ in range(3):
        breaker.record_failure("sf", CarrierAuthError("sf", "invalid signature", "A1006"))
    clock.now += 31
    breaker.acquire("sf")
    assert breaker.record_failure("sf", DOWN) is False
    # Then it is open for another cool-down, and still only one CarrierCircuitOpened exists
    health = breaker.health("sf")
    assert health.state is CircuitState.OPEN
    assert health.open_until == clock.now + 30
    assert breaker.blocked("sf")
    assert len(publisher.of_type(CarrierCircuitOpened)) == 1


def test_a_probe_that_never_reports_back_is_given_up_after_the_cool_down(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure("sf", DOWN)
    clock.now += 30
    breaker.acquire("sf")  # the probe's Lambda dies here
    clock.now += 29
    assert breaker.blocked("sf")
    clock.now += 1
    breaker.acquire("sf")  # a new probe


def test_a_success_while_open_does_not_close_the_circuit(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure("sf", DOWN)
    assert breaker.record_success("sf") is False
    assert breaker.blocked("sf")


def test_providers_are_independent(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure("sf", DOWN)
    assert not breaker.blocked("kdniao")
    breaker.acquire("kdniao")


def test_concurrent_failures_open_the_circuit_exactly_once(breaker: CircuitBreaker, publisher: Announced) -> None:
    # Given 40 concurrent failing calls
    start = threading.Barrier(40)

    def fail() -> bool:
        start.wait()
        return breaker.record_failure("sf", DOWN)

    with ThreadPoolExecutor(max_workers=40) as pool:
        opened = list(pool.map(lambda _: fail(), range(40)))
    # Then exactly one caller opened it and one event exists
    assert opened.count(True) == 1
    assert len(publisher.of_type(CarrierCircuitOpened)) == 1


def test_concurrent_callers_after_the_cool_down_get_exactly_one_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure("sf", DOWN)
    clock.now += 30
    start = threading.Barrier(20)

    def ask() -> bool:
        start.wait()
        try:
            breaker.acquire("sf")
        except CircuitOpen:
            return False
        return True

    with ThreadPoolExecutor(max_workers=20) as pool:
        granted = list(pool.map(lambda _: ask(), range(20)))
    assert granted.count(True) == 1
