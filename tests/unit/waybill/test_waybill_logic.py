"""Pure parts of the waybill use cases and the task contract: how a caught error becomes an attempt,
exact error classes for the ASL, failover events, the per-shipment claim, labels, task parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from functions.waybill_tasks.handler import TASK, CreateWaybill, MarkFailed, NextCandidate
from parcelhub.adapters.s3 import label_format, label_key
from parcelhub.app.circuit import CircuitOpen
from parcelhub.app.waybill import failovers
from parcelhub.app.waybill_claims import CLAIM_LEASE_SECONDS, WaybillClaims, WaybillInProgress
from parcelhub.app.waybill_payloads import TaskError, describe_error, exact
from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierRejected,
    CarrierUnavailable,
)
from parcelhub.domain.models import Carrier, Item, Money, Parcel, Provider, Shipment, WaybillAttempt
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

T0 = datetime(2025, 11, 11, 0, 0, 5, tzinfo=UTC)


def lambda_cause(exc: Exception) -> str:
    """The Cause Step Functions stores for a Lambda error (the runtime's error payload as JSON)."""
    return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": ["..."]})


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (CarrierRejected("sf", "收件地址不详", "8114"), ("rejected", "8114", "收件地址不详")),
        (
            CarrierUnavailable("kdniao", "HTTP 503 Service Unavailable"),
            ("unavailable", None, "HTTP 503 Service Unavailable"),
        ),
        (CarrierAuthError("sf", "数字签名无效", "A1006"), ("auth_error", "A1006", "数字签名无效")),
        (CircuitOpen("sf"), ("skipped_circuit_open", "CIRCUIT_OPEN", "circuit open")),
    ],
)
def test_a_caught_carrier_error_becomes_an_attempt(error: Exception, expected: tuple[str, str | None, str]) -> None:
    # Given the Catch output of a Lambda task that raised a carrier error
    caught = TaskError(Error=type(error).__name__, Cause=lambda_cause(error))
    # Then the outcome, the provider's code and its message are recovered
    assert describe_error(caught) == expected


def test_any_other_error_counts_as_unavailable_and_keeps_its_name() -> None:
    caught = TaskError(Error="States.Timeout", Cause="Task timed out after 30.00 seconds")
    assert describe_error(caught) == ("unavailable", "States.Timeout", "Task timed out after 30.00 seconds")
    assert describe_error(TaskError(Error="KeyError")) == ("unavailable", "KeyError", None)


def test_errors_leave_as_the_exact_class_the_asl_names() -> None:
    duplicate = CarrierDuplicateOrder("kdniao", "订单编号已存在", "106")
    assert type(exact(duplicate)) is CarrierRejected
    assert exact(duplicate).code == "106"
    same = CarrierUnavailable("sf", "timeout")
    assert exact(same) is same


def shipment(attempts: list[WaybillAttempt]) -> Shipment:
    return Shipment(
        shipment_id="shp_1",
        order_id="DTC-1",
        declared_value=Money(amount=Decimal(600)),
        parcels=[Parcel(weight_kg=1)],
        items=[Item(name="精华液", quantity=1)],
        receiver_masked={"name": "李*"},
        origin_province="浙江省",
        origin_city="杭州市",
        destination_province="上海市",
        destination_city="上海市",
        waybill_attempts=attempts,
        created_at=T0,
        updated_at=T0,
    )


def attempt(
    provider: Provider, carrier: Carrier, outcome: Any, seconds: int, code: str | None = None
) -> WaybillAttempt:
    return WaybillAttempt(
        provider=provider, carrier=carrier, outcome=outcome, error_code=code, at=T0 + timedelta(seconds=seconds)
    )


def test_one_failover_event_per_failed_candidate_of_this_run() -> None:
    # Given an earlier failed run, then this run: SF skipped (circuit), Kdniao rejected, SF-via-Kdniao created
    history = [
        attempt(Provider.KDNIAO, Carrier.ZTO, "unavailable", 0),
        attempt(Provider.SF, Carrier.SF, "skipped_circuit_open", 100, "CIRCUIT_OPEN"),
        attempt(Provider.KDNIAO, Carrier.ZTO, "rejected", 101, "105"),
        attempt(Provider.KDNIAO, Carrier.SF, "created", 102),
    ]
    events = failovers(shipment(history), T0 + timedelta(seconds=50), T0 + timedelta(seconds=103))
    # Then two failovers, numbered by their position in the shipment's attempts
    assert [(e.attempt, e.from_provider, e.to_provider, e.to_carrier, e.reason) for e in events] == [
        (2, Provider.SF, Provider.KDNIAO, Carrier.ZTO, "skipped_circuit_open"),
        (3, Provider.KDNIAO, Provider.KDNIAO, Carrier.SF, "rejected"),
    ]
    # and their ids are deterministic (a re-emitted failover dedupes downstream)
    again = failovers(shipment(history), T0 + timedelta(seconds=50), T0 + timedelta(seconds=999))
    assert [e.event_id for e in events] == [e.event_id for e in again]


def test_no_failover_when_the_first_candidate_succeeded() -> None:
    assert failovers(shipment([attempt(Provider.SF, Carrier.SF, "created", 1)]), T0, T0) == []


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_the_claim_admits_one_execution_at_a_time_with_a_lease() -> None:
    store, clock = InMemoryShipmentStore(), Clock()
    claims = WaybillClaims(store, clock)
    # Given execution A holds the claim
    claims.acquire("shp_1", "shp_1")
    claims.acquire("shp_1", "shp_1")  # its own task retries re-acquire
    # Then B is kept out while the lease runs
    with pytest.raises(WaybillInProgress) as held:
        claims.acquire("shp_1", "shp_1-r1")
    assert held.value.owner == "shp_1"
    claims.acquire("shp_2", "shp_2")  # other shipments are independent
    # and B gets it after A releases, or after the lease of a crashed A expires
    claims.release("shp_1", "shp_1")
    claims.acquire("shp_1", "shp_1-r1")
    clock.now += CLAIM_LEASE_SECONDS + 1
    claims.acquire("shp_1", "shp_1-r2")
    claims.release("shp_1", "shp_1-r1")  # a stale owner cannot release someone else's claim
    with pytest.raises(WaybillInProgress):
        claims.acquire("shp_1", "shp_1-r3")


@pytest.mark.parametrize(
    ("label", "ext"),
    [("<html><body>中通电子面单</body></html>", "html"), (' {"waybillNo":"SF1"}', "json"), ("[{}]", "json")],
)
def test_label_format(label: str, ext: str) -> None:
    assert label_format(label)[0] == ext


def test_label_key_is_scoped_by_shipment_and_safe() -> None:
    assert label_key("shp_1", "SF1234567890123", "json") == "labels/shp_1/SF1234567890123.json"
    assert label_key("shp/../x", "75 1", "html") == "labels/shp_.._x/75_1.html"


def test_task_input_is_parsed_by_action_and_strict() -> None:
    # Given the inputs the ASL builds
    create = TASK.validate_python(
        {
            "action": "create_waybill",
            "shipment_id": "shp_1",
            "candidate": {"provider": "sf", "carrier": "SF"},
            "execution": "shp_1-r2",
        }
    )
    assert isinstance(create, CreateWaybill)
    assert create.candidate.provider is Provider.SF
    plan = {"rule": "vip", "started_at": "2025-11-11T00:00:00Z", "candidate": None, "remaining": []}
    assert isinstance(
        TASK.validate_python({"action": "next_candidate", "shipment_id": "s", "plan": plan}), NextCandidate
    )
    failed = TASK.validate_python(
        {"action": "mark_failed", "shipment_id": "s", "plan": None, "execution": "s", "error": None}
    )
    assert isinstance(failed, MarkFailed)
    # Then an unknown action or field is refused
    with pytest.raises(ValidationError):
        TASK.validate_python({"action": "drop_table", "shipment_id": "s"})
    with pytest.raises(ValidationError):
        TASK.validate_python({"action": "select_carriers", "shipment_id": "s", "extra": 1})
