"""Re-estimates in the tracking fold: at the milestones only, in the same write as the state, the carrier's
own estimate taken as it is, announced once per change; an unreadable lane history costs no update."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from parcelhub.app.ingest import Ingestor
from parcelhub.config import HubConfig
from parcelhub.domain.lanes import Histogram, Lane, LaneLevel, LaneStats, Milestone, clock_histogram_name, lane_key
from parcelhub.domain.models import CHINA_TZ
from parcelhub.domain.status import Status
from parcelhub.events import EstimatedDeliveryChanged
from parcelhub.ports.errors import StoreUnavailable
from tests.unit.ingest.test_ingest_usecase import World, lifecycle_events, poll_body

pytestmark = pytest.mark.unit

LANE = Lane("浙江省", "杭州市", "上海市", "上海市")


def lane_history() -> LaneStats:
    """ZTO Hangzhou -> Shanghai: ~30 working hours from pickup, ~8 from arrival, ~3 from out-for-delivery."""
    return LaneStats(
        {"delivered": 50},
        {
            clock_histogram_name(Milestone.PICKED_UP): Histogram.of([26.0 + k % 9 for k in range(50)]),
            clock_histogram_name(Milestone.ARRIVED_AT_DESTINATION_CITY): Histogram.of([6.0 + k % 5 for k in range(50)]),
            clock_histogram_name(Milestone.OUT_FOR_DELIVERY): Histogram.of([2.0 + k % 3 for k in range(50)]),
        },
    )


def estimating_world() -> World:
    world = World()
    world.store.lane_cells[("ZTO", "standard", LaneLevel.CITY, lane_key(LANE, LaneLevel.CITY))] = lane_history()
    world.ingestor = Ingestor(
        store=world.store,
        archive=world.archive,
        plugins=world.ingestor.plugins,
        config=HubConfig(),
        clock=world.clock,
        metric=world.metrics,
        lanes=world.store,
    )
    return world


def test_each_milestone_re_estimates_once_and_the_other_scans_leave_the_estimate() -> None:
    # Given a ZTO parcel on a lane with history
    world = estimating_world()
    shipment_id = world.shipment("ZT7700000001")
    events = lifecycle_events("ZT7700000001")
    seen: list[tuple[Status, str | None, int]] = []

    # When its scans arrive one by one (picked up, in transit, arrived, out for delivery, delivered)
    for event in events:
        world.clock.now = event.occurred_at + timedelta(minutes=5)
        world.ingest([poll_body([event])])
        stored = world.store.get(shipment_id)
        window = stored.estimated_delivery
        seen.append((stored.status, window.basis if window else None, world.store.lane_reads))

    # Then the lanes were read at the three milestones only, and each re-estimate rests on its milestone
    assert seen == [
        (Status.PICKED_UP, "lane:city:picked_up", 1),
        (Status.IN_TRANSIT, "lane:city:picked_up", 1),
        (Status.ARRIVED_AT_DESTINATION_CITY, "lane:city:arrived", 2),
        (Status.OUT_FOR_DELIVERY, "lane:city:out_for_delivery", 3),
        (Status.DELIVERED, "lane:city:out_for_delivery", 3),
    ]
    # And each change was announced once, in order, the window tightening as the parcel nears
    announced = world.publisher.of_type(EstimatedDeliveryChanged)
    assert [e.basis for e in announced] == ["lane:city:picked_up", "lane:city:arrived", "lane:city:out_for_delivery"]
    assert len({e.event_id for e in announced}) == 3
    widths = [e.latest - e.earliest for e in announced]
    assert widths[0] >= widths[1] >= widths[2]
    assert announced[1].previous_latest == announced[0].latest


def test_a_redelivered_batch_announces_no_second_estimate() -> None:
    # Given a parcel whose arrival scan was applied
    world = estimating_world()
    world.shipment("ZT7700000002")
    events = lifecycle_events("ZT7700000002", stages=3)
    world.clock.now = events[-1].occurred_at + timedelta(minutes=5)
    world.ingest([poll_body(events)])
    before = len(world.publisher.of_type(EstimatedDeliveryChanged))

    # When SQS delivers the same batch again (a crash after the write)
    world.ingest([poll_body(events)], receive_count=2)

    # Then nothing new is announced
    assert len(world.publisher.of_type(EstimatedDeliveryChanged)) == before == 1


def test_the_carriers_estimate_stands_in_for_defaults_but_not_for_the_lanes_history() -> None:
    # Given two parcels whose pickup scans carry the carrier's estimated delivery date; only one lane has history
    world = estimating_world()
    with_history = world.shipment("ZT7700000003")
    without_history = world.shipment("ZT7700000005", province="江苏省")
    carrier_date = datetime(2024, 5, 4, tzinfo=CHINA_TZ)  # a date: local midnight
    for number in ("ZT7700000003", "ZT7700000005"):
        scan = lifecycle_events(number, stages=1)[0].model_copy(update={"estimated_delivery_at": carrier_date})
        # When the scan arrives
        world.ingest([poll_body([scan])])

    # Then the lane's history wins where there is one, and the carrier's date (that whole day) stands in
    # for the configured defaults where there is none
    assert world.store.get(with_history).estimated_delivery.basis == "lane:city:picked_up"  # type: ignore[union-attr]
    window = world.store.get(without_history).estimated_delivery
    assert window is not None
    assert (window.basis, window.earliest, window.latest) == (
        "carrier",
        carrier_date,
        carrier_date + timedelta(days=1, seconds=-1),
    )


def test_an_unreadable_lane_history_still_applies_the_scan_without_an_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    world = estimating_world()
    shipment_id = world.shipment("ZT7700000004")

    def throttled(*_: object) -> object:
        raise StoreUnavailable("ProvisionedThroughputExceededException", code="ProvisionedThroughputExceededException")

    monkeypatch.setattr(world.store, "lane_stats", throttled)
    result = world.ingest([poll_body(lifecycle_events("ZT7700000004", stages=1))])

    stored = world.store.get(shipment_id)
    assert stored.status is Status.PICKED_UP
    assert stored.estimated_delivery is None
    assert not result.failures
    assert world.metrics.total("EstimateFailed") == 1


def test_a_pickup_and_an_in_transit_scan_in_one_push_re_estimate_from_the_pickup_once() -> None:
    # Given a parcel whose pickup and first in-transit scans come in one push
    world = estimating_world()
    shipment_id = world.shipment("ZT7700000006")
    events = lifecycle_events("ZT7700000006", stages=2)

    # When the push is applied, then a full snapshot of the same scans comes again with nothing new
    world.ingest([poll_body(events)])
    world.ingest([poll_body(events)])

    # Then the in-transit scan won, the estimate rests on the pickup, and the lanes were read once
    stored = world.store.get(shipment_id)
    assert stored.status is Status.IN_TRANSIT
    assert stored.estimated_delivery is not None
    assert stored.estimated_delivery.basis == "lane:city:picked_up"
    assert world.store.lane_reads == 1
    assert len(world.publisher.of_type(EstimatedDeliveryChanged)) == 1


def test_milestones_on_one_lane_within_a_minute_read_its_cells_once_and_later_ones_read_them_again() -> None:
    # Given two parcels on the same lane and a third on another
    world = estimating_world()
    first, second = world.shipment("ZT7700000011"), world.shipment("ZT7700000012")
    elsewhere = world.shipment("ZT7700000013", province="江苏省")
    start = lifecycle_events("ZT7700000011", stages=1)[0].occurred_at + timedelta(minutes=5)
    # When their pickups are applied 30 s apart, then a third on that lane 61 s after the first read
    for n, (number, at) in enumerate((("ZT7700000011", 0), ("ZT7700000012", 30), ("ZT7700000013", 40))):
        world.clock.now = start + timedelta(seconds=at)
        world.ingest([poll_body(lifecycle_events(number, stages=1))])
        assert world.store.lane_reads == [1, 1, 2][n]
    later = world.shipment("ZT7700000014")
    world.clock.now = start + timedelta(seconds=61)
    world.ingest([poll_body(lifecycle_events("ZT7700000014", stages=1))])
    # Then the second parcel used the first's cells (same estimate), the other lane and the later one read
    assert world.store.lane_reads == 3
    windows = [world.store.get(s).estimated_delivery for s in (first, second, elsewhere, later)]
    assert all(w is not None for w in windows)
    assert windows[0].basis == windows[1].basis == windows[3].basis == "lane:city:picked_up"  # type: ignore[union-attr]
