"""The provider plugin Protocol (ARCHITECTURE §5), its typed errors, capabilities and value types.

A plugin is a folder under ``parcelhub/carriers/<provider>/`` with the same modules in every provider
(``settings``, ``codes``, ``signing``, ``builders``, ``parsers``, ``client``, ``plugin``; see
``docs/adding-a-provider.md``). It is registered with one line in ``parcelhub.carriers.registry``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from parcelhub.domain.models import (
    CHINA_TZ,
    Carrier,
    Item,
    Parcel,
    Party,
    PickupBooking,
    Provider,
    ShipmentRequest,
    TrackingEvent,
    Waybill,
)
from parcelhub.domain.returns import PickupWindow
from parcelhub.domain.status import Status, SubStatus

# --------------------------------------------------------------------------------------- capabilities


class Capability(StrEnum):
    """What a provider can do beyond tracking (every provider subscribes and answers queries).

    A plugin lists its capabilities in ``capabilities``; a method of a capability it lacks raises
    ``CapabilityNotSupported``. Callers check the set instead of probing for methods."""

    ISSUE_WAYBILLS = "issue_waybills"  # create_waybill
    CANCEL_WAYBILLS = "cancel_waybills"  # cancel_waybill
    FETCH_WAYBILLS = "fetch_waybills"  # fetch_waybill: recover the waybill of an order it already has
    PUSH_TRACKING = "push_tracking"  # pushes tracking to our webhook (else the poller queries it)
    BOOK_PICKUP = "book_pickup"  # book_pickup / cancel_pickup: a door pickup for a return
    WAYBILL_BALANCE = "waybill_balance"  # waybill_balance: e-waybill numbers left for a carrier
    RECOGNISE_NUMBERS = "recognise_numbers"  # recognise_number: the carriers a tracking number may be of
    DELIVERY_RECEIPTS = "delivery_receipts"  # delivery_receipt: the signed slip or photo of a delivery


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


class CarrierOrderNotFound(CarrierRejected):
    """The provider has no order with this id (asked after an unclear create: it was never placed)."""


class CapabilityNotSupported(CarrierRejected):
    """The provider lacks the capability the call needs (Kuaidi100 issues no waybills, ...)."""

    def __init__(self, provider: str, capability: Capability, message: str) -> None:
        super().__init__(provider, message, "UNSUPPORTED")
        self.capability = capability


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
class PickupOrder:
    """Everything a provider needs to send a courier to collect a return, personal data in the clear.

    ``pickup`` is where the courier collects (the customer), ``receiver`` where the return goes (the
    warehouse: the original shipment's sender). Built only inside the returns use case; never logged."""

    return_id: str  # our order id at the provider (the return's shipment id)
    carrier: Carrier
    pickup: Party
    receiver: Party
    items: tuple[Item, ...]
    parcels: tuple[Parcel, ...]
    window: PickupWindow
    remark: str = ""

    @property
    def total_weight_kg(self) -> float:
        return round(sum(p.weight_kg for p in self.parcels), 3)


@dataclass(frozen=True, slots=True)
class TrackingSubscription:
    carrier: Carrier
    tracking_number: str
    callback_url: str
    phone_last4: str | None = None  # SF (and Kuaidi100 for SF) want the last 4 phone digits
    order_id: str | None = None
    origin: str | None = None
    destination: str | None = None
    #: the carrier is our guess: ask the provider to correct it (Kuaidi100 ``autoCom``); a correction
    #: comes back in ``ParsedPush.corrections``
    auto_detect: bool = False


@dataclass(frozen=True, slots=True)
class TrackingQuery:
    """One real-time tracking query (what ``query_tracking`` is asked)."""

    carrier: Carrier
    tracking_number: str
    phone_last4: str | None = None  # SF wants the last 4 phone digits


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An inbound HTTP request as a webhook sees it (the raw body, never re-serialised)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        from parcelhub.carriers.wire import field

        value: str | None = field(self.headers, name)
        return value


#: a webhook path parameter that is a credential (SF's URL token), and what is kept of it once verified
TOKEN_PARAM = "token"  # noqa: S105 - a parameter name, not a password  # nosec B105
TOKEN_DIGEST_PARAM = "token_sha256"  # noqa: S105 - a parameter name, not a password  # nosec B105


def sealed_path_params(path_params: Mapping[str, str]) -> dict[str, str]:
    """The path parameters of a verified push as they may be queued and archived: a URL token is replaced
    by its SHA-256 (``parse_push`` re-verifies against it), so no credential is ever stored."""
    import hashlib

    sealed = {k: v for k, v in path_params.items() if k != TOKEN_PARAM}
    if TOKEN_PARAM in path_params:
        sealed[TOKEN_DIGEST_PARAM] = hashlib.sha256(path_params[TOKEN_PARAM].encode("utf-8")).hexdigest()
    return sealed


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The exact reply a provider expects to a push."""

    status_code: int
    body: str
    content_type: str = "application/json;charset=UTF-8"


@dataclass(frozen=True, slots=True)
class ReceiptFile:
    """A delivery receipt as the provider serves it (an image of the signed slip, a photo)."""

    body: bytes = field(repr=False)
    content_type: str


@dataclass(frozen=True, slots=True)
class CarrierCorrection:
    """The provider says a number belongs to another carrier than the one it was subscribed under
    (Kuaidi100 ``autoCheck=1`` with ``comOld``/``comNew``); ``old`` is ``None`` when the old company
    code is not one of ours."""

    tracking_number: str
    old: Carrier | None
    new: Carrier


@dataclass(frozen=True, slots=True)
class ParsedPush:
    """What ``parse_push`` and ``query_tracking`` return: canonical events plus provider-level notes."""

    events: Sequence[TrackingEvent]
    #: tracking numbers the push or answer was about (also those with no traces yet)
    tracking_numbers: Sequence[tuple[Carrier, str]] = ()
    #: codes nothing explained: their events are UNMAPPED (the ``UnmappedCarrierCode`` metric)
    unmapped_codes: Sequence[str] = ()
    #: codes our tables do not know but another signal explained (the provider's normalised status or
    #: the scan text; the ``InferredCarrierCode`` metric), so the tables can catch up
    inferred_codes: Sequence[str] = ()
    #: the provider corrected a number's carrier: the events above are already keyed under ``new``
    corrections: Sequence[CarrierCorrection] = ()


@dataclass(frozen=True, slots=True)
class CodeMapping:
    status: Status
    sub_status: SubStatus = SubStatus.NONE


def china_now() -> datetime:
    """The plugins' default clock (push replies and synthetic events are stamped in China time)."""
    return datetime.now(CHINA_TZ)


# ------------------------------------------------------------------------------------------ protocol


@runtime_checkable
class ProviderPlugin(Protocol):
    """What every provider implements. I/O methods raise the typed errors above."""

    name: Provider
    #: the optional things this provider does (see ``Capability``)
    capabilities: frozenset[Capability]

    def supported_carriers(self) -> frozenset[Carrier]: ...

    def create_waybill(self, order: WaybillOrder) -> Waybill:
        """Issue a waybill (``Capability.ISSUE_WAYBILLS``)."""
        ...

    def cancel_waybill(self, waybill: Waybill) -> None:
        """Cancel a waybill; idempotent (``Capability.CANCEL_WAYBILLS``)."""
        ...

    def fetch_waybill(self, order_id: str) -> Waybill:
        """The waybill of an order the provider already has (after ``CarrierDuplicateOrder``, or to settle
        a create whose answer was lost); ``CarrierOrderNotFound`` when it has none
        (``Capability.FETCH_WAYBILLS``)."""
        ...

    def waybill_balance(self, carrier: Carrier) -> int:
        """The e-waybill numbers left for the carrier on the brand's account (``Capability.WAYBILL_BALANCE``)."""
        ...

    def delivery_receipt(self, carrier: Carrier, tracking_number: str, phone_last4: str | None) -> ReceiptFile | None:
        """The delivery's receipt, downloaded at once (the provider's links expire); ``None`` when the
        provider has none for the parcel (``Capability.DELIVERY_RECEIPTS``)."""
        ...

    def book_pickup(self, order: PickupOrder) -> PickupBooking:
        """Book a courier to collect a return at the door (``Capability.BOOK_PICKUP``)."""
        ...

    def cancel_pickup(self, booking: PickupBooking) -> None:
        """Cancel a booked pickup before the courier collects; idempotent (``Capability.BOOK_PICKUP``)."""
        ...

    def recognise_number(self, number: str) -> list[Carrier]:
        """The carriers the provider says a tracking number may be of, best first; empty when it does not
        know (``Capability.RECOGNISE_NUMBERS``)."""
        ...

    def subscribe_tracking(self, subscription: TrackingSubscription) -> None: ...

    def query_tracking(self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None) -> ParsedPush:
        """The provider's current timeline, parsed like a push (unknown codes in ``unmapped_codes``)."""
        ...

    def verify_push(self, request: HttpRequest) -> None:
        """Authenticate a push (signature or token). Raise ``PushRejected``/``PushUnreadable``.

        Cheap and free of I/O: the webhook calls it on the ACK path."""
        ...

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        """Verify, then parse a push into canonical events."""
        ...

    def push_ack(self, ok: bool, reason: str = "", request: HttpRequest | None = None) -> HttpReply:
        """The provider's reply to a push; given the ``request``, in the shape the push came in (SF
        answers an XML push in XML, a JSON one in JSON)."""
        ...
