"""Provider plugins behind one Protocol (see ``base``) and a registry (see ``registry``)."""

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    CodeMapping,
    HttpReply,
    HttpRequest,
    ParsedPush,
    ProviderPlugin,
    PushRejected,
    PushUnreadable,
    TrackingSubscription,
    WaybillOrder,
)

__all__ = [
    "CarrierAuthError",
    "CarrierDuplicateOrder",
    "CarrierError",
    "CarrierRejected",
    "CarrierUnavailable",
    "CodeMapping",
    "HttpReply",
    "HttpRequest",
    "ParsedPush",
    "ProviderPlugin",
    "PushRejected",
    "PushUnreadable",
    "TrackingSubscription",
    "WaybillOrder",
]
