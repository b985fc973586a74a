"""The single-table DynamoDB adapter (ARCHITECTURE §3): one class per record type, composed into the one
store object the composition root hands out as each port. Importing this package creates no client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcelhub.adapters.dynamodb.capacity import CapacityRecords
from parcelhub.adapters.dynamodb.health import HealthRecords
from parcelhub.adapters.dynamodb.indexes import PollIndexRecords, StallIndexRecords
from parcelhub.adapters.dynamodb.leases import LeaseRecords
from parcelhub.adapters.dynamodb.orders import OrderRecords, RecoveryRecords
from parcelhub.adapters.dynamodb.pages import TrackingPageRecords
from parcelhub.adapters.dynamodb.parked import ParkedRecords
from parcelhub.adapters.dynamodb.returns import ReturnRecords
from parcelhub.adapters.dynamodb.shipments import ShipmentRecords
from parcelhub.adapters.dynamodb.table import dynamodb_client
from parcelhub.adapters.dynamodb.tracking import TrackingRecords


class DynamoShipmentStore(
    ShipmentRecords,
    TrackingRecords,
    StallIndexRecords,
    PollIndexRecords,
    ParkedRecords,
    LeaseRecords,
    HealthRecords,
    TrackingPageRecords,
    OrderRecords,
    RecoveryRecords,
    CapacityRecords,
    ReturnRecords,
):
    """Every store port on one DynamoDB table."""


__all__ = ["DynamoShipmentStore", "dynamodb_client"]

if TYPE_CHECKING:  # static proof that the adapter implements every port
    from parcelhub.ports.analytics import LaneHistory
    from parcelhub.ports.capacity import CapacityLedger
    from parcelhub.ports.store import ShipmentStore

    _conforms: ShipmentStore = DynamoShipmentStore("table")
    _reads_lanes: LaneHistory = DynamoShipmentStore("table")
    _counts_capacity: CapacityLedger = DynamoShipmentStore("table")

if TYPE_CHECKING:
    from parcelhub.ports.returns import ReturnRecords as ReturnRecordsPort

    _keeps_returns: ReturnRecordsPort = DynamoShipmentStore("table")
