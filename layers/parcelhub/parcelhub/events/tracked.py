"""The events of parcels tracked both ways (issue 19): a number registered to be tracked, a return and its
door pickup (derived by the outbox from the return's item), and a delivery's proof."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from parcelhub.domain.models import Carrier, Provider, Shipment, SignType, Waybill
from parcelhub.domain.returns import ReturnReason, ReturnState
from parcelhub.events.base import Identifier, ShipmentEvent, TrackedShipmentEvent


class ReturnEvent(ShipmentEvent):
    """Fields every return event carries. ``shipment_id`` is the return's own shipment (for a return the
    carrier linked from a forward parcel's tracking - refused, sent back - the forward shipment itself),
    ``original_shipment_id`` the shipment it returns. No personal data: the pickup address is never here."""

    original_shipment_id: Identifier = Field(description="The shipment whose items come back")
    reason: ReturnReason = Field(description="Why (refused / returned_to_sender when the carrier linked it)")
    linked_from_tracking: bool = Field(
        default=False, description="The carrier's own return signal on the forward parcel, not a booked return"
    )


class ReturnCreated(ReturnEvent):
    """A return exists: booked through the API, or linked from the forward parcel's tracking."""

    consumers: ClassVar[tuple[str, ...]] = ("OMS (refund / RMA)", "warehouse (expected inbound)")
    fires_when: ClassVar[str] = (
        "A return shipment was stored (POST /v1/shipments/{id}/returns), or a forward parcel's status became "
        "RETURNING/RETURNED (refused by the receiver, sent back)."
    )

    return_state: ReturnState
    pickup_window_start: datetime | None = None
    pickup_window_end: datetime | None = None

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id,)


class ReturnPickedUp(ReturnEvent):
    """The courier collected the return (its parcel's tracking reached picked up)."""

    consumers: ClassVar[tuple[str, ...]] = ("OMS (refund on pickup)", "customer service")
    fires_when: ClassVar[str] = "The return's state reached picked_up (or later, skipping it) for the first time."

    picked_up_at: datetime | None = Field(default=None, description="The carrier's scan time, when known")

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id,)


class ReturnReceived(ReturnEvent):
    """The return arrived at the warehouse (delivered there; for a linked return: RETURNED)."""

    consumers: ClassVar[tuple[str, ...]] = ("OMS (refund / restock)", "warehouse")
    fires_when: ClassVar[str] = "The return's state reached received."

    received_at: datetime | None = Field(default=None, description="The carrier's scan time, when known")

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id,)


class ReturnCancelled(ReturnEvent):
    """The return's pickup was cancelled before the courier collected it (or its window expired)."""

    consumers: ClassVar[tuple[str, ...]] = ("OMS (close the RMA)",)
    fires_when: ClassVar[str] = "The return's state became cancelled or expired."

    return_state: ReturnState

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.return_state)


#: Every event type, in documentation order.
class TrackingRegistered(TrackedShipmentEvent):
    """A number the brand did not ship through parcelhub (a marketplace order, a 3PL's parcel) is tracked:
    its carrier decided and its tracking subscribed (or left to the poller)."""

    consumers: ClassVar[tuple[str, ...]] = ("OMS / marketplace connectors: the number is tracked, with its carrier",)
    fires_when: ClassVar[str] = (
        "The waybill workflow registered a number from `POST /v1/trackings`: carrier decided, claim recorded."
    )

    detection: Literal["given", "pattern", "aggregator", "pattern_unconfirmed", "corrected", "unknown"] = Field(
        description="How the carrier was found: given by the caller, a near-certain number format, a "
        "provider's recognition of an ambiguous one, or the best format match awaiting the provider's check"
    )
    candidates: list[Carrier] = Field(default_factory=list, description="The number-format candidates, best first")
    confirmed_by: Provider | None = Field(default=None, description="Whose recognition confirmed the carrier")
    tracking_url: str | None = Field(default=None, max_length=300, description="The customer tracking page")
    registered_at: datetime

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.carrier, self.tracking_number)

    @classmethod
    def of(cls, shipment: Shipment, waybill: Waybill, tracking_url: str | None) -> TrackingRegistered:
        detection = shipment.detection
        return cls(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            carrier=waybill.carrier,
            provider=waybill.provider,
            tracking_number=waybill.tracking_number,
            detection=detection.method if detection else "given",
            candidates=detection.candidates if detection else [],
            confirmed_by=detection.confirmed_by if detection else None,
            tracking_url=tracking_url,
            registered_at=shipment.updated_at,
        )


class DeliveryConfirmed(TrackedShipmentEvent):
    """A delivered parcel's proof of delivery: when and how it was signed for, where it was left, and
    whether the provider's receipt is held in the brand's bucket. No personal data: the masked signer and
    courier stay on the shipment (``GET /v1/shipments/{id}``)."""

    consumers: ClassVar[tuple[str, ...]] = ('Customer service: settle "not received" disputes',)
    fires_when: ClassVar[str] = (
        "The DELIVERED state was written with its proof, and again when the provider's receipt was copied."
    )

    signed_at: datetime
    sign_type: SignType
    station: str | None = Field(default=None, max_length=200, description="The locker or station (a public place)")
    receipt: Literal["none", "copied", "unavailable"] = Field(
        description="The provider's receipt: copied into the encrypted bucket, unavailable, or not asked yet"
    )

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.tracking_number, self.signed_at, self.sign_type, self.receipt)
