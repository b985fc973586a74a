"""The analytics ports: delivery facts in, lane statistics out (scorecards and delivery estimates).

``Scorecards`` records a delivery fact exactly once (the fact and every scorecard cell it belongs to, in
one atomic write: a fact recorded twice counts once) and answers scorecard queries; ``LaneHistory``
answers the all-time lane statistics an estimate needs, at every fallback level, in one read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from parcelhub.domain.lanes import DeliveryFact, Lane, LaneLevel, LaneStats


@dataclass(frozen=True, slots=True)
class ScorecardCell:
    """One scorecard row: a carrier on a lane (or a coarser grouping) over a period."""

    carrier: str
    level: LaneLevel  # city lane, carrier x destination province, or carrier-national
    lane: str  # the lane key at that level (``domain.lanes.lane_key``)
    period: str  # ISO week ``2026-W48``, or ``all``
    stats: LaneStats


class Scorecards(Protocol):
    def record_fact(self, fact: DeliveryFact) -> bool:
        """Store the fact and add it to its scorecard cells atomically; False when it was already recorded."""
        ...

    def scorecards(
        self, *, carrier: str | None, level: LaneLevel, lane: str | None, periods: Sequence[str]
    ) -> list[ScorecardCell]: ...


class LaneHistory(Protocol):
    def lane_stats(
        self, carriers: Sequence[str], service: str, lane: Lane
    ) -> Mapping[tuple[str, LaneLevel], LaneStats]:
        """All-time statistics per (carrier, level) for the lane at city, province and national level
        (one batched read, whatever the history's size); a missing cell is absent from the mapping."""
        ...


class FactArchive(Protocol):
    def put_facts(self, facts: Sequence[DeliveryFact]) -> None:
        """Append the facts to the history (S3, JSON lines per day of their end; one object per day and
        call). At least once: a retried batch may write a fact again, readers dedupe by shipment id."""
        ...
