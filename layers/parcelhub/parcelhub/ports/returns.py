"""The returns' store port: a return shipment linked to its original, and its flow's conditional moves."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from parcelhub.domain.models import PickupBooking, Shipment
from parcelhub.domain.returns import ReturnState
from parcelhub.ports.errors import StoreConflict


class ReturnStateConflict(StoreConflict):
    """``update_return`` found the return in a state outside ``expected``."""

    def __init__(self, shipment_id: str, current: ReturnState | None) -> None:
        super().__init__(f"return {shipment_id} is {current}")
        self.shipment_id = shipment_id
        self.current = current


@runtime_checkable
class ReturnRecords(Protocol):
    """Returns on the shipment table (a return is a shipment of kind RETURN)."""

    def create_return(self, shipment: Shipment) -> None:
        """Store the return shipment and append its id to its original's ``returns``, in one transaction.
        ``ShipmentNotFound`` when the original (``shipment.return_of``) is absent; ``ShipmentAlreadyExists``."""

    def update_return(
        self,
        shipment_id: str,
        state: ReturnState,
        *,
        expected: frozenset[ReturnState],
        now: datetime,
        pickup: PickupBooking | None = None,
    ) -> Shipment:
        """Move ``return_state`` to ``state`` when it is one of ``expected`` (else ``ReturnStateConflict``).
        With ``pickup``: record it; when it carries a waybill number, the return gets its carrier, provider
        and tracking number and awaits the courier (WAYBILL_CREATED). To ``cancelled``/``expired``: the
        shipment is CANCELLED too (a cancellation wins the tracking fold: no later scan undoes it)."""
        ...
