"""The stall sweep: read only what is due from the sparse, sharded stall index; alert once per episode.

Each due entry is *claimed* with a conditional write (``mark_stall_alerted``) before its
``ShipmentStalled`` event is published, so overlapping or repeated sweeps never alert twice; if the
publish fails the claim is released and the next sweep retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from parcelhub.domain.policy import StallRules
from parcelhub.domain.stall import StallRule
from parcelhub.events import EventPublisher, ShipmentStalled
from parcelhub.observability import add_metric, logger
from parcelhub.ports.store import DueStall, QueryStats, StallIndex


@dataclass
class SweepReport:
    due: int = 0
    alerted: int = 0
    already_alerted: int = 0
    stats: QueryStats = field(default_factory=QueryStats)

    def as_dict(self) -> dict[str, int | float]:
        return {
            "due": self.due,
            "alerted": self.alerted,
            "already_alerted": self.already_alerted,
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
    """The sweep over the stall index port and the event publisher."""

    def __init__(self, *, stalls: StallIndex, publisher: EventPublisher, rules: StallRules) -> None:
        self.stalls = stalls
        self.publisher = publisher
        self.rules = rules

    def sweep(self, now: datetime) -> SweepReport:
        store, rules = self.stalls, self.rules
        report = SweepReport()
        claimed: list[tuple[DueStall, ShipmentStalled]] = []
        for due in store.query_due_stalls(now, stats=report.stats):
            report.due += 1
            if due.carrier is None or due.tracking_number is None or due.provider is None:
                logger().warning("stall entry without a waybill", extra={"shipment_id": due.shipment_id})
                continue
            if not store.mark_stall_alerted(due.shipment_id, due.episode, now):
                report.already_alerted += 1
                continue
            threshold = threshold_seconds(due.rule, rules)
            started = due.last_event_at.timestamp() if due.last_event_at else due.due_at.timestamp() - threshold
            claimed.append(
                (
                    due,
                    ShipmentStalled(
                        shipment_id=due.shipment_id,
                        order_id=due.order_id,
                        carrier=due.carrier,
                        provider=due.provider,
                        tracking_number=due.tracking_number,
                        status=due.status,
                        rule=due.rule,
                        threshold_seconds=threshold,
                        stalled_for_seconds=max(0, int(now.timestamp() - started)),
                        last_event_text=due.last_event_text,
                        last_event_at=due.last_event_at,
                        episode_id=due.episode,
                        detected_at=now,
                    ),
                )
            )
        if claimed:
            try:
                self.publisher.publish([event for _, event in claimed])
            except Exception:
                for due, _ in claimed:
                    store.release_stall_alert(due.shipment_id, due.episode)
                raise
        for due, _ in claimed:
            add_metric("ShipmentStalled", rule=due.rule, carrier=str(due.carrier))
        report.alerted = len(claimed)
        add_metric("StallSweepItemsRead", report.stats.items_read)
        logger().info("stall sweep", extra=report.as_dict())
        return report
