"""The domain model (pydantic v2).

Two words are kept apart everywhere: the **carrier** moves the parcel (``SF``, ``ZTO`` …, the
de-facto ShipperCode set) and the **provider** is the API we call (``kdniao``, ``sf``, ``kuaidi100``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator

from parcelhub.domain.returns import PickupWindow, ReturnReason, ReturnState
from parcelhub.domain.scan_time import TimeFlag
from parcelhub.domain.status import Status, SubStatus

#: Carriers send China local time without an offset.
CHINA_TZ = timezone(timedelta(hours=8), name="Asia/Shanghai")


class Carrier(StrEnum):
    """Who moves the parcel (canonical ShipperCode)."""

    SF = "SF"
    JD = "JD"
    ZTO = "ZTO"
    YTO = "YTO"
    STO = "STO"
    YD = "YD"
    EMS = "EMS"
    JTSD = "JTSD"
    DBL = "DBL"
    HTKY = "HTKY"
    YZPY = "YZPY"
    ZJS = "ZJS"
    UC = "UC"
    #: 菜鸟直送 (Cainiao's own delivery): Kdniao ShipperCode ``CNSD`` [C: a shop's Kdniao code table names
    #: "CNSD" 菜鸟直送 next to JTSD/DBL; not in a vendor source]
    CAINIAO = "CNSD"


class Provider(StrEnum):
    """Whose API we call."""

    KDNIAO = "kdniao"
    SF = "sf"
    KUAIDI100 = "kuaidi100"


class CustomerTier(StrEnum):
    REGULAR = "regular"
    VIP = "vip"


class ServiceLevel(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"


class ShipmentKind(StrEnum):
    """Where a shipment came from: an OMS order parcelhub issued the waybill for, a bare tracking number
    registered to be tracked (``POST /v1/trackings``), or a return of another shipment."""

    ORDER = "order"
    TRACKING = "tracking"
    RETURN = "return"


class EventSource(StrEnum):
    PUSH = "push"
    POLL = "poll"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


#: printable text: no C0/C1 control characters (they corrupt labels and logs)
_PRINTABLE = r"[^\x00-\x1f\x7f-\x9f]"
#: printable text with at least one visible character (checked after surrounding whitespace is stripped;
#: the OpenAPI document carries the same pattern, so a generator of valid input agrees with validation)
VISIBLE_TEXT = rf"^{_PRINTABLE}*[^\s\x00-\x1f\x7f-\x9f]{_PRINTABLE}*$"
TWO_VISIBLE = rf"^{_PRINTABLE}*[^\s\x00-\x1f\x7f-\x9f]{_PRINTABLE}*[^\s\x00-\x1f\x7f-\x9f]{_PRINTABLE}*$"
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=VISIBLE_TEXT)]
#: starts and ends with a digit, so stripping surrounding spaces cannot change whether it matches
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9\- ]{4,18}[0-9]$")]


#: what ``Money.amount`` accepts, as strictly as it validates it: 0 to 12 integer digits and at most 2 decimals,
#: as a JSON number or a decimal string (an empty or signed string is refused by both the document and the API)
_AMOUNT_INPUT_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 999999999999.99, "multipleOf": 0.01},
        {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$"},
    ],
    "title": "Amount",
}


class Money(_Model):
    amount: Annotated[
        Decimal,
        Field(ge=0, max_digits=14, decimal_places=2),
        WithJsonSchema(_AMOUNT_INPUT_SCHEMA, mode="validation"),
    ]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"


class Party(_Model):
    """A sender or receiver. Name, phone and address are personal data (encrypted at rest)."""

    name: NonEmpty
    phone: Phone
    province: NonEmpty
    city: NonEmpty
    district: NonEmpty
    #: two visible characters at least (``min_length`` counts the text before surrounding spaces are stripped)
    address: Annotated[str, StringConstraints(min_length=2, max_length=200, pattern=TWO_VISIBLE)]
    postcode: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")] | None = None
    company: Annotated[str, StringConstraints(max_length=100, pattern=rf"^{_PRINTABLE}*$")] | None = None


class Dimensions(_Model):
    # a millimetre at least (and DynamoDB stores no number below 1E-130)
    length_cm: float = Field(ge=0.1, le=500)
    width_cm: float = Field(ge=0.1, le=500)
    height_cm: float = Field(ge=0.1, le=500)


class Parcel(_Model):
    weight_kg: float = Field(ge=0.001, le=1000)  # a gram at least (DynamoDB stores no number below 1E-130)
    dimensions: Dimensions | None = None


class Item(_Model):
    name: NonEmpty
    quantity: int = Field(ge=1, le=100_000)
    unit_price: Money | None = None


class Waybill(_Model):
    """An electronic waybill as a provider issued it."""

    provider: Provider
    carrier: Carrier
    tracking_number: Annotated[str, StringConstraints(min_length=4, max_length=40)]
    provider_order_id: str | None = None  # the order id we sent (our shipment id)
    label_ref: str | None = None  # S3 key of the stored label
    sort_code: str | None = None  # 大头笔 / destination marking / route label
    origin_code: str | None = None
    destination_code: str | None = None
    package_code: str | None = None  # 集包地 / package centre
    label: str | None = Field(default=None, exclude=True)  # raw label data, stored in S3, not in the table


OrderState = Literal["open", "kept", "abandoned", "cancelled", "absent", "cancel_failed"]
#: order states in which the provider may hold a live order the hub does not keep
UNSETTLED_ORDER_STATES: frozenset[str] = frozenset({"open", "abandoned"})


def order_key(provider: Provider | str, order_id: str) -> str:
    """The key of a carrier order in ``Shipment.carrier_orders``: ``<provider>#<provider order id>``."""
    return f"{Provider(provider).value}#{order_id}"


class CarrierOrder(_Model):
    """An order the hub placed, or may have placed, with a provider for a shipment.

    ``open``: the create was (being) sent and its outcome is not settled yet - the one in-flight attempt;
    ``kept``: it is the shipment's waybill; ``abandoned``: it must not be kept and is to be cancelled;
    ``cancelled``: cancelled with the provider; ``absent``: the provider has no such order;
    ``cancel_failed``: cancelling it finally failed (an ops alert went out)."""

    provider: Provider
    carrier: Carrier
    order_id: str
    state: OrderState
    tracking_number: str | None = None
    at: datetime
    cancel_attempts: int = 0

    @property
    def key(self) -> str:
        return order_key(self.provider, self.order_id)


def content_hash(carrier: str, tracking_number: str, occurred_at: datetime, raw_code: str, text: str) -> str:
    """Content hash of an event: the dedupe key. Two pushes of the same scan hash the same."""
    stamp = occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps([carrier, tracking_number, stamp, raw_code, text.strip()], ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:20]


class TrackingEvent(_Model):
    """One carrier scan, mapped to the canonical model."""

    carrier: Carrier
    provider: Provider
    tracking_number: str
    occurred_at: datetime
    status: Status
    sub_status: SubStatus = SubStatus.NONE
    raw_code: str = ""
    raw_text: str = ""
    location: str | None = None
    source: EventSource = EventSource.PUSH
    content_hash: str = ""
    #: the status was read from the scan text (keyword classifier), not from a carrier code
    inferred: bool = False
    #: coordinates of the scan or of the parcel's current city, when the carrier sends them
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    #: the carrier's own exception reason (SF ``reasonCode`` / ``reasonName``)
    exception_code: str | None = None
    exception_text: str | None = None
    #: the order reference the provider echoes back (Kdniao ``CallBack``/``OrderCode``, SF ``orderid``)
    order_ref: str | None = None
    #: waybill-level facts as of this snapshot, carried by its newest event: the carrier's estimated
    #: delivery time and its signed flag (Kuaidi100 ``ischeck``, Kdniao ``State`` 3)
    estimated_delivery_at: datetime | None = None
    signed: bool | None = None
    #: set by the ingest when the scan time is implausible (kept in the timeline, never decides the status);
    #: not part of the event's wire form (the store keeps it with the timeline item)
    time_flag: TimeFlag | None = Field(default=None, exclude=True)

    @field_validator("occurred_at", "estimated_delivery_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("carrier times must carry a timezone (carriers send Asia/Shanghai time)")
        return value

    def model_post_init(self, __context: object) -> None:
        if not self.content_hash:
            object.__setattr__(
                self,
                "content_hash",
                content_hash(self.carrier, self.tracking_number, self.occurred_at, self.raw_code, self.raw_text),
            )


def first_of_each_hash(events: Iterable[TrackingEvent], known: Collection[str] = ()) -> list[TrackingEvent]:
    """The events in order, the first of each content hash, leaving out those whose hash is ``known``."""
    seen = set(known)
    out: list[TrackingEvent] = []
    for event in events:
        if event.content_hash not in seen:
            seen.add(event.content_hash)
            out.append(event)
    return out


#: the time layouts carriers send (Kdniao's documented answers use ``yyyy/MM/dd``; Kuaidi100's arrival
#: estimate comes to the hour; estimated delivery dates come without a time)
_CHINA_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H-%M-%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H",
    "%Y-%m-%d",
    "%Y/%m/%d",
)


def parse_china_time(value: str) -> datetime:
    """Parse a carrier's ``yyyy-MM-dd HH:mm:ss`` (also ``HH-mm-ss``, ``yyyy/MM/dd``, a date alone) as
    Asia/Shanghai time."""
    text = value.strip()
    for fmt in _CHINA_TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=CHINA_TZ)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"unreadable carrier time {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_TZ)


#: outcomes of a create attempt (what events summarize)
CREATE_OUTCOMES = frozenset({"created", "rejected", "unavailable", "auth_error", "skipped_circuit_open"})


class DeliveryWindow(_Model):
    """When the parcel is expected at the receiver: a carrier's estimate, or parcelhub's own from the
    lane's history (then with its most likely time, a confidence and the basis it was made on)."""

    earliest: datetime
    latest: datetime
    most_likely: datetime | None = None
    #: the share of comparable parcels delivered inside [earliest, latest] (0..1), when estimated
    confidence: float | None = Field(default=None, ge=0, le=1)
    #: what the estimate rests on, e.g. ``lane:city:picked_up`` or ``default`` or ``carrier``
    basis: str | None = None

    @field_validator("earliest", "latest", "most_likely")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a delivery window must carry a timezone")
        return value

    def model_post_init(self, __context: object) -> None:
        if self.latest < self.earliest:
            raise ValueError("a delivery window ends after it starts")
        if self.most_likely is not None and not self.earliest <= self.most_likely <= self.latest:
            raise ValueError("a delivery window's most likely time lies inside it")


class SelectionOption(_Model):
    """One candidate as the ``smart`` strategy saw it: price, window, the lane's record, and whether it
    could be chosen (``blocked`` names why not)."""

    provider: Provider
    carrier: Carrier
    service: ServiceLevel
    #: the tariff price (fen); None when no tariff prices this carrier and service
    price_fen: int | None = None
    window: DeliveryWindow
    meets_promise: bool
    #: deliveries on the lane level judged (city lane, else province lane) and its rates there
    lane_deliveries: int = 0
    lane_on_time_rate: float | None = Field(default=None, ge=0, le=1)
    lane_exception_rate: float | None = Field(default=None, ge=0, le=1)
    available: bool
    #: ``circuit_open``, ``lane_on_time`` or ``lane_exceptions`` when not available
    blocked: str | None = None


class SelectionRecord(_Model):
    """Why the shipment went to its carrier: the choice, the alternatives ranked, and the reason."""

    strategy: Literal["rules", "smart"]
    provider: Provider
    carrier: Carrier
    #: ``cheapest_meeting_promise``, ``fastest_promise_not_met``, ``all_blocked_fastest`` or ``rule:<name>``
    reason: str
    #: the promise rule applied and the latest delivery it allows (smart only)
    promise: str | None = None
    promise_by: datetime | None = None
    promise_met: bool = True
    #: what the ``rules`` strategy would have tried first (the saving is the difference in price)
    rules_provider: Provider | None = None
    rules_carrier: Carrier | None = None
    #: every candidate, best first (the chosen one first); the workflow tries them in ``plan`` order
    options: list[SelectionOption] = Field(default_factory=list)


class WaybillAttempt(_Model):
    """One line of a shipment's waybill log: a create attempt, or the fate of an order not kept
    (``cancelled`` with its provider, or ``cancel_failed``: still live, ops alerted)."""

    provider: Provider
    carrier: Carrier
    outcome: Literal[
        "created", "rejected", "unavailable", "auth_error", "skipped_circuit_open", "cancelled", "cancel_failed"
    ]
    error_code: str | None = None
    error_message: str | None = None
    at: datetime


class ShipmentRequest(_Model):
    """What the OMS hands over (the body of ``POST /v1/shipments``)."""

    order_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.:]{0,63}$")]
    receiver: Party
    sender: Party | None = None
    parcels: list[Parcel] = Field(min_length=1, max_length=50)
    items: list[Item] = Field(min_length=1, max_length=200)
    declared_value: Money
    customer_tier: CustomerTier = CustomerTier.REGULAR
    carrier: Carrier | None = None
    service: ServiceLevel = ServiceLevel.STANDARD

    def fingerprint(self) -> str:
        """Stable hash of the request body: same order id + same body = the same shipment."""
        body = self.model_dump_json(exclude_none=False)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    @property
    def total_weight_kg(self) -> float:
        return round(sum(p.weight_kg for p in self.parcels), 3)


class ReturnRequest(_Model):
    """What ``POST /v1/shipments/{id}/returns`` asks for: some of the shipment's items, why, where the
    courier collects them (the original receiver when absent, decrypted server-side) and when."""

    items: list[Item] = Field(min_length=1, max_length=200)
    reason: ReturnReason
    reason_text: Annotated[str, StringConstraints(max_length=500, pattern=rf"^{_PRINTABLE}*$")] | None = None
    pickup_address: Party | None = None
    pickup_window: PickupWindow


class PickupBooking(_Model):
    """A door pickup booked with a provider for a return (no personal data: the courier is masked)."""

    provider: Provider
    carrier: Carrier
    #: the order id we sent (the return's shipment id) and the provider's own booking id, when it gave one
    pickup_order_id: str
    booking_id: str | None = None
    #: the return's waybill number, when the provider issued it at booking (SF does; Kdniao 1001 may not)
    tracking_number: str | None = None
    window: PickupWindow
    courier_masked: str | None = None
    booked_at: datetime
    cancelled_at: datetime | None = None


#: a tracking number as carriers print it: letters and digits (spaces and dashes are tolerated and removed)
TrackingNumberText = Annotated[
    str, StringConstraints(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9 \-]*[A-Za-z0-9]$")
]
#: a receiver phone as a marketplace or 3PL hands it over: masked (``138****0000``) or whole; its last four
#: digits are what carriers ask for (SF route queries) and what the tracking lookup form checks
MaskedPhone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9*][0-9* \-]{2,18}[0-9]{4}$")]
OrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.:]{0,63}$")]


class TrackingRequest(_Model):
    """The body of ``POST /v1/trackings``: a parcel parcelhub did not ship, to be tracked by its number."""

    tracking_number: TrackingNumberText
    #: the carrier when known; detected from the number when not
    carrier: Carrier | None = None
    #: the brand's order the parcel belongs to (a marketplace order, a 3PL's shipment); one is made up
    #: from the number when absent, so registering the same number again finds the same shipment
    order_id: OrderId | None = None
    receiver_phone: MaskedPhone | None = None

    def fingerprint(self, number: str) -> str:
        body = json.dumps([number, self.carrier, self.order_id, self.receiver_phone])
        return hashlib.sha256(body.encode("utf-8")).hexdigest()


class CarrierDetection(_Model):
    """How a tracked number's carrier was found: ``given`` by the caller; ``pattern`` (a near-certain
    number format); ``aggregator`` (an ambiguous format the provider's recognition API confirmed);
    ``pattern_unconfirmed`` (ambiguous, recognition unavailable: the best pattern, corrected when the
    aggregator reports another company); ``corrected`` (the aggregator's push named another company);
    ``unknown`` (no format matches: the recognisers are asked, and nobody knowing it fails the number)."""

    method: Literal["given", "pattern", "aggregator", "pattern_unconfirmed", "corrected", "unknown"]
    #: the number-pattern candidates, best first
    candidates: list[Carrier] = Field(default_factory=list)
    confirmed_by: Provider | None = None
    corrected_from: Carrier | None = None


class SignType(StrEnum):
    """How a delivered parcel was signed for."""

    IN_PERSON = "in_person"  # the receiver signed
    PROXY = "proxy"  # someone else signed (family, colleague, reception, guard)
    LOCKER = "locker"  # put in a parcel locker (丰巢, 快递柜)
    STATION = "station"  # left at a pickup station (菜鸟驿站, 代收点)
    UNKNOWN = "unknown"


class ProofOfDelivery(_Model):
    """What proves a delivery: from the signing scan and the provider's fields; names and phones masked."""

    signed_at: datetime
    sign_type: SignType
    provider: Provider
    raw_code: str = ""
    #: the locker or station (a public place, not personal)
    station: str | None = None
    #: masked: ``王*`` / ``138****0000``
    courier: str | None = None
    signer: str | None = None


class DeliveryReceipt(_Model):
    """The provider's receipt of a delivery (the signed slip or photo), copied into the encrypted bucket at
    once (the provider's links expire) and served by a short-lived link: ``copied`` with its S3 key, or
    ``unavailable`` (the provider has none for the parcel)."""

    state: Literal["copied", "unavailable"]
    ref: str | None = None
    content_type: str | None = None
    provider: Provider
    at: datetime


class Shipment(_Model):
    """A shipment as the hub knows it. Personal data lives here only in masked form; the encrypted
    originals are in ``pii`` (an opaque envelope, see ``parcelhub.security``)."""

    shipment_id: str
    order_id: str
    kind: ShipmentKind = ShipmentKind.ORDER
    #: how the carrier of a tracked number (``kind`` tracking) was found
    detection: CarrierDetection | None = None
    #: the proof of delivery, once delivered (from the signing scan) and the provider's receipt, once copied
    proof: ProofOfDelivery | None = None
    receipt: DeliveryReceipt | None = None
    status: Status = Status.PENDING
    sub_status: SubStatus = SubStatus.NONE
    customer_tier: CustomerTier = CustomerTier.REGULAR
    service: ServiceLevel = ServiceLevel.STANDARD
    pinned_carrier: Carrier | None = None
    declared_value: Money
    parcels: list[Parcel]
    items: list[Item]
    receiver_masked: dict[str, str]
    sender_masked: dict[str, str] | None = None
    origin_province: str
    origin_city: str
    destination_province: str
    destination_city: str
    pii: dict[str, str] = Field(default_factory=dict, repr=False)
    request_fingerprint: str = ""
    carrier: Carrier | None = None
    provider: Provider | None = None
    tracking_number: str | None = None
    waybill: Waybill | None = None
    waybill_attempts: list[WaybillAttempt] = Field(default_factory=list)
    #: every order placed with a provider for this shipment, by ``order_key`` (see ``CarrierOrder``)
    carrier_orders: dict[str, CarrierOrder] = Field(default_factory=dict)
    #: the key of the one carrier attempt in flight (taken by a conditional write)
    open_order: str | None = None
    #: when the recovery sweep looks at the shipment if its workflow has not settled it by then
    recovery_due: datetime | None = None
    redrives: int = 0  # executions started by the recovery sweep
    workflow_done: bool = False  # the latest waybill run ended (announced its waybill, or failed)
    retries: int = 0  # executions started by /retry
    retry_execution: str | None = None  # the name of the latest /retry execution
    status_key: str | None = None  # precedence key of the winning tracking event (see domain.status)
    last_event_at: datetime | None = None
    last_event_text: str | None = None
    #: the expected delivery window, when a carrier or a promise gave one (shown on the tracking page)
    estimated_delivery: DeliveryWindow | None = None
    #: the estimate made at waybill creation and kept as the promise (on-time is measured against it)
    promised_delivery: DeliveryWindow | None = None
    #: how the carrier was chosen (the ``smart`` strategy's options and reason; the rule under ``rules``)
    selection: SelectionRecord | None = None
    #: HMAC of the receiver phone's last four digits (the tracking lookup form; see security.links)
    lookup_digest: str | None = Field(default=None, repr=False)
    created_at: datetime
    updated_at: datetime
    version: int = 0
    #: the freight the provider billed, when it reported it (SF freight detail, Kuaidi100 settlement); a
    #: delivery fact's cost is this, else the tariff's price (marked estimated)
    billed_cost: Money | None = None
    #: a return (kind RETURN): the shipment it returns, its own flow as the use case last moved it (the
    #: parcel's tracking advances it further, see ``domain.returns.advance``), why, and its door pickup
    return_of: str | None = None
    return_state: ReturnState | None = None
    return_reason: ReturnReason | None = None
    return_reason_text: str | None = None
    pickup: PickupBooking | None = None
    #: the pickup window asked for (the workflow books it; ``pickup`` has the window booked)
    pickup_window: PickupWindow | None = None
    #: an original shipment: the ids of its returns, newest last (stored, so the shipment's view lists
    #: them with one read and no index; appended when a return is created)
    returns: list[str] = Field(default_factory=list)
