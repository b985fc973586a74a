"""Capacity planning on DynamoDB (moto, whose requests the store fixture serialises as DynamoDB does): the
ledger counts each waybill once however often (and however concurrently) it is counted; concurrent creates
never take a carrier past its cap or balance, and a failed create gives its count back; the smart choice
passes over a full carrier without an extra read; the planner sets balances and stages each alert once per
carrier, kind and day."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest

from parcelhub.adapters.dynamodb import DynamoShipmentStore
from parcelhub.adapters.dynamodb.outbox import DynamoOutbox
from parcelhub.app.capacity import CapacityGate, CapacityPlanner
from parcelhub.app.circuit import CircuitBreaker
from parcelhub.app.quotes import OrderFacts, Quoter
from parcelhub.carriers.base import CarrierRejected
from parcelhub.config import HubConfig
from parcelhub.domain.capacity import Reservation
from parcelhub.domain.delivery_clock import local_day
from parcelhub.domain.models import Carrier, Provider
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.ports.errors import StoreUnavailable
from tests.fakes.transaction_conflicts import TransactionConflicts
from tests.integration.store.conftest import TABLE, Backend
from tests.integration.store.test_smart_store import SHIPMENT, _service
from tests.integration.store.test_store_contract import NOW, a_shipment

pytestmark = pytest.mark.integration

ZTO = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO)
TODAY = local_day(NOW)


def config(**capacity: Any) -> HubConfig:
    return HubConfig.model_validate({"capacity": {"enabled": True} | capacity})


def ledger(backend: Backend) -> DynamoShipmentStore:
    store = backend.store
    assert isinstance(store, DynamoShipmentStore)
    return store


def test_a_waybill_is_counted_once_however_often_and_concurrently_it_is_counted(moto_backend: Backend) -> None:
    store = ledger(moto_backend)
    # Given a balance of 10 numbers stated for ZTO
    store.set_balance("ZTO", 10, "configured", NOW)
    # When one shipment's waybill is counted 8 times from 4 threads, and two other shipments once each
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: store.record_intake("ZTO", "shp_a", TODAY), range(8)))
    store.record_intake("ZTO", "shp_b", TODAY)
    store.record_intake("ZTO", "shp_c", TODAY - timedelta(days=1))
    # Then the first count won and the others changed nothing
    assert results.count(True) == 1
    standing = store.standing(["ZTO"], TODAY)["ZTO"]
    assert (standing.intake_today, standing.balance_left, standing.balance_source) == (2, 7, "configured")
    history, again = store.intake_history("ZTO", TODAY - timedelta(days=3), TODAY)
    assert history == {TODAY - timedelta(days=1): 1, TODAY: 2}
    assert again == standing


def test_concurrent_creates_never_take_a_carrier_past_its_cap(moto_backend: Backend) -> None:
    store = ledger(moto_backend)
    gate = CapacityGate(store, lambda: config(carriers={"ZTO": {"daily_cap": 5}}))

    def admit(n: int) -> str:
        try:
            gate.admit(ZTO, f"shp_{n}", NOW)
        except CarrierRejected as refused:
            return refused.code
        return "admitted"

    # When 12 shipments ask for ZTO at once, from 6 threads
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(admit, range(12)))
    # Then exactly the cap was admitted (each admission is one conditional write on the day's item)
    assert outcomes.count("admitted") == 5
    assert outcomes.count("CAPACITY_CAP_REACHED") == 7
    assert store.standing(["ZTO"], TODAY)["ZTO"].intake_today == 5
    # and tomorrow it takes parcels again
    assert gate.admit(ZTO, "shp_tomorrow", NOW + timedelta(days=1)) is Reservation.NEW


def test_a_failed_create_gives_its_count_back_and_a_second_run_does_not(moto_backend: Backend) -> None:
    store = ledger(moto_backend)
    gate = CapacityGate(store, lambda: config(carriers={"ZTO": {"daily_cap": 1}}))
    # Given one run admitted the shipment, and a second run of the same shipment finds it held
    assert gate.admit(ZTO, "shp_1", NOW) is Reservation.NEW
    assert gate.admit(ZTO, "shp_1", NOW) is Reservation.HELD
    # When the create fails and its count is given back
    gate.release(Carrier.ZTO, "shp_1", NOW)
    # Then the day has room again, and a second release finds nothing to give back
    assert store.standing(["ZTO"], TODAY)["ZTO"].intake_today == 0
    assert store.release("ZTO", "shp_1", TODAY) is False
    assert gate.admit(ZTO, "shp_2", NOW) is Reservation.NEW
    # and a waybill recorded after its reservation is not counted again
    gate.count(Carrier.ZTO, "shp_2", NOW)
    assert store.standing(["ZTO"], TODAY)["ZTO"].intake_today == 1


def test_a_used_up_balance_refuses_the_next_create(moto_backend: Backend) -> None:
    store = ledger(moto_backend)
    gate = CapacityGate(store, config)
    store.set_balance("ZTO", 2, "provider", NOW)
    assert [gate.admit(ZTO, f"shp_{n}", NOW) for n in range(2)] == [Reservation.NEW, Reservation.NEW]
    with pytest.raises(CarrierRejected) as refused:
        gate.admit(ZTO, "shp_3", NOW)
    assert refused.value.code == "CAPACITY_BALANCE_EXHAUSTED"
    assert store.standing(["ZTO"], TODAY)["ZTO"].balance_left == 0


def test_capacity_planning_off_makes_no_request(moto_backend: Backend) -> None:
    off = CapacityGate(ledger(moto_backend), HubConfig)
    moto_backend.calls.clear()
    assert off.admit(ZTO, "shp_1", NOW) is None
    off.count(Carrier.ZTO, "shp_1", NOW)
    assert not moto_backend.calls


SMART_CAPPED = {
    "selection": {"strategy": "smart", "smart": {"promises": [{"name": "ten-days", "days": 10}]}},
    "capacity": {"enabled": True, "carriers": {"ZTO": {"daily_cap": 1}}},
}


def test_the_smart_choice_passes_over_a_full_carrier_in_the_same_one_read(moto_backend: Backend) -> None:
    store = ledger(moto_backend)
    smart = HubConfig.model_validate(SMART_CAPPED)
    store.create(a_shipment())
    order = OrderFacts.of_shipment(store.get(SHIPMENT))
    circuit = CircuitBreaker(store, smart.circuit)
    quoter = Quoter(store, lambda: smart, circuit_open=lambda p: circuit.blocked(p.value), capacity=store)
    # Given ZTO (the cheaper) has room: it is chosen
    assert quoter.quote(order, NOW).record.carrier is Carrier.ZTO
    # When it reached its cap of one parcel today
    store.record_intake("ZTO", "shp_other", TODAY)
    # Then the quote shows it blocked and chooses SF
    record = quoter.quote(order, NOW).record
    assert record.carrier is Carrier.SF
    assert {o.carrier.value: o.blocked for o in record.options} == {"SF": None, "ZTO": "cap_reached"}
    # and the workflow's choice reads the counters in the lane cells' BatchGetItem: no extra request
    moto_backend.calls.clear()
    service = _service(moto_backend, smart)
    service.deps.capacity = store
    plan = service.select_carriers(SHIPMENT)
    assert [c.carrier.value for c in plan.remaining] == ["SF", "ZTO"]
    assert dict(moto_backend.calls) == {"GetItem": 2, "BatchGetItem": 1, "UpdateItem": 1}


def _outbox_kinds(client: Any) -> list[str]:
    items = client.scan(TableName=TABLE)["Items"]
    return sorted(i["detail_type"]["S"] + ":" + i["detail"]["S"].split('"kind":"')[1].split('"')[0]
                  for i in items if i["pk"]["S"].startswith("OUTBOX#"))  # fmt: skip


def test_the_planner_sets_the_balance_and_alerts_once_a_day(moto_backend: Backend, dynamodb: Any) -> None:
    store = ledger(moto_backend)
    stated = NOW - timedelta(hours=1)
    policy = config(
        carriers={"ZTO": {"balance": 120, "balance_as_of": stated.isoformat(), "daily_cap": 100}},
        min_cover_days=3,
        query_provider_balance=False,
    )
    planner = CapacityPlanner(store, lambda: policy, publisher=DynamoOutbox(TABLE, client=dynamodb))
    # Given ZTO took 50 parcels a day for a week
    for day in range(1, 8):
        for n in range(50):
            store.record_intake("ZTO", f"shp_{day}_{n}", TODAY - timedelta(days=day))
    # When the planner runs
    first = planner.run(NOW)
    # Then the configured balance is stored, and 120 numbers at 50 a day (2.4 days) is under 3 days: an alert
    assert first.balances_set == ["ZTO"]
    zto = next(o for o in first.outlooks if o.carrier == "ZTO")
    assert (zto.balance_left, zto.cover_days) == (120, 2.4)
    assert first.alerts == [("ZTO", "balance_low")]
    assert _outbox_kinds(dynamodb) == ["CarrierCapacityAlert:balance_low"]
    # When it runs again the same day: the balance is not reset, and the alert is not staged again
    store.record_intake("ZTO", "shp_today", TODAY)
    second = planner.run(NOW + timedelta(minutes=30))
    assert second.balances_set == []
    assert next(o for o in second.outlooks if o.carrier == "ZTO").balance_left == 119
    assert _outbox_kinds(dynamodb) == ["CarrierCapacityAlert:balance_low"]
    # and the next day it is judged afresh
    planner.run(NOW + timedelta(days=1))
    assert _outbox_kinds(dynamodb) == ["CarrierCapacityAlert:balance_low"] * 2


def test_the_provider_balance_replaces_the_configured_one_and_a_failed_query_keeps_it(
    moto_backend: Backend, dynamodb: Any
) -> None:
    store = ledger(moto_backend)
    policy = config(carriers={"ZTO": {"balance": 500, "balance_as_of": NOW.isoformat()}})
    answers: list[int | Exception] = [4000, CarrierRejected("kdniao", "no balance limit", "105")]

    asked: list[tuple[Carrier, list[Provider]]] = []

    def provider_balance(carrier: Carrier, providers: Sequence[Provider]) -> int | None:
        asked.append((carrier, list(providers)))
        if carrier is not Carrier.ZTO:
            return None
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    planner = CapacityPlanner(store, lambda: policy, provider_balance=provider_balance)
    planner.run(NOW)
    # ZTO's balance is asked of the provider the rules send ZTO through, SF's of SF's
    assert asked[:2] == [(Carrier.ZTO, [Provider.KDNIAO]), (Carrier.SF, [Provider.SF])]
    assert store.standing(["ZTO"], TODAY)["ZTO"].balance_left == 4000
    assert store.standing(["ZTO"], TODAY)["ZTO"].balance_source == "provider"
    # When the provider cannot answer: the stored balance stands (the configured one is not newer)
    planner.run(NOW + timedelta(hours=1))
    assert store.standing(["ZTO"], TODAY)["ZTO"].balance_left == 4000


def test_the_capacity_policy_rejects_inconsistent_configuration() -> None:
    with pytest.raises(ValueError, match="balance and balance_as_of go together"):
        config(carriers={"ZTO": {"balance": 10}})
    with pytest.raises(ValueError, match="before start"):
        config(promotions=[{"name": "618", "start": date(2026, 6, 18), "end": date(2026, 6, 1), "multiplier": 2}])


def test_an_admission_cancelled_by_a_concurrent_transaction_is_sent_again(moto_backend: Backend, dynamodb: Any) -> None:
    store = ledger(moto_backend)
    gate = CapacityGate(store, lambda: config(carriers={"ZTO": {"daily_cap": 5}}))
    # Given DynamoDB cancels the next two transactions for a conflict on the day's item
    conflicts = TransactionConflicts.first(2).register(dynamodb.meta.events)
    # When a create is admitted
    assert gate.admit(ZTO, "shp_1", NOW) is Reservation.NEW
    # Then the third send went through, and the shipment is counted once
    assert conflicts.sent == 3
    assert store.standing(["ZTO"], TODAY)["ZTO"].intake_today == 1
    # and a conflict that does not clear is the store's retryable answer (the workflow retries the step)
    conflicts.unregister(dynamodb.meta.events)
    TransactionConflicts.first(50).register(dynamodb.meta.events)
    with pytest.raises(StoreUnavailable):
        gate.admit(ZTO, "shp_2", NOW)
    assert store.standing(["ZTO"], TODAY)["ZTO"].intake_today == 1
