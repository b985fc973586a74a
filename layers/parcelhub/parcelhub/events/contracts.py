"""The EventBridge events parcelhub emits: the contracts (ARCHITECTURE §7).

Every event goes to the hub's bus with ``Source = "parcelhub"`` and ``DetailType`` = the model's class
name; the model *is* the ``detail``. The JSON Schema of each detail is generated from these models into
``infra/events/<EventName>.json`` and ``docs/events.md`` by ``python -m tools.event_schemas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from parcelhub.domain.models import (
    Carrier,
    CustomerTier,
    Provider,
    SelectionRecord,
    ServiceLevel,
    WaybillAttempt,
)
from parcelhub.domain.status import Status, SubStatus
from parcelhub.events.alerts import (
    Alert,
    cancel_failed_alert,
    capacity_alert,
    circuit_opened_alert,
    stall_alert,
    waybill_failed_alert,
)
from parcelhub.events.base import (
    AlertingEvent,
    CarrierText,
    Event,
    Identifier,
    ShipmentEvent,
    TrackedShipmentEvent,
    TrackingNumber,
    pending_alert,
)
from parcelhub.events.tracked import (
    DeliveryConfirmed,
    ReturnCancelled,
    ReturnCreated,
    ReturnPickedUp,
    ReturnReceived,
    TrackingRegistered,
)


class ShipmentAccepted(ShipmentEvent):
    """The OMS handed over an order and the hub stored the shipment (status PENDING)."""

    consumers: ClassVar[tuple[str, ...]] = ("OMS / data warehouse (optional subscription)",)
    fires_when: ClassVar[str] = "`POST /v1/shipments` stored a new shipment (not on an idempotent replay)."

    carrier: Carrier | None = Field(default=None, description="The carrier the OMS pinned, if any")
    customer_tier: CustomerTier
    service: ServiceLevel
    destination_province: str = Field(description="Routing data (not personal): receiver's province")
    destination_city: str = Field(description="Routing data (not personal): receiver's city")
    parcel_count: int = Field(ge=1)
    accepted_at: datetime

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id,)


class WaybillCreated(TrackedShipmentEvent):
    """A provider issued the e-waybill and it is recorded with its tracking claim."""

    consumers: ClassVar[tuple[str, ...]] = ("OMS callback (API destination): write the tracking number back",)
    fires_when: ClassVar[str] = "The waybill workflow recorded a waybill (after failover, if any)."

    created_at: datetime
    attempt_count: int = Field(ge=1, description="Create attempts across candidates, including the winning one")
    failed_over: bool = Field(description="True when the waybill came from a backup candidate")
    has_label: bool = False
    tracking_url: str | None = Field(
        default=None,
        max_length=300,
        description="The customer tracking page (an unguessable link for the brand's SMS, WeChat message or "
        "e-mail); null while no tracking-link secret is configured",
    )
    selection: SelectionRecord | None = Field(
        default=None,
        description="How the carrier was chosen under the smart strategy: the choice, every candidate ranked "
        "with its price (fen), estimated window and lane record, and the reason; null under the rules",
    )

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.carrier, self.tracking_number)


class AttemptSummary(BaseModel):
    """One waybill attempt as events show it (the provider's message redacted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider
    carrier: Carrier
    outcome: Literal["created", "rejected", "unavailable", "auth_error", "skipped_circuit_open"]
    error_code: str | None = None
    error_message: CarrierText | None = None
    at: datetime

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("times must carry a timezone")
        return value

    @classmethod
    def of(cls, attempt: WaybillAttempt) -> AttemptSummary:
        return cls.model_validate(attempt.model_dump())


class WaybillFailed(ShipmentEvent, AlertingEvent):
    """Every carrier candidate failed: the shipment is WAYBILL_FAILED and ops must act."""

    consumers: ClassVar[tuple[str, ...]] = ("ops SNS topic (alert.message)", "OMS (optional)")
    fires_when: ClassVar[str] = "The waybill workflow ran out of candidates (status WAYBILL_FAILED)."

    attempts: list[AttemptSummary] = Field(min_length=1)
    failed_at: datetime
    alert: Alert = Field(default_factory=pending_alert)

    def identity(self) -> tuple[object, ...]:
        # A /retry that fails again has more attempts: a new event, not a duplicate.
        return (self.shipment_id, len(self.attempts))

    def build_alert(self) -> Alert:
        return waybill_failed_alert(self.shipment_id, self.order_id, self.attempts)

    @model_validator(mode="after")
    def _fill_alert(self) -> WaybillFailed:
        return _with_alert(self)


class WaybillCancelFailed(ShipmentEvent, AlertingEvent):
    """An order placed with a provider that the hub does not keep could not be cancelled: ops must act."""

    consumers: ClassVar[tuple[str, ...]] = ("ops SNS topic (alert.message)",)
    fires_when: ClassVar[str] = (
        "Cancelling a carrier order that is not the shipment's waybill (a failover after an unclear outcome, a"
        " cancel that raced the create, a second waybill) failed on every automatic attempt."
    )

    provider: Provider
    carrier: Carrier
    provider_order_id: Identifier
    tracking_number: TrackingNumber | None = None
    cancel_attempts: int = Field(ge=1)
    error_code: str | None = None
    error_message: CarrierText | None = None
    failed_at: datetime
    alert: Alert = Field(default_factory=pending_alert)

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.provider, self.provider_order_id)

    def build_alert(self) -> Alert:
        reason = " ".join(x for x in (self.error_code, self.error_message) if x) or None
        return cancel_failed_alert(
            shipment_id=self.shipment_id,
            order_id=self.order_id,
            provider=self.provider.value,
            carrier=self.carrier.value,
            provider_order_id=self.provider_order_id,
            tracking_number=self.tracking_number,
            attempts=self.cancel_attempts,
            reason=reason,
        )

    @model_validator(mode="after")
    def _fill_alert(self) -> WaybillCancelFailed:
        return _with_alert(self)


class CarrierFailover(Event):
    """A waybill candidate failed and the workflow moved to the next one."""

    consumers: ClassVar[tuple[str, ...]] = ("metrics / dashboards", "carrier-performance reports")
    fires_when: ClassVar[str] = (
        "A candidate was rejected, unavailable after retries, or skipped with an open circuit, and "
        "another candidate is tried."
    )

    shipment_id: Identifier
    order_id: Identifier
    attempt: int = Field(ge=1, description="Position of the failed attempt in the shipment's attempts")
    from_provider: Provider
    from_carrier: Carrier
    to_provider: Provider
    to_carrier: Carrier
    reason: Literal["rejected", "unavailable", "auth_error", "skipped_circuit_open"]
    error_code: str | None = None
    error_message: CarrierText | None = None
    occurred_at: datetime

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.attempt, self.from_provider, self.from_carrier)


class ShipmentStatusChanged(TrackedShipmentEvent):
    """The shipment's canonical status changed (order-independent fold of its tracking events)."""

    consumers: ClassVar[tuple[str, ...]] = (
        "OMS callback (API destination)",
        "customer service / brand app (SQS subscription)",
    )
    fires_when: ClassVar[str] = "A tracking event won the precedence fold and changed status or sub-status."

    old_status: Status | None
    new_status: Status
    sub_status: SubStatus = SubStatus.NONE
    occurred_at: datetime = Field(description="The carrier's scan time of the winning event")
    location: CarrierText | None = None
    description: CarrierText | None = Field(default=None, description="The carrier's text, redacted")

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.new_status, self.sub_status, self.occurred_at)


class ShipmentDelivered(TrackedShipmentEvent):
    """The parcel was signed for (by the recipient, a proxy, a locker or a station)."""

    consumers: ClassVar[tuple[str, ...]] = ("brand app / marketing (review request)", "OMS (close the order)")
    fires_when: ClassVar[str] = "Together with the ShipmentStatusChanged that moves the shipment to DELIVERED."

    sub_status: SubStatus = SubStatus.NONE
    occurred_at: datetime
    location: CarrierText | None = None
    description: CarrierText | None = None

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.occurred_at)


class ShipmentException(TrackedShipmentEvent):
    """The parcel hit an exception (address problem, refused, damaged, held…) or a failed delivery."""

    consumers: ClassVar[tuple[str, ...]] = ("customer service queue", "OMS (optional)")
    fires_when: ClassVar[str] = (
        "Together with the ShipmentStatusChanged that moves the shipment to EXCEPTION or DELIVERY_FAILED."
    )

    old_status: Status | None
    new_status: Literal[Status.EXCEPTION, Status.DELIVERY_FAILED]
    sub_status: SubStatus = SubStatus.NONE
    occurred_at: datetime
    location: CarrierText | None = None
    description: CarrierText | None = None

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.new_status, self.sub_status, self.occurred_at)


class ShipmentStalled(TrackedShipmentEvent, AlertingEvent):
    """A parcel stopped moving for longer than its stall rule allows (once per stall episode)."""

    consumers: ClassVar[tuple[str, ...]] = ("ops SNS topic (alert.message)", "customer service queue")
    fires_when: ClassVar[str] = (
        "The stall detector finds a shipment due in the stall index (rules: no_pickup, in_transit, "
        "out_for_delivery, at_pickup_point, carrier_timeout). Once per episode; repeated sweeps never re-emit."
    )

    status: Status
    sub_status: SubStatus = SubStatus.NONE
    rule: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,40}$")] = Field(
        description="no_pickup | in_transit | out_for_delivery | at_pickup_point | carrier_timeout (or a custom rule)"
    )
    threshold_seconds: int | None = Field(default=None, ge=0, description="The rule's threshold, when time-based")
    stalled_for_seconds: int = Field(ge=0, description="Time since the last movement")
    last_event_text: CarrierText | None = None
    last_event_at: datetime | None = None
    episode_id: Identifier
    detected_at: datetime
    alert: Alert = Field(default_factory=pending_alert)

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.episode_id)

    def build_alert(self) -> Alert:
        return stall_alert(
            shipment_id=self.shipment_id,
            order_id=self.order_id,
            carrier=self.carrier,
            provider=self.provider,
            tracking_number=self.tracking_number,
            status=self.status,
            rule=self.rule,
            threshold_seconds=self.threshold_seconds,
            stalled_for_seconds=self.stalled_for_seconds,
            last_event_text=self.last_event_text,
            last_event_at=self.last_event_at,
        )

    @model_validator(mode="after")
    def _fill_alert(self) -> ShipmentStalled:
        return _with_alert(self)


class StallResolved(TrackedShipmentEvent):
    """A stalled parcel moved again (its stall episode is closed)."""

    consumers: ClassVar[tuple[str, ...]] = ("customer service queue (close the ticket)", "metrics")
    fires_when: ClassVar[str] = "A new tracking event arrives for a shipment whose stall episode was alerted."

    rule: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
    episode_id: Identifier
    new_status: Status
    sub_status: SubStatus = SubStatus.NONE
    stalled_for_seconds: int = Field(ge=0, description="How long the episode lasted")
    resolved_at: datetime

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.episode_id)


class EstimatedDeliveryChanged(ShipmentEvent):
    """The shipment's delivery estimate was made or moved (docs/estimates.md)."""

    consumers: ClassVar[tuple[str, ...]] = ("brand app / customer messaging (tell the customer)", "OMS (optional)")
    fires_when: ClassVar[str] = (
        "The waybill was recorded with an estimate, or a milestone scan (picked up, arrived at the destination "
        "city, out for delivery) or the carrier's own estimate changed it."
    )

    earliest: datetime
    most_likely: datetime | None = None
    latest: datetime
    confidence: float | None = Field(default=None, ge=0, le=1, description="Share of comparable parcels inside")
    basis: str | None = Field(default=None, max_length=80, description="e.g. lane:city:picked_up, default, carrier")
    previous_latest: datetime | None = Field(default=None, description="The latest of the estimate it replaces")

    def identity(self) -> tuple[object, ...]:
        return (self.shipment_id, self.earliest, self.most_likely, self.latest, self.basis)


class CarrierCircuitOpened(Event, AlertingEvent):
    """A provider kept failing: its circuit opened and new waybills skip it for a cool-down."""

    consumers: ClassVar[tuple[str, ...]] = ("ops SNS topic (alert.message)", "dashboards")
    fires_when: ClassVar[str] = "The circuit breaker counted `failures` within `window_seconds` for a provider."

    provider: Provider
    failures: int = Field(ge=1)
    window_seconds: int = Field(ge=1)
    cool_down_seconds: int = Field(ge=1)
    opened_at: datetime
    half_open_at: datetime
    last_error_code: str | None = None
    last_error_message: CarrierText | None = None
    alert: Alert = Field(default_factory=pending_alert)

    def identity(self) -> tuple[object, ...]:
        return (self.provider, self.opened_at)

    def build_alert(self) -> Alert:
        return circuit_opened_alert(
            provider=self.provider,
            failures=self.failures,
            window_seconds=self.window_seconds,
            cool_down_seconds=self.cool_down_seconds,
            opened_at=self.opened_at,
            half_open_at=self.half_open_at,
            last_error_code=self.last_error_code,
            last_error_message=self.last_error_message,
        )

    @model_validator(mode="after")
    def _fill_alert(self) -> CarrierCircuitOpened:
        return _with_alert(self)


class CarrierCircuitClosed(Event):
    """A probe through a half-open circuit succeeded: the provider takes traffic again."""

    consumers: ClassVar[tuple[str, ...]] = ("dashboards", "ops (informational)")
    fires_when: ClassVar[str] = "The first successful call after the cool-down closes the circuit."

    provider: Provider
    opened_at: datetime
    closed_at: datetime

    def identity(self) -> tuple[object, ...]:
        return (self.provider, self.opened_at)


class CarrierCapacityAlert(Event, AlertingEvent):
    """A carrier is running out: its e-waybill balance covers too few days of forecast, its daily intake cap
    was reached, or a day ahead is forecast to reach it (``domain.capacity``)."""

    consumers: ClassVar[tuple[str, ...]] = ("ops SNS topic (alert.message)", "dashboards")
    fires_when: ClassVar[str] = "The capacity planner's run finds the condition; once per carrier, kind and local day."

    carrier: Carrier
    kind: Literal["balance_low", "cap_reached", "cap_forecast"]
    day: date = Field(description="The local (China) day the planner judged")
    daily_cap: int | None = Field(description="Parcels a day the carrier takes; null: no cap configured")
    intake_today: int = Field(ge=0)
    forecast_today: float = Field(ge=0, description="Parcels forecast for the whole day")
    balance_left: int | None = Field(description="E-waybill numbers left; null: not known")
    balance_source: Literal["provider", "configured"] | None = None
    cover_days: float | None = Field(description="Days the balance lasts at the forecast; null: not known")
    min_cover_days: float
    cap_day: date | None = Field(description="The first day forecast to reach the cap")
    promotion: str | None = Field(default=None, description="The promotion behind the forecast, if any")
    alert: Alert = Field(default_factory=pending_alert)

    def identity(self) -> tuple[object, ...]:
        return (self.carrier, self.kind, self.day)

    def build_alert(self) -> Alert:
        return capacity_alert(
            carrier=self.carrier.value,
            kind=self.kind,
            day=self.day.isoformat(),
            daily_cap=self.daily_cap,
            intake_today=self.intake_today,
            forecast_today=self.forecast_today,
            balance_left=self.balance_left,
            cover_days=self.cover_days,
            min_cover_days=self.min_cover_days,
            cap_day=self.cap_day.isoformat() if self.cap_day else None,
            promotion=self.promotion,
        )

    @model_validator(mode="after")
    def _fill_alert(self) -> CarrierCapacityAlert:
        return _with_alert(self)


A = TypeVar(
    "A", "WaybillFailed", "ShipmentStalled", "CarrierCircuitOpened", "WaybillCancelFailed", "CarrierCapacityAlert"
)


def _with_alert(event: A) -> A:
    if not event.alert.message:
        object.__setattr__(event, "alert", event.build_alert())
    return event


EVENT_TYPES: tuple[type[Event], ...] = (
    ShipmentAccepted,
    TrackingRegistered,
    DeliveryConfirmed,
    WaybillCreated,
    WaybillFailed,
    WaybillCancelFailed,
    CarrierFailover,
    ShipmentStatusChanged,
    ShipmentDelivered,
    ShipmentException,
    ShipmentStalled,
    StallResolved,
    CarrierCircuitOpened,
    CarrierCircuitClosed,
    EstimatedDeliveryChanged,
    CarrierCapacityAlert,
    ReturnCreated,
    ReturnPickedUp,
    ReturnReceived,
    ReturnCancelled,
)
_BY_NAME: dict[str, type[Event]] = {cls.__name__: cls for cls in EVENT_TYPES}


def event_type(detail_type: str) -> type[Event]:
    try:
        return _BY_NAME[detail_type]
    except KeyError:
        raise KeyError(f"unknown parcelhub event {detail_type!r}") from None


def parse_event(detail_type: str, detail: Mapping[str, Any] | str) -> Event:
    """Read an event back (a consumer's view): ``detail-type`` + ``detail`` of an EventBridge event."""
    cls = event_type(detail_type)
    if isinstance(detail, str):
        return cls.model_validate_json(detail)
    return cls.model_validate(dict(detail))
