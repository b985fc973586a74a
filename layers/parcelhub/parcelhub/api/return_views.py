"""What the API shows of a return: masked, documented (no personal data; the pickup address masked)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from parcelhub.api.views import EventView
from parcelhub.domain.models import Carrier, Item, Provider, Shipment, TrackingEvent
from parcelhub.domain.returns import ReturnReason, ReturnState
from parcelhub.domain.status import Status, SubStatus


class PickupView(BaseModel):
    provider: Provider
    carrier: Carrier
    pickup_order_id: str = Field(description="Our order id at the provider (the return id)")
    booking_id: str | None = Field(default=None, description="The provider's own booking number, when given")
    tracking_number: str | None = None
    window_start: datetime
    window_end: datetime
    courier: str | None = Field(default=None, description="The courier, masked, when the provider named one")
    booked_at: datetime
    cancelled_at: datetime | None = None


class ReturnApiView(BaseModel):
    """A return: its own flow (``state``) beside the canonical tracking status of its parcel."""

    return_id: str
    original_shipment_id: str
    order_id: str
    state: ReturnState
    reason: ReturnReason
    reason_text: str | None = None
    linked_from_tracking: bool = Field(
        default=False, description="The forward parcel's own return (refused, sent back), not a booked return"
    )
    status: Status
    sub_status: SubStatus
    carrier: Carrier | None
    provider: Provider | None
    tracking_number: str | None
    items: list[Item]
    pickup_address: dict[str, str] | None = Field(default=None, description="Where the courier collects, masked")
    pickup: PickupView | None = None
    events: list[EventView] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, shipment: Shipment, events: list[TrackingEvent] | None = None) -> ReturnApiView | None:
        """The return ``shipment`` is (a return shipment) or carries (a refused forward parcel), or None."""
        from parcelhub.app.returns import return_view

        view = return_view(shipment, events)
        if view is None:
            return None
        pickup = shipment.pickup
        return cls(
            return_id=shipment.shipment_id,
            original_shipment_id=view.original_shipment_id,
            order_id=shipment.order_id,
            state=view.state,
            reason=view.reason,
            reason_text=shipment.return_reason_text,
            linked_from_tracking=view.linked_from_tracking,
            status=shipment.status,
            sub_status=shipment.sub_status,
            carrier=shipment.carrier,
            provider=shipment.provider,
            tracking_number=shipment.tracking_number,
            items=shipment.items,
            pickup_address=shipment.sender_masked if not view.linked_from_tracking else None,
            pickup=PickupView(
                provider=pickup.provider,
                carrier=pickup.carrier,
                pickup_order_id=pickup.pickup_order_id,
                booking_id=pickup.booking_id,
                tracking_number=pickup.tracking_number,
                window_start=pickup.window.start,
                window_end=pickup.window.end,
                courier=pickup.courier_masked,
                booked_at=pickup.booked_at,
                cancelled_at=pickup.cancelled_at,
            )
            if pickup
            else None,
            events=[EventView.of(e) for e in sorted(events or [], key=lambda e: e.occurred_at, reverse=True)],
            created_at=shipment.created_at,
            updated_at=shipment.updated_at,
        )


class ShipmentReturnsView(BaseModel):
    """A shipment's returns: booked ones, and its own return when the carrier sent it back."""

    shipment_id: str
    returns: list[ReturnApiView]
