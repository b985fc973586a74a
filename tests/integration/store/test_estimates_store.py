"""The store's part of delivery estimates, on the fake and on DynamoDB (moto): the lane cells an estimate
reads in one BatchGetItem, and the estimate written with the waybill and with a winning tracking state
(announced once per change by the stream relay)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from parcelhub.adapters.dynamodb import DynamoShipmentStore
from parcelhub.adapters.dynamodb.lane_cells import ALL_TIME, add_expression, cell_pk
from parcelhub.app.outbox import derive
from parcelhub.config import HubConfig
from parcelhub.domain.lanes import DeliveryFact, Lane, LaneLevel, LaneStats, Outcome, contribution, lane_key
from parcelhub.domain.models import DeliveryWindow
from parcelhub.domain.status import state_of
from parcelhub.events import EstimatedDeliveryChanged
from tests.fakes.store import InMemoryShipmentStore
from tests.integration.store.conftest import Backend
from tests.integration.store.test_store_contract import NOW, a_shipment, a_trace, a_waybill, an_attempt, shipped

pytestmark = pytest.mark.integration

LANE = Lane("浙江省", "杭州市", "上海市", "上海市")


def a_fact(n: int, hours: float) -> DeliveryFact:
    created = datetime(2026, 9, 1, 2, tzinfo=UTC) + timedelta(days=n % 20)
    return DeliveryFact(
        shipment_id=f"S{n}", carrier="ZTO", provider="kdniao", service="standard", lane=LANE,
        outcome=Outcome.DELIVERED, created_at=created, picked_up_at=created + timedelta(hours=8),
        delivered_at=created + timedelta(hours=8 + hours), attempts=1,
    )  # fmt: skip


def seed(backend: Backend, level: LaneLevel, stats: LaneStats, carrier: str = "ZTO") -> None:
    """Given: what the scorecard writer's ADD updates leave in an all-time lane cell."""
    store = backend.store
    if isinstance(store, InMemoryShipmentStore):
        key = (carrier, "standard", level, lane_key(LANE, level))
        store.lane_cells[key] = store.lane_cells.get(key, LaneStats()) + stats
        return
    assert isinstance(store, DynamoShipmentStore)
    expression, names, values = add_expression(stats)
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": cell_pk(carrier, "standard", level, lane_key(LANE, level))}, "sk": {"S": ALL_TIME}},
        UpdateExpression=expression, ExpressionAttributeNames=names, ExpressionAttributeValues=values,
    )  # fmt: skip


def window(day: int, basis: str) -> DeliveryWindow:
    start = datetime(2025, 11, day, tzinfo=UTC)
    return DeliveryWindow(
        earliest=start, most_likely=start + timedelta(hours=10), latest=start + timedelta(days=1), confidence=0.9,
        basis=basis,
    )  # fmt: skip


def test_lane_stats_reads_every_level_of_the_lane_in_one_batch_get(backend: Backend) -> None:
    # Given 30 deliveries on the city lane, and the carrier-national cell; no province cell
    city = LaneStats()
    for n in range(30):
        city = city + contribution(a_fact(n, 40 + n % 5))
    seed(backend, LaneLevel.CITY, city)
    seed(backend, LaneLevel.NATIONAL, city + city)
    seed(backend, LaneLevel.CITY, city, carrier="SF")  # another carrier's cell is not asked for
    before = backend.calls["BatchGetItem"]

    # When an estimate reads the lane
    found = backend.store.lane_stats(["ZTO"], "standard", LANE)  # type: ignore[attr-defined]

    # Then both cells come back whole, the missing one is absent, in one request on DynamoDB
    assert set(found) == {("ZTO", LaneLevel.CITY), ("ZTO", LaneLevel.NATIONAL)}
    assert found[("ZTO", LaneLevel.CITY)] == city
    assert found[("ZTO", LaneLevel.NATIONAL)].count("delivered") == 60
    if backend.name == "moto":
        assert backend.calls["BatchGetItem"] - before == 1


def test_the_waybill_estimate_is_also_the_promise_and_a_milestone_moves_only_the_estimate(backend: Backend) -> None:
    store = backend.store
    shipment = a_shipment()
    store.create(shipment)
    first = window(13, "lane:city:created")

    # When the waybill is recorded with its estimate
    saved = store.save_waybill(shipment.shipment_id, a_waybill(), [an_attempt()], NOW, estimate=first)
    # Then it is the estimate and the promise
    assert (saved.estimated_delivery, saved.promised_delivery) == (first, first)

    # When the pickup scan wins with a re-estimate, and a later in-transit scan wins without one
    store.claim_tracking("ZTO", "78912345678901", shipment.shipment_id, shipment.order_id)
    moved = window(14, "lane:city:picked_up")
    store.apply_tracking_state(
        shipment.shipment_id, state_of(a_trace(0)), last_event_text="揽收", stall=None, now=NOW, estimate=moved
    )
    store.apply_tracking_state(shipment.shipment_id, state_of(a_trace(1)), last_event_text="在途", stall=None, now=NOW)

    # Then the estimate moved once, the promise stayed
    stored = store.get(shipment.shipment_id)
    assert (stored.estimated_delivery, stored.promised_delivery) == (moved, first)

    # And the stream relay announces each estimate once: at the waybill and at the pickup
    announced = [
        e for c in backend.changes() for e in derive(c, HubConfig()) if isinstance(e, EstimatedDeliveryChanged)
    ]
    assert [(e.basis, e.latest, e.previous_latest) for e in announced] == [
        ("lane:city:created", first.latest, None),
        ("lane:city:picked_up", moved.latest, first.latest),
    ]
    assert len({e.event_id for e in announced}) == 2


def test_a_losing_tracking_state_does_not_write_its_estimate(backend: Backend) -> None:
    store = backend.store
    shipment_id = shipped(store)
    store.apply_tracking_state(shipment_id, state_of(a_trace(1)), last_event_text="在途", stall=None, now=NOW)

    # When an older pickup scan arrives late with an estimate
    lost = store.apply_tracking_state(
        shipment_id, state_of(a_trace(0)), last_event_text="揽收", stall=None, now=NOW, estimate=window(20, "x")
    )

    # Then neither the state nor its estimate is written
    assert lost is None
    assert store.get(shipment_id).estimated_delivery is None
