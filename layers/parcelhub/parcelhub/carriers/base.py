"""The provider plugin Protocol (ARCHITECTURE §5), its typed errors and value types.

A plugin is a folder under ``parcelhub/carriers/<provider>/`` with typed settings, a pure mapper
(our models <-> provider payloads), an I/O-only ``requests`` client and the provider's status-code
table as data. It is registered with one line in ``parcelhub.carriers.registry``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from parcelhub.domain.models import Carrier, Party, Provider, ShipmentRequest, TrackingEvent, Waybill
from parcelhub.domain.status import Status, SubStatus

# --------------------------------------------------------------------------------------------- errors


class CarrierError(Exception):
    """Base of every provider error. ``code``/``message`` are the provider's own when it gave them."""

    retryable = False

    def __init__(self, provider: str, message: str, code: str | None = None) -> None:
        super().__init__(f"{provider}: {message}" + (f" [{code}]" if code else ""))
        self.provider = provider
        self.code = code
        self.message = message


class CarrierUnavailable(CarrierError):
    """Timeouts, connection errors, 5xx, rate limits: retry later or fail over."""

    retryable = True


class CarrierRejected(CarrierError):
    """A business rejection (bad address, duplicate order…): do not retry this provider."""


class CarrierDuplicateOrder(CarrierRejected):
    """The provider already has an order with this id (e.g. SF 8016): fetch it, don't fail."""


class CarrierAuthError(CarrierError):
    """Bad credentials or signature: a configuration problem, alert and don't retry."""


class PushRejected(Exception):
    """An inbound push failed authentication (bad signature or token)."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider} push rejected: {reason}")
        self.provider = provider
        self.reason = reason


class PushUnreadable(Exception):
    """An inbound push is authentic-looking but cannot be read (malformed form/JSON)."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider} push unreadable: {reason}")
        self.provider = provider
        self.reason = reason


# ---------------------------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class WaybillOrder:
    """Everything a provider needs to issue a waybill, with personal data in the clear.

    Built only inside the waybill step, after decryption; never logged.
    """

    shipment_id: str
    carrier: Carrier
    request: ShipmentRequest
    sender: Party

    @property
    def receiver(self) -> Party:
        return self.request.receiver


@dataclass(frozen=True, slots=True)
class TrackingSubscription:
    carrier: Carrier
    tracking_number: str
    callback_url: str
    phone_last4: str | None = None  # SF (and Kuaidi100 for SF) want the last 4 phone digits
    order_id: str | None = None
    origin: str | None = None
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An inbound HTTP request as a webhook sees it (the raw body, never re-serialised)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The exact reply a provider expects to a push."""

    status_code: int
    body: str
    content_type: str = "application/json;charset=UTF-8"


@dataclass(frozen=True, slots=True)
class ParsedPush:
    """The result of ``parse_push``: canonical events plus provider-level notes about the push."""

    events: Sequence[TrackingEvent]
    #: tracking numbers the push was about (also those with no traces yet)
    tracking_numbers: Sequence[tuple[Carrier, str]] = ()
    #: codes the push carried that have no mapping (for the UNMAPPED metric)
    unmapped_codes: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class CodeMapping:
    status: Status
    sub_status: SubStatus = SubStatus.NONE


# ------------------------------------------------------------------------------------------ protocol


@runtime_checkable
class ProviderPlugin(Protocol):
    """What every provider implements. I/O methods raise the typed errors above."""

    name: Provider
    #: whether the provider issues e-waybills (Kuaidi100 here is tracking-only)
    issues_waybills: bool
    #: whether the provider pushes tracking to our webhook (else the poller queries it)
    pushes_tracking: bool

    def supported_carriers(self) -> frozenset[Carrier]: ...

    def create_waybill(self, order: WaybillOrder) -> Waybill: ...

    def cancel_waybill(self, waybill: Waybill) -> None: ...

    def subscribe_tracking(self, subscription: TrackingSubscription) -> None: ...

    def query_tracking(
        self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None
    ) -> list[TrackingEvent]: ...

    def verify_push(self, request: HttpRequest) -> None:
        """Authenticate a push (signature or token). Raise ``PushRejected``/``PushUnreadable``.

        Cheap and free of I/O: the webhook calls it on the ACK path."""
        ...

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        """Verify, then parse a push into canonical events."""
        ...

    def push_ack(self, ok: bool, reason: str = "") -> HttpReply: ...
