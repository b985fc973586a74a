"""Domain errors of the store. Adapters translate every ``ClientError`` into one of these.

* a failed condition becomes the specific conflict (``OrderAlreadyExists``, ``StatusConflict`` …),
* throttling and service errors become :class:`StoreUnavailable` (``retryable = True``),
* a missing table or index becomes :class:`StoreMisconfigured` (alert, don't retry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from parcelhub.domain.models import Waybill
    from parcelhub.domain.status import Status


class StoreError(Exception):
    """Base of every store error."""

    retryable = False


class ShipmentNotFound(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"shipment not found: {key}")
        self.key = key


class StoreConflict(StoreError):
    """A conditional write lost: the stored state is not what the caller expected."""


class ShipmentAlreadyExists(StoreConflict):
    def __init__(self, shipment_id: str) -> None:
        super().__init__(f"shipment {shipment_id} already exists")
        self.shipment_id = shipment_id


class OrderAlreadyExists(StoreConflict):
    """The order id is already claimed. Carries the existing shipment id and request fingerprint, so the
    API can answer an identical retry with the first shipment and reject a different body (409)."""

    def __init__(self, order_id: str, shipment_id: str, fingerprint: str) -> None:
        super().__init__(f"order {order_id} already has shipment {shipment_id}")
        self.order_id = order_id
        self.shipment_id = shipment_id
        self.fingerprint = fingerprint


class WaybillAlreadyRecorded(StoreConflict):
    """The shipment already has a different waybill (recording the same one again is a no-op)."""

    def __init__(self, shipment_id: str, existing: Waybill) -> None:
        super().__init__(f"shipment {shipment_id} already has waybill {existing.carrier}/{existing.tracking_number}")
        self.shipment_id = shipment_id
        self.existing = existing


class TrackingClaimConflict(StoreConflict):
    """The (carrier, tracking number) belongs to another shipment."""

    def __init__(self, carrier: str, tracking_number: str, shipment_id: str) -> None:
        super().__init__(f"{carrier}/{tracking_number} is claimed by shipment {shipment_id}")
        self.carrier = carrier
        self.tracking_number = tracking_number
        self.shipment_id = shipment_id


class StatusConflict(StoreConflict):
    """``set_status`` found the shipment in a status outside ``expected``."""

    def __init__(self, shipment_id: str, current: Status) -> None:
        super().__init__(f"shipment {shipment_id} is {current}")
        self.shipment_id = shipment_id
        self.current = current


class StoreUnavailable(StoreError):
    """Throttling, capacity or an internal DynamoDB error: retry with backoff (SQS redelivery does)."""

    retryable = True

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class StoreMisconfigured(StoreError):
    """The table or an index does not exist, or a request is invalid: a deployment problem."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class LeaseHeld(StoreConflict):
    """Another owner holds the lease until ``until``."""

    def __init__(self, name: str, owner: str, until: datetime) -> None:
        super().__init__(f"lease {name} is held by {owner} until {until.isoformat()}")
        self.name = name
        self.owner = owner
        self.until = until


class OrderInFlight(StoreConflict):
    """Another carrier attempt of the shipment is in flight (``open_order``): it must be settled first."""

    def __init__(self, shipment_id: str, key: str) -> None:
        super().__init__(f"shipment {shipment_id}: carrier order {key} is in flight")
        self.shipment_id = shipment_id
        self.key = key
