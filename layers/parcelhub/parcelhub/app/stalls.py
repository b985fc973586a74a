"""The stall sweep: read only what is due from the sparse, sharded stall index; alert once per episode.

Each due entry is *claimed* with one conditional write (``mark_stall_alerted``), and that committed claim
is the alert: the stream relay (``parcelhub.app.outbox``) derives ``ShipmentStalled`` from it. So progress
is saved per item — a sweep that times out or dies during a mass stall loses nothing: what it claimed is
announced, what it did not reach is still due for the next sweep — and overlapping or repeated sweeps
never alert twice. The sweep stops taking items when its time budget runs low.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from parcelhub.domain.policy import StallRules
from parcelhub.domain.stall import StallRule
from parcelhub.observability import add_metric, logger
from parcelhub.ports.store import QueryStats, StallIndex

#: stop taking items when less than this many seconds of the invocation are left
TIME_MARGIN_SECONDS = 5.0


@dataclass
class SweepReport:
    due: int = 0
    alerted: int = 0
    already_alerted: int = 0
    #: the sweep stopped on its time budget; the rest stays due for the next run
    out_of_time: bool = False
    stats: QueryStats = field(default_factory=QueryStats)

    def as_dict(self) -> dict[str, int | float]:
        return {
            "due": self.due,
            "alerted": self.alerted,
            "already_alerted": self.already_alerted,
            "out_of_time": int(self.out_of_time),
            "pages": self.stats.pages,
            "items_read": self.stats.items_read,
            "capacity_units": self.stats.capacity_units,
        }


def threshold_seconds(rule: str, rules: StallRules) -> int:
    """The rule's threshold (the in-transit default; province overrides are in the due time already)."""
    hours = {
        StallRule.NO_PICKUP.value: rules.no_pickup_hours,
        StallRule.NO_UPDATE_IN_TRANSIT.value: rules.in_transit_hours,
        StallRule.OUT_FOR_DELIVERY_TOO_LONG.value: rules.out_for_delivery_hours,
        StallRule.UNCOLLECTED_AT_PICKUP_POINT.value: rules.at_pickup_point_hours,
    }.get(rule, 0.0)
    return int(hours * 3600 * rules.time_scale)


class StallSweeper:
    """The sweep over the stall index port (its claims are announced by the stream relay)."""

    def __init__(self, *, stalls: StallIndex, rules: StallRules) -> None:
        self.stalls = stalls
        self.rules = rules

    def sweep(self, now: datetime, *, time_left: Callable[[], float] | None = None) -> SweepReport:
        store = self.stalls
        report = SweepReport()
        for due in store.query_due_stalls(now, stats=report.stats):
            if time_left is not None and time_left() < TIME_MARGIN_SECONDS:
                report.out_of_time = True
                break
            report.due += 1
            if due.carrier is None or due.tracking_number is None or due.provider is None:
                logger().warning("stall entry without a waybill", extra={"shipment_id": due.shipment_id})
                continue
            if not store.mark_stall_alerted(due.shipment_id, due.episode, now):
                report.already_alerted += 1
                continue
            report.alerted += 1
            add_metric("ShipmentStalled", rule=due.rule, carrier=str(due.carrier))
        add_metric("StallSweepItemsRead", report.stats.items_read)
        if report.out_of_time:
            add_metric("StallSweepOutOfTime")
        logger().info("stall sweep", extra=report.as_dict())
        return report
