"""The bilingual ops alerts (Chinese, then English) that the alerting events carry.

Pure functions of plain values: :func:`stall_alert`, :func:`waybill_failed_alert` and
:func:`circuit_opened_alert` build the :class:`Alert` that ``ShipmentStalled``, ``WaybillFailed`` and
``CarrierCircuitOpened`` carry (``parcelhub.events.contracts`` calls them; this module imports no event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from parcelhub.domain.models import CHINA_TZ
from parcelhub.domain.status import Status


class Alert(BaseModel):
    """A human-readable ops alert: forwarded to the ops SNS topic by the EventBridge rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=99, description="ASCII, < 100 chars (SNS Subject rules)")
    message: str = Field(min_length=1, description="Chinese, then English; plain text, one fact per line")


class AttemptLike(Protocol):
    """What an alert reads of a waybill attempt (``AttemptSummary`` in the contracts)."""

    @property
    def provider(self) -> str: ...
    @property
    def carrier(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def at(self) -> datetime: ...


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


def _failure_advice(attempts: Sequence[AttemptLike]) -> tuple[str, str]:
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


def waybill_failed_alert(shipment_id: str, order_id: str, attempts: Sequence[AttemptLike]) -> Alert:
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


def cancel_failed_alert(
    *,
    shipment_id: str,
    order_id: str,
    provider: str,
    carrier: str,
    provider_order_id: str,
    tracking_number: str | None,
    attempts: int,
    reason: str | None,
) -> Alert:
    """The ops alert for a carrier order the hub does not keep and could not cancel (pure)."""
    name = PROVIDER_NAMES.get(str(provider), str(provider))
    number = tracking_number or "-"
    why = reason or "-"
    message = "\n".join(
        [
            (
                f"【取消运单失败】订单 {order_id} 在 {name} 有一张未使用的运单（{_carrier_zh(carrier)} {number}），"
                f"自动取消 {attempts} 次均未成功"
            ),
            f"服务商订单号：{provider_order_id}；最后错误：{why}",
            "影响：该运单仍在服务商处有效，可能被计费或被误用。",
            "建议操作：在服务商后台手工取消该运单（按服务商订单号或运单号查找）。",
            "",
            (
                f"[Cancel failed] Order {order_id}: an unused waybill at {provider} ({carrier} {number}) could not be"
                f" cancelled after {attempts} attempts"
            ),
            f"Provider order id: {provider_order_id}; last error: {why}",
            "Impact: the waybill is still live at the provider and may be billed or misused.",
            "Suggested action: cancel it by hand in the provider's portal (find it by the order id or number).",
            f"Shipment: {shipment_id}",
        ]
    )
    subject = _ascii(f"[parcelhub] Cancel failed: unused {carrier} waybill at {provider} for order {order_id}")
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


_CAPACITY_ZH = {
    "balance_low": "电子面单余额不足",
    "cap_reached": "今日揽收上限已满",
    "cap_forecast": "预计将达揽收上限",
}


def capacity_alert(
    *,
    carrier: str,
    kind: str,
    day: str,
    daily_cap: int | None,
    intake_today: int,
    forecast_today: float,
    balance_left: int | None,
    cover_days: float | None,
    min_cover_days: float,
    cap_day: str | None,
    promotion: str | None,
) -> Alert:
    """The ops alert for a carrier running out of capacity (pure)."""
    name = _carrier_zh(carrier)
    promo = f"（促销：{promotion}）" if promotion else ""
    promo_en = f" (promotion: {promotion})" if promotion else ""
    if kind == "balance_low":
        cover_zh = f"约 {cover_days} 天" if cover_days is not None else "已用尽"
        cover_en = f"about {cover_days} days" if cover_days is not None else "none left"
        zh = (f"【面单余额】{name} 电子面单余额 {balance_left}，按预测仅够 {cover_zh}"
              f"（告警阈值 {min_cover_days} 天）{promo}")  # fmt: skip
        en = (f"[Balance low] {carrier}: {balance_left} e-waybill numbers left, {cover_en} of forecast"
              f" (alert under {min_cover_days} days){promo_en}")  # fmt: skip
        action_zh = "建议操作：在服务商后台充值面单或申请单号；余额用尽前，新订单将自动改派下一承运商。"
        action_en = "Suggested action: top up the e-waybill balance; once used up, orders go to the next carrier."
    elif kind == "cap_reached":
        zh = (f"【揽收上限】{name} 今日（{day}）已揽收 {intake_today} 单，达到上限 {daily_cap}，"
              "新订单已自动改派下一承运商")  # fmt: skip
        en = (f"[Cap reached] {carrier}: {intake_today} parcels today ({day}) reached the daily cap of {daily_cap};"
              " new orders go to the next carrier")  # fmt: skip
        action_zh = "建议操作：联系网点确认可否提高今日揽收量，或调整选择规则。"
        action_en = "Suggested action: ask the outlet whether it can take more today, or adjust the selection rules."
    else:
        zh = f"【揽收上限预警】{name} 预计 {cap_day} 达到每日上限 {daily_cap}（今日预测 {forecast_today} 单）{promo}"
        en = (f"[Cap ahead] {carrier}: forecast to reach its daily cap of {daily_cap} on {cap_day}"
              f" (today's forecast {forecast_today}){promo_en}")  # fmt: skip
        action_zh = "建议操作：提前与网点协商加量，或在促销期间为其他承运商分配更多订单。"
        action_en = (
            "Suggested action: agree more intake with the outlet, or allocate more to other carriers for the event."
        )
    message = "\n".join([zh, action_zh, "", en, action_en])
    subject = _ascii(f"[parcelhub] Capacity {kind} for {carrier} on {day}")
    return Alert(subject=subject, message=message)
