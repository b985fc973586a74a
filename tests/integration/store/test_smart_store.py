"""The ``smart`` strategy against the store, on the fake and on DynamoDB (moto): the selection record is
stored on the shipment, and what the strategy costs in DynamoDB requests per quote and per order (issue 18:
no more than one extra read per candidate)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from parcelhub.app.circuit import CircuitBreaker
from parcelhub.app.quotes import OrderFacts, Quoter
from parcelhub.app.waybill import WaybillDeps, WaybillService
from parcelhub.config import HubConfig
from parcelhub.domain.lanes import DeliveryFact, Lane, LaneLevel, Outcome, contribution
from parcelhub.domain.models import Provider
from parcelhub.domain.smart import Reason
from tests.fakes.events import InMemoryPublisher
from tests.integration.store.conftest import Backend
from tests.integration.store.test_estimates_store import seed
from tests.integration.store.test_store_contract import NOW, a_shipment

pytestmark = pytest.mark.integration

LANE = Lane("浙江省", "杭州市", "上海市", "上海市")
SHIPMENT = "shp_01JCZ00000000001"  # a_shipment()'s id
SMART = HubConfig.model_validate(
    {"selection": {"strategy": "smart", "smart": {"promises": [{"name": "ten-days", "days": 10}]}}}
)


def _late_zto(backend: Backend, parcels: int = 40) -> None:
    """Given: ZTO deliveries on the lane, all after their promised latest delivery."""
    stats = None
    for n in range(parcels):
        created = NOW - timedelta(days=30) + timedelta(hours=6 * n)
        fact = DeliveryFact(
            shipment_id=f"H{n}", carrier="ZTO", provider="kdniao", service="standard", lane=LANE,
            outcome=Outcome.DELIVERED, created_at=created, picked_up_at=created + timedelta(hours=8),
            delivered_at=created + timedelta(hours=60), promised_latest=created + timedelta(hours=40), attempts=1,
        )  # fmt: skip
        stats = contribution(fact) if stats is None else stats + contribution(fact)
    assert stats is not None
    seed(backend, LaneLevel.CITY, stats)


def _not_used(*_: Any) -> Any:
    raise AssertionError("selection neither decrypts nor calls a provider")


def _service(backend: Backend, config: HubConfig) -> WaybillService:
    return WaybillService(
        WaybillDeps(
            store=backend.store,
            publisher=InMemoryPublisher(),
            decrypt_party=_not_used,
            plugin=_not_used,
            labels=None,
            config=lambda: config,
            callback_url=lambda provider: "",
            lanes=backend.store,
            now=lambda: NOW,
            epoch=NOW.timestamp,
        )
    )


def test_the_smart_choice_is_stored_on_the_shipment(backend: Backend) -> None:
    # Given a shipment and a lane on which ZTO is late
    backend.store.create(a_shipment())
    _late_zto(backend)
    # When the waybill workflow selects its carriers under the smart strategy
    plan = _service(backend, SMART).select_carriers(SHIPMENT)
    # Then SF is tried first, ZTO stays as the backup, and the shipment records the choice and why
    assert [c.carrier.value for c in plan.remaining] == ["SF", "ZTO"]
    assert plan.rule == f"smart:{Reason.CHEAPEST_MEETING_PROMISE.value}"
    stored = backend.store.get(SHIPMENT).selection
    assert stored is not None
    assert (stored.strategy, stored.carrier.value, stored.reason) == ("smart", "SF", "cheapest_meeting_promise")
    zto = next(o for o in stored.options if o.carrier.value == "ZTO")
    assert (zto.available, zto.blocked, zto.lane_deliveries, zto.lane_on_time_rate) == (False, "lane_on_time", 40, 0)
    assert stored.promise == "ten-days"
    assert stored.promise_by is not None


def _requests(moto_backend: Backend, action: Any) -> dict[str, int]:
    moto_backend.calls.clear()
    action()
    return dict(moto_backend.calls)


def test_requests_per_quote_and_per_order(moto_backend: Backend) -> None:
    # Given a shipment with lane history for one of its two candidates
    store = moto_backend.store
    store.create(a_shipment())
    _late_zto(moto_backend)
    circuit = CircuitBreaker(store, SMART.circuit)
    quoter = Quoter(store, lambda: SMART, circuit_open=lambda p: circuit.blocked(p.value))
    order = OrderFacts.of_shipment(store.get(SHIPMENT))

    # When a quote is made: one BatchGetItem of every lane cell, one circuit read per provider, no write
    per_quote = _requests(moto_backend, lambda: quoter.quote(order, NOW))
    assert per_quote == {"BatchGetItem": 1, "GetItem": 2}

    # When the waybill workflow selects under each strategy
    rules = _requests(moto_backend, lambda: _service(moto_backend, HubConfig()).select_carriers(SHIPMENT))
    smart = _requests(moto_backend, lambda: _service(moto_backend, SMART).select_carriers(SHIPMENT))
    # Then the smart strategy adds one BatchGetItem, one circuit read (the chosen provider's) and the write
    # of the selection record: two reads for two candidates
    assert rules == {"GetItem": 1}
    assert smart == {"GetItem": 2, "BatchGetItem": 1, "UpdateItem": 1}
    added_reads = smart["GetItem"] + smart["BatchGetItem"] - rules["GetItem"]
    assert added_reads <= len(quoter.quote(order, NOW).record.options)


def test_a_quote_skips_nothing_and_an_open_circuit_reroutes(backend: Backend) -> None:
    # Given SF's circuit open and a lane on which ZTO is late
    backend.store.create(a_shipment())
    _late_zto(backend)
    quoter = Quoter(backend.store, lambda: SMART, circuit_open=lambda p: p is Provider.SF)
    order = OrderFacts.of_shipment(backend.store.get(SHIPMENT))
    # When quoted both ways (every circuit read, or only the chosen provider's)
    shown = quoter.quote(order, NOW).record
    lazy = quoter.quote(order, NOW, every_circuit=False).record
    # Then both choose the same: every candidate blocked, the fastest whose circuit is closed, flagged
    for record in (shown, lazy):
        assert (record.carrier.value, record.reason) == ("ZTO", "all_blocked_fastest")
        assert {o.carrier.value: o.blocked for o in record.options} == {"SF": "circuit_open", "ZTO": "lane_on_time"}
