"""The capacity ledger: each carrier's intake per local day and its e-waybill balance (issue 18 item 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Protocol

from parcelhub.domain.capacity import CapacityBlock, Reservation, Standing
from parcelhub.domain.lanes import Lane, LaneLevel, LaneStats


class CapacityLedger(Protocol):
    def standing(self, carriers: Sequence[str], day: date) -> Mapping[str, Standing]:
        """Today's intake and the balance left of each carrier (one read for all of them)."""

    def lanes_and_standing(
        self, carriers: Sequence[str], service: str, lane: Lane | None, day: date
    ) -> tuple[Mapping[tuple[str, LaneLevel], LaneStats], Mapping[str, Standing]]:
        """The lane cells of ``LaneHistory.lane_stats`` (none without a lane) and the carriers' standing, in
        the same one read."""

    def reserve(self, carrier: str, shipment_id: str, day: date, cap: int | None) -> Reservation | CapacityBlock:
        """Count the shipment against the carrier's day and balance before its create, atomically refused
        when the day's intake has reached ``cap`` or the balance is used up (the reason)."""

    def release(self, carrier: str, shipment_id: str, day: date) -> bool:
        """Take back the shipment's count at the carrier on ``day`` (its create failed); False when there
        was none."""

    def record_intake(self, carrier: str, shipment_id: str, day: date) -> bool:
        """Count the shipment's waybill once (day's intake +1, balance -1); False when counted before."""

    def intake_history(self, carrier: str, since: date, until: date) -> tuple[Mapping[date, int], Standing]:
        """Intake per local day from ``since`` to ``until`` (inclusive), and the standing on ``until``."""

    def set_balance(self, carrier: str, balance: int, source: str, as_of: datetime) -> None:
        """The balance as its source stated it at ``as_of``; waybills counted afterwards are taken off it."""
