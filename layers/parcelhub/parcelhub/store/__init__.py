"""The store: the single-table repository behind a Protocol (ARCHITECTURE §3).

Code against :class:`ShipmentStore`; get the DynamoDB adapter with
``parcelhub.store.dynamodb.shipment_store(table_name)`` (cached, client built lazily) and use
``parcelhub.store.memory.InMemoryShipmentStore`` in unit tests. Importing this package creates no client.
"""

from parcelhub.store.errors import (
    OrderAlreadyExists,
    ShipmentAlreadyExists,
    ShipmentNotFound,
    StatusConflict,
    StoreConflict,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
    TrackingClaimConflict,
    WaybillAlreadyRecorded,
)
from parcelhub.store.ports import (
    DEFAULT_SHARDS,
    DuePoll,
    DueStall,
    ParkedPush,
    QueryStats,
    ShipmentStore,
    StallMark,
    StatusChange,
    TrackingClaim,
)

__all__ = [
    "DEFAULT_SHARDS",
    "DuePoll",
    "DueStall",
    "OrderAlreadyExists",
    "ParkedPush",
    "QueryStats",
    "ShipmentAlreadyExists",
    "ShipmentNotFound",
    "ShipmentStore",
    "StallMark",
    "StatusChange",
    "StatusConflict",
    "StoreConflict",
    "StoreError",
    "StoreMisconfigured",
    "StoreUnavailable",
    "TrackingClaim",
    "TrackingClaimConflict",
    "WaybillAlreadyRecorded",
]
