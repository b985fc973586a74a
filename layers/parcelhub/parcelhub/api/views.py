"""What the API shows: masked, documented views of shipments and timelines (no personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from parcelhub.domain.models import (
    Carrier,
    CarrierDetection,
    CustomerTier,
    DeliveryWindow,
    Money,
    ProofOfDelivery,
    Provider,
    SelectionRecord,
    ServiceLevel,
    Shipment,
    ShipmentKind,
    TrackingEvent,
    WaybillAttempt,
)
from parcelhub.domain.progress import Milestone, shows_estimate
from parcelhub.domain.status import Status, SubStatus

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse


class EventView(BaseModel):
    occurred_at: datetime
    status: Status
    sub_status: SubStatus
    text: str = Field(description="The carrier's original text")
    location: str | None = None
    raw_code: str = Field(description="The carrier's own status code")
    source: Literal["push", "poll"]

    @classmethod
    def of(cls, event: TrackingEvent) -> EventView:
        return cls(
            occurred_at=event.occurred_at,
            status=event.status,
            sub_status=event.sub_status,
            text=event.raw_text,
            location=event.location,
            raw_code=event.raw_code,
            source=event.source.value,
        )


class AttemptView(BaseModel):
    provider: Provider
    carrier: Carrier
    outcome: str
    error_code: str | None = None
    error_message: str | None = None
    at: datetime

    @classmethod
    def of(cls, attempt: WaybillAttempt) -> AttemptView:
        return cls.model_validate(attempt.model_dump())


class EstimateView(BaseModel):
    """When the parcel is expected (docs/estimates.md)."""

    earliest: datetime
    most_likely: datetime | None = None
    latest: datetime
    confidence: float | None = Field(
        default=None, description="Share of comparable parcels delivered inside [earliest, latest] (0..1)"
    )
    basis: str | None = Field(
        default=None, description="What it rests on: lane:<city|province|national>:<milestone>, default, carrier"
    )

    @classmethod
    def of(cls, window: DeliveryWindow | None) -> EstimateView | None:
        return None if window is None else cls.model_validate(window.model_dump())


class ShipmentView(BaseModel):
    """A shipment as the OMS sees it: personal data masked, timeline newest first."""

    shipment_id: str
    order_id: str
    kind: ShipmentKind = Field(
        default=ShipmentKind.ORDER,
        description="order: parcelhub issued the waybill; tracking: a number registered to be tracked; "
        "return: a return of another shipment",
    )
    detection: CarrierDetection | None = Field(
        default=None, description="How a tracked number's carrier was found (kind tracking)"
    )
    status: Status
    sub_status: SubStatus
    carrier: Carrier | None
    provider: Provider | None
    tracking_number: str | None
    label_url: str | None = Field(description="Time-limited link to the label, when the provider returned one")
    sort_code: str | None = None
    customer_tier: CustomerTier
    service: ServiceLevel
    declared_value: Money
    receiver: dict[str, str] = Field(description="Masked receiver")
    tracking_url: str | None = Field(
        default=None,
        description="The customer tracking page: an unguessable link for the brand's SMS, WeChat message or "
        "e-mail (null while no tracking-link secret is configured)",
    )
    destination_province: str
    destination_city: str
    waybill_attempts: list[AttemptView]
    events: list[EventView]
    last_event_at: datetime | None
    created_at: datetime
    updated_at: datetime
    estimated_delivery: EstimateView | None = Field(
        default=None, description="The current delivery estimate (re-made at pickup, arrival, out for delivery)"
    )
    promised_delivery: EstimateView | None = Field(
        default=None, description="The estimate made when the waybill was created, kept as the promise"
    )
    selection: SelectionRecord | None = Field(
        default=None, description="How the smart strategy chose the carrier: the options ranked and the reason"
    )
    proof: ProofOfDelivery | None = Field(
        default=None,
        description="Proof of delivery, once delivered: when and how it was signed for, the locker or station, "
        "the courier and signer (masked)",
    )
    receipt_url: str | None = Field(
        default=None,
        description="A short-lived link to the provider's delivery receipt (signed slip or photo), copied into "
        "the brand's encrypted bucket",
    )

    @classmethod
    def of(
        cls,
        shipment: Shipment,
        events: list[TrackingEvent],
        label_url: str | None,
        tracking_url: str | None = None,
        receipt_url: str | None = None,
    ) -> ShipmentView:
        return cls(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            kind=shipment.kind,
            detection=shipment.detection,
            status=shipment.status,
            sub_status=shipment.sub_status,
            carrier=shipment.carrier,
            provider=shipment.provider,
            tracking_number=shipment.tracking_number,
            label_url=label_url,
            sort_code=shipment.waybill.sort_code if shipment.waybill else None,
            customer_tier=shipment.customer_tier,
            service=shipment.service,
            declared_value=shipment.declared_value,
            receiver=shipment.receiver_masked,
            tracking_url=tracking_url,
            destination_province=shipment.destination_province,
            destination_city=shipment.destination_city,
            waybill_attempts=[AttemptView.of(a) for a in shipment.waybill_attempts],
            events=[EventView.of(e) for e in events],
            last_event_at=shipment.last_event_at,
            created_at=shipment.created_at,
            updated_at=shipment.updated_at,
            estimated_delivery=EstimateView.of(shipment.estimated_delivery),
            promised_delivery=EstimateView.of(shipment.promised_delivery),
            selection=shipment.selection,
            proof=shipment.proof,
            receipt_url=receipt_url,
        )


class TrackingView(BaseModel):
    """The consumer-safe view for brand apps and mini-programs: no internal ids, masked receiver."""

    carrier: Carrier
    tracking_number: str
    status: Status
    sub_status: SubStatus
    destination_city: str
    receiver_name: str = Field(description="Masked")
    last_event_at: datetime | None
    events: list[EventView]
    estimated_delivery: EstimateView | None = Field(default=None, description="Only while the parcel is on its way")

    @classmethod
    def of(cls, shipment: Shipment, events: list[TrackingEvent]) -> TrackingView:
        if shipment.carrier is None or shipment.tracking_number is None:
            raise ValueError("a tracking view needs a waybill")
        return cls(
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            status=shipment.status,
            sub_status=shipment.sub_status,
            destination_city=shipment.destination_city,
            receiver_name=shipment.receiver_masked.get("name", ""),
            last_event_at=shipment.last_event_at,
            events=[EventView.of(e) for e in events],
            estimated_delivery=EstimateView.of(shipment.estimated_delivery)
            if shows_estimate(shipment.status)
            else None,
        )


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. receiver.phone")
    message: str
    type: str


class ErrorBody(BaseModel):
    error: str
    message: str
    fields: list[FieldError] = Field(default_factory=list)


def error_response(description: str) -> OpenAPIResponse:
    """An OpenAPI error answer of a route: ``description`` with an :class:`ErrorBody`."""
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


class Health(BaseModel):
    status: Literal["ok"]
    version: str


# ------------------------------------------------------------------------------- tracking page (JSON twin)


class MilestoneView(BaseModel):
    code: Milestone
    text: str
    state: Literal["done", "current", "upcoming"]


class TimelineEntryView(BaseModel):
    occurred_at: datetime = Field(description="China time (+08:00)")
    status: Status
    status_text: str
    sub_status: SubStatus
    sub_status_text: str | None = Field(description="Null when the scan has no sub-status")
    text: str = Field(description="The carrier's scan text, phone numbers and signer names redacted")
    location: str | None = None


class DeliveryWindowView(BaseModel):
    earliest: datetime
    latest: datetime
    text: str
    most_likely: datetime | None = None
    most_likely_text: str | None = Field(default=None, description="The most likely day, when the window spans days")
    confidence: float | None = None
    basis: str | None = None


class CarrierView(BaseModel):
    code: Carrier
    name: str
    tracking_number: str
    service_phone: str | None = Field(description="The carrier's national customer-service number")


class ProofOfDeliveryView(BaseModel):
    delivered_at: datetime
    received: str = Field(description="How it was received (signed by the recipient, a proxy, a locker …)")
    location: str | None = None
    text: str


class BrandView(BaseModel):
    name: str
    logo_url: str | None = None
    primary_color: str = Field(description="The colour the page uses (the brand's, or the default when the "
                               "brand's lacks WCAG AA contrast against white)")  # fmt: skip
    support_phone: str | None = None
    support_email: str | None = None
    support_url: str | None = None


class TrackingPageView(BaseModel):
    """The customer tracking page as data, for the brand's app: masked, in the language asked for."""

    lang: Literal["zh-CN", "en"]
    status: Status
    status_text: str
    sub_status: SubStatus
    sub_status_text: str | None
    headline: str
    interrupted: bool = Field(description="An exception, failed delivery, return or cancellation stopped it")
    estimated_delivery: DeliveryWindowView | None = Field(
        description="Only while the parcel is on its way and an estimate exists"
    )
    milestones: list[MilestoneView]
    timeline: list[TimelineEntryView] = Field(description="Newest first")
    carrier: CarrierView | None
    destination: str
    proof_of_delivery: ProofOfDeliveryView | None
    returns_url: str | None = Field(description="Where to start a return (delivered, and the brand enables returns)")
    brand: BrandView
    last_event_at: datetime | None
    updated_at: datetime


class LookupRequest(BaseModel):
    """The lookup form: order id and the last 4 digits of the receiver's phone."""

    order_id: str = Field(min_length=1, max_length=64)
    digits: str = Field(min_length=1, max_length=8)


class LookupMatch(BaseModel):
    token: str
    tracking_url: str | None = Field(description="Absolute link (null when no public base URL is configured)")
