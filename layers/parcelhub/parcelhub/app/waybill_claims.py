"""Who may ask providers for a shipment's waybill right now, and the two "not now" answers the waybill
workflow routes on (``ShipmentNotPending``, ``WaybillInProgress``: the ASL matches them by class name)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from parcelhub.domain.status import Status
from parcelhub.ports.errors import LeaseHeld
from parcelhub.ports.store import Leases

#: How long an execution's claim on a shipment keeps others out if it never finishes (crashed Lambda).
CLAIM_LEASE_SECONDS = 300.0
#: Lease name prefix of the per-shipment waybill claim (see ``WaybillClaims``).
CLAIM_LEASE_PREFIX = "waybill#"

# ------------------------------------------------------------------------------------------ errors


class ShipmentNotPending(Exception):
    """The shipment no longer wants a waybill (cancelled, or a tracking status already won)."""

    def __init__(self, shipment_id: str, status: Status) -> None:
        super().__init__(f"shipment {shipment_id} is {status.value}: no waybill needed")
        self.shipment_id = shipment_id
        self.status = status


class WaybillInProgress(Exception):
    """Another execution holds the shipment's waybill claim (its lease has not expired)."""

    def __init__(self, shipment_id: str, owner: str, until: float) -> None:
        super().__init__(f"shipment {shipment_id}: waybill being created by execution {owner}")
        self.shipment_id = shipment_id
        self.owner = owner
        self.until = until


# -------------------------------------------------------------------------------------- the claim


class WaybillClaims:
    """One execution at a time may ask providers for a shipment's waybill.

    A named lease (``waybill#<shipment_id>``) taken by one conditional write, so two concurrent executions
    cannot both win. The same owner (execution name) renews freely (task retries); an expired lease lets a
    retry take over from a crashed execution; ``release`` frees it when a run ends without a waybill.
    """

    def __init__(self, leases: Leases, clock: Callable[[], float] = time.time) -> None:
        self.leases = leases
        self.clock = clock

    @staticmethod
    def name(shipment_id: str) -> str:
        return f"{CLAIM_LEASE_PREFIX}{shipment_id}"

    def acquire(self, shipment_id: str, owner: str) -> None:
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        try:
            self.leases.acquire_lease(self.name(shipment_id), owner, now=now, seconds=CLAIM_LEASE_SECONDS)
        except LeaseHeld as held:
            raise WaybillInProgress(shipment_id, held.owner, held.until.timestamp()) from None

    def release(self, shipment_id: str, owner: str) -> None:
        self.leases.release_lease(self.name(shipment_id), owner)
