"""What every event contract shares (ARCHITECTURE §7): the ``Event`` base with its deterministic id, the
shipment events' common fields, the alerting mixin, and the field types. The contracts themselves are in
:mod:`parcelhub.events.contracts` (the shipment's life) and :mod:`parcelhub.events.tracked` (tracked
numbers, returns, proof of delivery)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from parcelhub.domain.models import Carrier, Provider
from parcelhub.events.alerts import Alert
from parcelhub.security.masking import redact_text

SOURCE = "parcelhub"
SCHEMA_VERSION: Literal[1] = 1
_TEXT_LIMIT = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


def _redacted(value: str) -> str:
    text = redact_text(value.strip())
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


#: Free text from a carrier or provider: redacted (mobile numbers, signer names) and capped.
CarrierText = Annotated[str, AfterValidator(_redacted)]
TrackingNumber = Annotated[str, StringConstraints(min_length=4, max_length=40)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _id_part(value: object) -> object:
    if isinstance(value, datetime):
        return _stamp(value)
    return value


# ------------------------------------------------------------------------------------------ models

_PENDING_ALERT = Alert.model_construct(subject="", message="")


def pending_alert() -> Alert:
    """The alert an alerting event carries until it builds its own (see ``AlertingEvent``)."""
    return _PENDING_ALERT


class Event(BaseModel):
    """Base of every event. Subclasses define :meth:`identity` (what makes two events "the same")."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        str_strip_whitespace=True,
    )

    #: Who consumes the event (documentation; rendered into docs/events.md).
    consumers: ClassVar[tuple[str, ...]] = ()
    #: When the event fires (documentation).
    fires_when: ClassVar[str] = ""

    event_id: str = Field(
        default="",
        pattern=r"^[0-9a-f]{32}$",
        description="Deterministic id (hash of the event's identity): consumers dedupe on it",
    )
    emitted_at: datetime = Field(default_factory=utc_now, description="When parcelhub published the event (UTC)")
    schema_version: Literal[1] = SCHEMA_VERSION

    @classmethod
    def detail_type(cls) -> str:
        return cls.__name__

    def identity(self) -> tuple[object, ...]:
        raise NotImplementedError

    @field_validator("*", mode="after")
    @classmethod
    def _aware_times(cls, value: object) -> object:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("times must carry a timezone")
        return value

    def model_post_init(self, __context: object) -> None:
        if not self.event_id:
            parts = [self.detail_type(), *(_id_part(p) for p in self.identity())]
            digest = hashlib.sha256(json.dumps(parts, ensure_ascii=False, default=str).encode("utf-8"))
            object.__setattr__(self, "event_id", digest.hexdigest()[:32])

    def detail_json(self) -> str:
        return self.model_dump_json()


class ShipmentEvent(Event):
    """Fields every shipment event carries (``carrier``/``provider``/``tracking_number`` are null
    until a waybill exists)."""

    shipment_id: Identifier = Field(description="The hub's shipment id (correlation id everywhere)")
    order_id: Identifier = Field(description="The OMS order id")
    carrier: Carrier | None = Field(default=None, description="Who moves the parcel (ShipperCode)")
    provider: Provider | None = Field(default=None, description="Whose API issued the waybill / tracks it")
    tracking_number: TrackingNumber | None = Field(default=None, description="The carrier's waybill number")


class TrackedShipmentEvent(ShipmentEvent):
    """A shipment event after the waybill: carrier, provider and tracking number are known."""

    carrier: Carrier = Field(description="Who moves the parcel (ShipperCode)")
    provider: Provider = Field(description="Whose API issued the waybill / tracks it")
    tracking_number: TrackingNumber = Field(description="The carrier's waybill number")


class AlertingEvent:
    """Mixin: the event carries an ops ``alert``, built from its fields by :meth:`build_alert` when not given."""

    def build_alert(self) -> Alert:
        raise NotImplementedError
