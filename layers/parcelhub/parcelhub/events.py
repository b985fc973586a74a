"""The EventBridge events parcelhub emits (the contracts) and the publisher (ARCHITECTURE §7).

Every event goes to the hub's bus with ``Source = "parcelhub"`` and ``DetailType`` = the model's class
name; the model *is* the ``detail``. The JSON Schema of each detail is generated from these models into
``infra/events/<EventName>.json`` and ``docs/events.md``::

    python -m parcelhub.events --write infra/events --docs docs/events.md
    python -m parcelhub.events --check infra/events --docs docs/events.md   # CI: fails on drift

Rules that every event follows:

* ``event_id`` is deterministic (a hash of the event's identity: shipment id + what happened), so a
  retried Lambda that publishes the same fact twice gives consumers the same id to dedupe on.
* ``emitted_at`` is when we published it (UTC); the business time is in the event's own fields.
* **No personal data.** No names, phones or street addresses; carrier scan texts are passed through
  :func:`parcelhub.security.masking.redact_text` (mobile numbers, signer names masked).
* The three alerting events (``ShipmentStalled``, ``WaybillFailed``, ``CarrierCircuitOpened``) carry
  ``alert = {subject, message}``: a bilingual (Chinese, then English) text a person can act on. The
  ops rule forwards ``$.detail.alert.message`` to the ops SNS topic. The texts are built by the pure
  functions :func:`stall_alert`, :func:`waybill_failed_alert` and :func:`circuit_opened_alert`.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from parcelhub.domain.models import CHINA_TZ, Carrier, CustomerTier, Provider, ServiceLevel, WaybillAttempt
from parcelhub.domain.status import Status, SubStatus
from parcelhub.security.masking import redact_text

SOURCE = "parcelhub"
SCHEMA_VERSION: Literal[1] = 1
#: PutEvents limits: 10 entries and 256 KiB per call (an entry's size: Source + DetailType + Detail +
#: Resources in UTF-8 bytes, + 14 bytes when Time is set).
MAX_ENTRIES_PER_CALL = 10
MAX_CALL_BYTES = 256 * 1024
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


class Alert(BaseModel):
    """A human-readable ops alert: forwarded to the ops SNS topic by the EventBridge rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=99, description="ASCII, < 100 chars (SNS Subject rules)")
    message: str = Field(min_length=1, description="Chinese, then English; plain text, one fact per line")


_PENDING_ALERT = Alert.model_construct(subject="", message="")


def _pending_alert() -> Alert:
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

    @classmethod
    def example(cls) -> Event:
        """A realistic instance (docs, contract tests)."""
        return _EXAMPLES[cls.__name__]()


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
    alert: Alert = Field(default_factory=_pending_alert)

    def identity(self) -> tuple[object, ...]:
        # A /retry that fails again has more attempts: a new event, not a duplicate.
        return (self.shipment_id, len(self.attempts))

    def build_alert(self) -> Alert:
        return waybill_failed_alert(self.shipment_id, self.order_id, self.attempts)

    @model_validator(mode="after")
    def _fill_alert(self) -> WaybillFailed:
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
    alert: Alert = Field(default_factory=_pending_alert)

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
    alert: Alert = Field(default_factory=_pending_alert)

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


A = TypeVar("A", "WaybillFailed", "ShipmentStalled", "CarrierCircuitOpened")


def _with_alert(event: A) -> A:
    if not event.alert.message:
        object.__setattr__(event, "alert", event.build_alert())
    return event


#: Every event type, in documentation order.
EVENT_TYPES: tuple[type[Event], ...] = (
    ShipmentAccepted,
    WaybillCreated,
    WaybillFailed,
    CarrierFailover,
    ShipmentStatusChanged,
    ShipmentDelivered,
    ShipmentException,
    ShipmentStalled,
    StallResolved,
    CarrierCircuitOpened,
    CarrierCircuitClosed,
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


# ------------------------------------------------------------------------------------------ alerts

CARRIER_NAMES_ZH: dict[str, str] = {
    "SF": "顺丰速运",
    "JD": "京东物流",
    "ZTO": "中通快递",
    "YTO": "圆通速递",
    "STO": "申通快递",
    "YD": "韵达速递",
    "EMS": "EMS",
    "JTSD": "极兔速递",
    "DBL": "德邦快递",
    "HTKY": "百世快递",
    "YZPY": "邮政快递包裹",
    "ZJS": "宅急送",
    "UC": "优速快递",
}
PROVIDER_NAMES: dict[str, str] = {
    "kdniao": "快递鸟 Kdniao",
    "sf": "顺丰丰桥 SF Fengqiao",
    "kuaidi100": "快递100 Kuaidi100",
}
STATUS_NAMES_ZH: dict[Status, str] = {
    Status.PENDING: "待下单",
    Status.WAYBILL_CREATED: "已下单待揽收",
    Status.WAYBILL_FAILED: "下单失败",
    Status.PICKED_UP: "已揽收",
    Status.IN_TRANSIT: "运输中",
    Status.ARRIVED_AT_DESTINATION_CITY: "到达目的城市",
    Status.OUT_FOR_DELIVERY: "派送中",
    Status.AVAILABLE_FOR_PICKUP: "待取件",
    Status.DELIVERED: "已签收",
    Status.DELIVERY_FAILED: "派送失败",
    Status.EXCEPTION: "异常",
    Status.RETURNING: "退回中",
    Status.RETURNED: "已退回",
    Status.CANCELLED: "已取消",
}


@dataclass(frozen=True, slots=True)
class _RuleText:
    zh: str
    en: str
    action_zh: str
    action_en: str


#: What each stall rule means and what a person should do about it.
STALL_RULES: dict[str, _RuleText] = {
    "no_pickup": _RuleText(
        "下单后超过 {t} 未揽收",
        "not picked up {t} after the waybill was created",
        "联系承运商网点催促揽收；若仓库未交运请尽快交运，必要时取消运单改派其他承运商。",
        "Ask the carrier's branch to collect it (check the warehouse handed it over); "
        "if it cannot be collected, cancel the waybill and re-ship with another carrier.",
    ),
    "in_transit": _RuleText(
        "运输途中超过 {t} 无轨迹更新",
        "no tracking update for {t} in transit",
        "向承运商提交查件工单确认包裹位置；48 小时内仍无结果按丢件理赔并主动联系客户。",
        "Open a trace request with the carrier to locate the parcel; if it is not found within 48 h, "
        "file a lost-parcel claim and contact the customer first.",
    ),
    "out_for_delivery": _RuleText(
        "派送中超过 {t} 未签收",
        "out for delivery for more than {t} without delivery",
        "联系派件网点确认派送情况；必要时联系收件人改约派送时间或地址。",
        "Call the delivery station to check on the delivery; if needed, agree a new time or address "
        "with the recipient.",
    ),
    "at_pickup_point": _RuleText(
        "在快递柜/驿站待取超过 {t}",
        "waiting at a locker or station for more than {t}",
        "提醒收件人尽快取件，避免超期退回；如收件人无法取件，联系网点改为送货上门。",
        "Remind the recipient to collect it before it is returned; if they cannot, ask the station "
        "to deliver it to the door.",
    ),
    "carrier_timeout": _RuleText(
        "承运商报告超时（{t}）",
        "the carrier reported a timeout ({t})",
        "在承运商后台查看超时原因并提交查件工单；必要时联系客户说明情况。",
        "Check the timeout reason in the carrier's portal and open a trace request; keep the customer informed.",
    ),
}
_GENERIC_RULE = _RuleText(
    "触发停滞规则（{t}）",
    "a stall rule fired ({t})",
    "查看承运商轨迹并联系承运商确认包裹状态。",
    "Check the carrier's tracking and ask the carrier about the parcel.",
)


def humanize_duration(seconds: float) -> tuple[str, str]:
    """``(zh, en)`` with the two most significant units: ``("2天3小时", "2 days 3 hours")``."""
    total = max(int(seconds), 0)
    units = ((86400, "天", "day"), (3600, "小时", "hour"), (60, "分钟", "minute"), (1, "秒", "second"))
    parts: list[tuple[int, str, str]] = []
    for size, zh, en in units:
        count, total = divmod(total, size)
        if count or parts:
            parts.append((count, zh, en))
        if len(parts) == 2:
            break
    parts = [p for p in parts if p[0]] or [(0, "秒", "second")]
    zh_text = "".join(f"{n}{zh}" for n, zh, _ in parts)
    en_text = " ".join(f"{n} {en}{'' if n == 1 else 's'}" for n, _, en in parts)
    return zh_text, en_text


def china_time(moment: datetime) -> str:
    """``2024-05-01 10:30 (UTC+8)``: the time zone the carriers and the ops team use."""
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") + " (UTC+8)"


def _carrier_zh(carrier: str | None) -> str:
    if carrier is None:
        return "未定承运商"
    return f"{CARRIER_NAMES_ZH.get(str(carrier), str(carrier))}({carrier})"


def _ascii(text: str, limit: int = 99) -> str:
    clean = text.encode("ascii", "replace").decode("ascii").replace("\n", " ")
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def stall_alert(
    *,
    shipment_id: str,
    order_id: str,
    carrier: str,
    provider: str,
    tracking_number: str,
    status: Status,
    rule: str,
    stalled_for_seconds: int,
    threshold_seconds: int | None = None,
    last_event_text: str | None = None,
    last_event_at: datetime | None = None,
) -> Alert:
    """The ops alert for a stalled parcel (pure)."""
    text = STALL_RULES.get(rule, _GENERIC_RULE)
    limit_zh, limit_en = (
        humanize_duration(threshold_seconds) if threshold_seconds is not None else ("承运商判定", "carrier-defined")
    )
    for_zh, for_en = humanize_duration(stalled_for_seconds)
    when = china_time(last_event_at) if last_event_at else None
    last_zh = f"{when} {last_event_text or ''}".strip() if when else (last_event_text or "暂无轨迹")
    last_en = f"{when} {last_event_text or ''}".strip() if when else (last_event_text or "no scan yet")
    message = "\n".join(
        [
            f"【包裹停滞】订单 {order_id}，{_carrier_zh(carrier)} 运单号 {tracking_number}",
            f"规则：{text.zh.format(t=limit_zh)}（{rule}）",
            f"已停滞：{for_zh}",
            f"当前状态：{STATUS_NAMES_ZH.get(status, str(status))}",
            f"最后轨迹：{last_zh}",
            f"建议操作：{text.action_zh}",
            "",
            f"[Parcel stalled] Order {order_id}, {carrier} tracking number {tracking_number} (via {provider})",
            f"Rule: {text.en.format(t=limit_en)} ({rule})",
            f"Stalled for: {for_en}",
            f"Status: {status}",
            f"Last event: {last_en}",
            f"Suggested action: {text.action_en}",
            f"Shipment: {shipment_id}",
        ]
    )
    subject = _ascii(f"[parcelhub] Parcel stalled {for_en}: {carrier} {tracking_number} (order {order_id})")
    return Alert(subject=subject, message=message)


def _failure_advice(attempts: Sequence[AttemptSummary]) -> tuple[str, str]:
    outcomes = {a.outcome for a in attempts}
    messages = " ".join((a.error_message or "") + " " + (a.error_code or "") for a in attempts).lower()
    if "auth_error" in outcomes:
        return (
            "检查承运商凭证配置（Secrets Manager / SSM）是否正确或过期，修复后调用重试接口。",
            "Check the provider credentials (Secrets Manager / SSM) for a wrong or expired value, then retry.",
        )
    if "rejected" in outcomes and any(w in messages for w in ("地址", "address", "区域", "超区", "area")):
        return (
            "核对收件地址（省市区与详细地址）或改用覆盖该地区的承运商，修正后调用重试接口。",
            (
                "Check the receiver address (province/city/district and street) or pin a carrier that serves the "
                "area, then retry."
            ),
        )
    if outcomes <= {"unavailable", "skipped_circuit_open"}:
        return (
            "承运商接口暂不可用：待承运商恢复后调用 POST /v1/shipments/{id}/retry 重新下单，或手工在承运商后台下单。",
            (
                "The carriers' APIs are down: retry with POST /v1/shipments/{id}/retry once they recover, or book the "
                "waybill by hand in the carrier's portal."
            ),
        )
    return (
        "查看各承运商的拒单原因，修正订单信息后调用 POST /v1/shipments/{id}/retry 重试。",
        "Read each provider's rejection reason, fix the order, then retry with POST /v1/shipments/{id}/retry.",
    )


def waybill_failed_alert(shipment_id: str, order_id: str, attempts: Sequence[AttemptSummary]) -> Alert:
    """The ops alert for a shipment no carrier would take (pure)."""
    advice_zh, advice_en = _failure_advice(attempts)
    lines_zh, lines_en = [], []
    for n, a in enumerate(attempts, 1):
        reason = " ".join(x for x in (a.error_code, a.error_message) if x) or "-"
        lines_zh.append(f"  {n}. {_carrier_zh(a.carrier)} 经 {a.provider}：{a.outcome}，{reason}（{china_time(a.at)}）")
        lines_en.append(f"  {n}. {a.carrier} via {a.provider}: {a.outcome}, {reason} ({china_time(a.at)})")
    last = attempts[-1] if attempts else None
    message = "\n".join(
        [
            f"【下单失败】订单 {order_id} 所有承运商均未能出单（共 {len(attempts)} 次尝试）",
            "尝试记录：",
            *lines_zh,
            f"建议操作：{advice_zh.replace('{id}', shipment_id)}",
            "",
            f"[Waybill failed] Order {order_id}: no carrier issued a waybill ({len(attempts)} attempts)",
            "Attempts:",
            *lines_en,
            f"Suggested action: {advice_en.replace('{id}', shipment_id)}",
            f"Shipment: {shipment_id}",
        ]
    )
    tail = f", last {last.carrier}/{last.provider} {last.outcome}" if last else ""
    subject = _ascii(f"[parcelhub] Waybill failed for order {order_id}{tail}")
    return Alert(subject=subject, message=message)


def circuit_opened_alert(
    *,
    provider: str,
    failures: int,
    window_seconds: int,
    cool_down_seconds: int,
    opened_at: datetime,
    half_open_at: datetime,
    last_error_code: str | None = None,
    last_error_message: str | None = None,
) -> Alert:
    """The ops alert for a provider whose circuit opened (pure)."""
    window_zh, window_en = humanize_duration(window_seconds)
    cool_zh, cool_en = humanize_duration(cool_down_seconds)
    name = PROVIDER_NAMES.get(str(provider), str(provider))
    error = " ".join(x for x in (last_error_code, last_error_message) if x) or "-"
    message = "\n".join(
        [
            f"【承运商熔断】{name} 在 {window_zh} 内失败 {failures} 次，已于 {china_time(opened_at)} 熔断",
            f"最近错误：{error}",
            f"影响：新运单将跳过该服务商，自动切换到备用承运商；{cool_zh}后（{china_time(half_open_at)}）放行一次试探请求。",
            "建议操作：查看服务商状态页或联系其技术支持，确认凭证与接口地址配置；如故障持续，考虑临时调整承运商选择规则。",
            "",
            f"[Circuit opened] {provider}: {failures} failures within {window_en}; opened at {china_time(opened_at)}",
            f"Last error: {error}",
            (
                f"Impact: new waybills skip this provider and fail over to the backup; one probe is let through "
                f"after {cool_en} ({china_time(half_open_at)})."
            ),
            (
                "Suggested action: check the provider's status page or support, verify credentials and endpoints; "
                "if the outage persists, adjust the carrier-selection rules for now."
            ),
        ]
    )
    subject = _ascii(f"[parcelhub] Circuit opened for provider {provider}: {failures} failures in {window_en}")
    return Alert(subject=subject, message=message)


# --------------------------------------------------------------------------------------- publisher


class PublishError(Exception):
    """Base of publishing errors."""


@dataclass(frozen=True, slots=True)
class FailedEvent:
    event: Event
    code: str
    message: str


class PublishFailed(PublishError):
    """Some events could not be published after retries; ``failed`` lists them with EventBridge's code."""

    def __init__(self, failed: Sequence[FailedEvent]) -> None:
        codes = sorted({f.code for f in failed})
        super().__init__(f"{len(failed)} event(s) not published: {', '.join(codes)}")
        self.failed = list(failed)


@runtime_checkable
class EventPublisher(Protocol):
    """Publishes events; raises :class:`PublishFailed` with the ones that could not be published."""

    def publish(self, events: Iterable[Event]) -> None: ...


def to_entry(event: Event, *, bus_name: str, source: str = SOURCE) -> dict[str, Any]:
    """The PutEvents entry of an event."""
    return {
        "Source": source,
        "DetailType": event.detail_type(),
        "Detail": event.detail_json(),
        "EventBusName": bus_name,
        "Time": event.emitted_at,
    }


def entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents entry size as EventBridge counts it."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key, "")).encode("utf-8"))
    size += sum(len(str(r).encode("utf-8")) for r in entry.get("Resources", []))
    return size


def batches(
    sizes: Sequence[int], *, max_entries: int = MAX_ENTRIES_PER_CALL, max_bytes: int = MAX_CALL_BYTES
) -> Iterator[list[int]]:
    """Split entry indexes into PutEvents calls of <= ``max_entries`` entries and <= ``max_bytes``."""
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and (len(current) == max_entries or used + size > max_bytes):
            yield current
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        yield current


_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalFailure",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestLimitExceeded",
    }
)


@functools.cache
def events_client() -> Any:
    """The EventBridge client, built on first use (never at import)."""
    import boto3

    return boto3.client("events")


class EventBridgePublisher:
    """PutEvents in batches of <= 10 entries / 256 KiB, retrying throttled entries with full jitter."""

    def __init__(
        self,
        bus_name: str,
        *,
        source: str = SOURCE,
        client_factory: Callable[[], Any] = events_client,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not bus_name:
            raise ValueError("an event bus name is required")
        self.bus_name = bus_name
        self.source = source
        self._client_factory = client_factory
        self._max_attempts = max(1, max_attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._rng = rng

    @property
    def client(self) -> Any:
        return self._client_factory()

    def publish(self, events: Iterable[Event]) -> None:
        pending = list(events)
        if not pending:
            return
        entries = [to_entry(e, bus_name=self.bus_name, source=self.source) for e in pending]
        sizes = [entry_size(e) for e in entries]
        failed: list[FailedEvent] = []
        sendable: list[int] = []
        for index, size in enumerate(sizes):
            if size > MAX_CALL_BYTES:
                failed.append(FailedEvent(pending[index], "EntryTooLarge", f"{size} bytes > {MAX_CALL_BYTES}"))
            else:
                sendable.append(index)
        for batch in batches([sizes[i] for i in sendable]):
            indexes = [sendable[i] for i in batch]
            failed.extend(self._put(indexes, entries, pending))
        if failed:
            raise PublishFailed(failed)

    def _put(self, indexes: list[int], entries: list[Any], events: list[Event]) -> list[FailedEvent]:
        """One batch: send, keep the permanent failures, retry the throttled entries with full jitter."""
        from botocore.exceptions import BotoCoreError, ClientError

        failed: list[FailedEvent] = []
        todo = indexes
        last: dict[int, tuple[str, str]] = {}
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(self._rng() * min(self._max_delay, self._base_delay * 2**attempt))
            try:
                reply = self.client.put_events(Entries=[entries[i] for i in todo])
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code, message = str(error.get("Code", "ClientError")), str(error.get("Message", ""))
                last = dict.fromkeys(todo, (code, message))
                if code in _RETRYABLE_CODES:
                    continue
                break
            except BotoCoreError as exc:
                last = dict.fromkeys(todo, (type(exc).__name__, str(exc)))
                continue
            retry: list[int] = []
            for index, result in zip(todo, reply.get("Entries", []), strict=True):
                code = result.get("ErrorCode")
                if not code:
                    continue
                if code in _RETRYABLE_CODES:
                    retry.append(index)
                    last[index] = (str(code), str(result.get("ErrorMessage", "")))
                else:
                    failed.append(FailedEvent(events[index], str(code), str(result.get("ErrorMessage", ""))))
            todo = retry
            if not todo:
                return failed
        return failed + [FailedEvent(events[i], *last[i]) for i in todo]


E = TypeVar("E", bound=Event)


class InMemoryPublisher:
    """A publisher for logic tests: keeps the events (and the PutEvents entries they would become)."""

    def __init__(self, bus_name: str = "parcelhub-test") -> None:
        self.bus_name = bus_name
        self.events: list[Event] = []
        self.entries: list[dict[str, Any]] = []

    def publish(self, events: Iterable[Event]) -> None:
        batch = list(events)
        entries = [to_entry(e, bus_name=self.bus_name) for e in batch]
        too_large = [
            FailedEvent(e, "EntryTooLarge", "entry exceeds 256 KiB")
            for e, entry in zip(batch, entries, strict=True)
            if entry_size(entry) > MAX_CALL_BYTES
        ]
        if too_large:
            raise PublishFailed(too_large)
        self.events.extend(batch)
        self.entries.extend(entries)

    def of_type(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]

    def clear(self) -> None:
        self.events.clear()
        self.entries.clear()


# ---------------------------------------------------------------------------------------- examples

_T0 = datetime(2024, 5, 1, 2, 30, 56, tzinfo=UTC)  # 2024-05-01 10:30:56 China time


def _at(hours: float) -> datetime:
    from datetime import timedelta

    return _T0 + timedelta(hours=hours)


_SHIPMENT = {"shipment_id": "shp_01HX3Z9K7Q4M2N8P5R6S", "order_id": "DTC-20240501-0042"}
_ZTO = {**_SHIPMENT, "carrier": Carrier.ZTO, "provider": Provider.KDNIAO, "tracking_number": "73100012345678"}


def _example_attempts() -> list[AttemptSummary]:
    return [
        AttemptSummary(
            provider=Provider.SF,
            carrier=Carrier.SF,
            outcome="unavailable",
            error_code="HTTP 503",
            error_message="Service Unavailable",
            at=_at(0.01),
        ),
        AttemptSummary(
            provider=Provider.KDNIAO,
            carrier=Carrier.ZTO,
            outcome="rejected",
            error_code="105",
            error_message="收件地址超出派送范围",
            at=_at(0.02),
        ),
    ]


_EXAMPLES: dict[str, Callable[[], Event]] = {
    "ShipmentAccepted": lambda: ShipmentAccepted(
        **_SHIPMENT,
        customer_tier=CustomerTier.VIP,
        service=ServiceLevel.STANDARD,
        destination_province="广东省",
        destination_city="深圳市",
        parcel_count=1,
        accepted_at=_T0,
        emitted_at=_T0,
    ),
    "WaybillCreated": lambda: WaybillCreated(
        **_ZTO, created_at=_at(0.01), attempt_count=2, failed_over=True, has_label=True, emitted_at=_at(0.01)
    ),
    "WaybillFailed": lambda: WaybillFailed(
        **_SHIPMENT, attempts=_example_attempts(), failed_at=_at(0.02), emitted_at=_at(0.02)
    ),
    "CarrierFailover": lambda: CarrierFailover(
        **_SHIPMENT,
        attempt=1,
        from_provider=Provider.SF,
        from_carrier=Carrier.SF,
        to_provider=Provider.KDNIAO,
        to_carrier=Carrier.ZTO,
        reason="unavailable",
        error_code="HTTP 503",
        error_message="Service Unavailable",
        occurred_at=_at(0.01),
        emitted_at=_at(0.01),
    ),
    "ShipmentStatusChanged": lambda: ShipmentStatusChanged(
        **_ZTO,
        old_status=Status.PICKED_UP,
        new_status=Status.IN_TRANSIT,
        sub_status=SubStatus.AT_TRANSIT_HUB,
        occurred_at=_at(8),
        location="杭州市",
        description="【杭州市】快件已到达 杭州中转部",
        emitted_at=_at(8.01),
    ),
    "ShipmentDelivered": lambda: ShipmentDelivered(
        **_ZTO,
        sub_status=SubStatus.SIGNED_AT_LOCKER,
        occurred_at=_at(50),
        location="深圳市",
        description="【深圳市】您的快件已签收，签收人凭取件码在丰巢智能柜取件",
        emitted_at=_at(50.01),
    ),
    "ShipmentException": lambda: ShipmentException(
        **_ZTO,
        old_status=Status.OUT_FOR_DELIVERY,
        new_status=Status.EXCEPTION,
        sub_status=SubStatus.RECIPIENT_UNREACHABLE,
        occurred_at=_at(30),
        location="深圳市",
        description="【深圳市】快递员李师傅（13800000000）派件时收件人电话无人接听",
        emitted_at=_at(30.01),
    ),
    "ShipmentStalled": lambda: ShipmentStalled(
        **_ZTO,
        status=Status.IN_TRANSIT,
        sub_status=SubStatus.AT_TRANSIT_HUB,
        rule="in_transit",
        threshold_seconds=48 * 3600,
        stalled_for_seconds=51 * 3600 + 20 * 60,
        last_event_text="【杭州市】快件已到达 杭州中转部",
        last_event_at=_at(8),
        episode_id="stall-in_transit-20240501T103056Z",
        detected_at=_at(59.34),
        emitted_at=_at(59.34),
    ),
    "StallResolved": lambda: StallResolved(
        **_ZTO,
        rule="in_transit",
        episode_id="stall-in_transit-20240501T103056Z",
        new_status=Status.ARRIVED_AT_DESTINATION_CITY,
        stalled_for_seconds=55 * 3600,
        resolved_at=_at(63),
        emitted_at=_at(63.01),
    ),
    "CarrierCircuitOpened": lambda: CarrierCircuitOpened(
        provider=Provider.SF,
        failures=5,
        window_seconds=60,
        cool_down_seconds=300,
        opened_at=_at(0.01),
        half_open_at=_at(0.01 + 300 / 3600),
        last_error_code="HTTP 503",
        last_error_message="Service Unavailable",
        emitted_at=_at(0.01),
    ),
    "CarrierCircuitClosed": lambda: CarrierCircuitClosed(
        provider=Provider.SF, opened_at=_at(0.01), closed_at=_at(0.2), emitted_at=_at(0.2)
    ),
}


# ------------------------------------------------------------------------------ schemas and docs


def schema_for(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an event's ``detail``."""
    body = cls.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:parcelhub:events:{cls.detail_type()}:v{SCHEMA_VERSION}",
        "x-source": SOURCE,
        "x-detail-type": cls.detail_type(),
        **body,
    }


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def render_schemas() -> dict[str, str]:
    """``{"<EventName>.json": text}`` for every event."""
    return {f"{cls.detail_type()}.json": _dump(schema_for(cls)) for cls in EVENT_TYPES}


def _type_of(prop: Mapping[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " \\| ".join(_type_of(p) for p in prop["anyOf"])
    if "enum" in prop:
        return "enum"
    if "const" in prop:
        return f"`{prop['const']}`"
    if prop.get("type") == "array":
        return f"array of {_type_of(prop.get('items', {}))}"
    kind = str(prop.get("type", "any"))
    return f"{kind} ({prop['format']})" if "format" in prop else kind


def render_docs() -> str:
    """``docs/events.md``: each event, when it fires, who consumes it, its fields and an example."""
    out = [
        "# parcelhub events",
        "",
        (
            "<!-- Generated by `python -m parcelhub.events --write infra/events --docs docs/events.md`;"
            " do not edit by hand. -->"
        ),
        "",
        (
            "Every event is put on the hub's EventBridge bus with `source` = `parcelhub` and `detail-type` = the"
            " event name. The `detail` is described by a JSON Schema in `infra/events/<EventName>.json`"
            " (generated from `parcelhub/events.py`; CI fails on drift, and a contract test validates what the"
            " code emits against it)."
        ),
        "",
        "- `event_id` is deterministic (a hash of what happened): dedupe on it, delivery is at-least-once.",
        "- `emitted_at` is the publish time (UTC); business times are in each event's own fields.",
        "- No personal data: no names, phones or street addresses; carrier texts are redacted.",
        (
            "- `ShipmentStalled`, `WaybillFailed` and `CarrierCircuitOpened` carry `alert.subject` (ASCII, SNS"
            " subject rules) and `alert.message` (Chinese, then English). The ops rule forwards"
            " `$.detail.alert.message` to the ops SNS topic."
        ),
        "",
        "| event | fires when | consumers |",
        "|---|---|---|",
    ]
    for cls in EVENT_TYPES:
        out.append(
            f"| [{cls.detail_type()}](#{cls.detail_type().lower()}) | {cls.fires_when} | {'; '.join(cls.consumers)} |"
        )
    for cls in EVENT_TYPES:
        schema = schema_for(cls)
        required = set(schema.get("required", []))
        example = cls.example()
        out += ["", f"## {cls.detail_type()}", "", (cls.__doc__ or "").strip(), ""]
        out += [f"**Fires when:** {cls.fires_when}", "", f"**Consumers:** {'; '.join(cls.consumers)}", ""]
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        for name, prop in schema.get("properties", {}).items():
            desc = str(prop.get("description", "")).replace("|", "\\|")
            out.append(f"| `{name}` | {_type_of(prop)} | {'yes' if name in required else 'no'} | {desc} |")
        out += ["", "Example `detail`:", "", "```json", _dump(json.loads(example.detail_json())).rstrip(), "```"]
        alert = getattr(example, "alert", None)
        if isinstance(alert, Alert):
            out += ["", "The ops alert it carries (`alert.message`):", "", "```text", alert.message, "```"]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parcelhub.events", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="DIR", type=Path, help="write infra/events/<EventName>.json")
    mode.add_argument("--check", metavar="DIR", type=Path, help="fail when DIR differs from the models")
    parser.add_argument("--docs", metavar="FILE", type=Path, help="also write/check docs/events.md")
    args = parser.parse_args(argv)
    wanted = render_schemas()
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in args.write.glob("*.json")} - set(wanted):
            (args.write / stale).unlink()
        for name, text in wanted.items():
            (args.write / name).write_text(text, encoding="utf-8")
        if args.docs:
            args.docs.parent.mkdir(parents=True, exist_ok=True)
            args.docs.write_text(render_docs(), encoding="utf-8")
        return 0
    folder: Path = args.check
    present = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json")} if folder.is_dir() else {}
    drift = sorted(n for n in set(wanted) | set(present) if wanted.get(n) != present.get(n))
    if args.docs and (not args.docs.exists() or args.docs.read_text(encoding="utf-8") != render_docs()):
        drift.append(str(args.docs))
    if drift:
        print(f"event contracts drifted from parcelhub/events.py: {', '.join(drift)}", file=sys.stderr)
        print("regenerate: python -m parcelhub.events --write infra/events --docs docs/events.md", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
