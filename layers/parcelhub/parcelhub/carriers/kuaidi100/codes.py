"""Kuaidi100 code tables as data (REFERENCE.md §3.2 and §3.4), and the one place result codes become
errors (``classify_result``).

* ``TRACKING_CODES`` — ``state`` / ``statusCode`` -> canonical status. Every base state (0–8, 14) and every
  advanced sub-state of §3.4 is here, including the [U] 疑难 (2xx) and 清关 (10–13) rows. An unknown
  code maps to IN_TRANSIT with sub-status UNMAPPED (``CodeTable``) and is reported by the parser.
* ``STATE_NAMES`` — the Chinese ``status`` name of a trace (resultv2) -> code, the fallback when a
  trace carries no ``statusCode``.
* ``PUSH_ABORTED`` — what a push with ``status=abort`` becomes (Kuaidi100 stopped tracking:
  "3天查询无记录" / "60天无变化"): an EXCEPTION the stall detector counts at once.
* ``SUBSCRIBE_RETURN_CODES`` / ``QUERY_RETURN_CODES`` — ``returnCode`` -> result kind; an unknown
  failure code is a rejection (do not hammer the provider with the same call).
* ``COMPANY_CODES`` — our Carrier <-> Kuaidi100 ``com`` code.
"""

from __future__ import annotations

from typing import Literal

from parcelhub.carriers.base import CarrierError, CodeMapping
from parcelhub.carriers.codes import CodeTable, ResultKind, carrier_error, m
from parcelhub.domain.models import Carrier, Provider
from parcelhub.domain.status import Status, SubStatus

PROVIDER = Provider.KUAIDI100.value

#: state / statusCode -> canonical mapping (REFERENCE §3.4; §6 normalisation as guidance).
TRACKING_CODES = CodeTable(
    provider=PROVIDER,
    codes={
        # 1 揽收 (picked up)
        "1": m(Status.PICKED_UP),
        "101": m(Status.WAYBILL_CREATED),  # 已下单
        "102": m(Status.WAYBILL_CREATED, SubStatus.AWAITING_PICKUP),  # 待揽收
        "103": m(Status.PICKED_UP),  # 已揽收
        # 0 在途 (in transit)
        "0": m(Status.IN_TRANSIT),
        "1001": m(Status.ARRIVED_AT_DESTINATION_CITY),  # 到达派件城市
        "1002": m(Status.IN_TRANSIT),  # 干线 (line-haul)
        "1003": m(Status.IN_TRANSIT, SubStatus.REDIRECTED),  # 转递 (redirected to a new address)
        # 5 派件 (out for delivery)
        "5": m(Status.OUT_FOR_DELIVERY),
        "501": m(Status.AVAILABLE_FOR_PICKUP),  # 投柜或驿站
        # 3 签收 (delivered)
        "3": m(Status.DELIVERED),
        "301": m(Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT),  # 本人签收
        "302": m(Status.DELIVERED, SubStatus.SIGNED_AFTER_EXCEPTION),  # 派件异常后签收
        "303": m(Status.DELIVERED, SubStatus.SIGNED_BY_PROXY),  # 代签
        "304": m(Status.DELIVERED, SubStatus.SIGNED_AT_LOCKER),  # 投柜或站签收
        # 6 退回 (returning), 4 退签 (returned, signed by the sender)
        "6": m(Status.RETURNING),
        "4": m(Status.RETURNED),
        "401": m(Status.CANCELLED, SubStatus.CANCELLED_BY_SENDER),  # 已销单
        "14": m(Status.RETURNING, SubStatus.REFUSED),  # 拒签 (recipient refused; goes back)
        # 7 转投 (handed to another carrier)
        "7": m(Status.IN_TRANSIT, SubStatus.FORWARDED),
        # 2 疑难 (problem) — advanced codes [U]
        "2": m(Status.EXCEPTION),
        "201": m(Status.EXCEPTION, SubStatus.CARRIER_TIMEOUT_NOT_SIGNED),  # 超时未签收
        "202": m(Status.EXCEPTION, SubStatus.CARRIER_TIMEOUT_NO_UPDATE),  # 超时未更新
        "203": m(Status.DELIVERY_FAILED, SubStatus.REFUSED),  # 拒收
        "204": m(Status.DELIVERY_FAILED),  # 派件异常
        "205": m(Status.EXCEPTION, SubStatus.CARRIER_TIMEOUT_LOCKER),  # 柜或驿站超时未取
        "206": m(Status.DELIVERY_FAILED, SubStatus.RECIPIENT_UNREACHABLE),  # 无法联系
        "207": m(Status.EXCEPTION, SubStatus.OUT_OF_SERVICE_AREA),  # 超区
        "208": m(Status.EXCEPTION, SubStatus.HELD),  # 滞留
        "209": m(Status.EXCEPTION, SubStatus.DAMAGED),  # 破损
        # 销单 under 疑难 [U]: not terminal (CANCELLED is sticky); ops sees it as an exception
        "210": m(Status.EXCEPTION, SubStatus.CANCELLED_BY_SENDER),
        # 8 清关 (customs) — advanced codes [U]
        "8": m(Status.IN_TRANSIT, SubStatus.CUSTOMS),
        "10": m(Status.IN_TRANSIT, SubStatus.CUSTOMS),  # 待清关
        "11": m(Status.IN_TRANSIT, SubStatus.CUSTOMS),  # 清关中
        "12": m(Status.IN_TRANSIT, SubStatus.CUSTOMS_CLEARED),  # 已清关
        "13": m(Status.EXCEPTION, SubStatus.CUSTOMS_EXCEPTION),  # 清关异常
    },
    unknown_status=Status.IN_TRANSIT,
)

#: Chinese state names (``data[].status`` with resultv2) -> code, for traces without ``statusCode``.
STATE_NAMES: dict[str, str] = {
    "在途": "0",
    "揽收": "1",
    "疑难": "2",
    "签收": "3",
    "退签": "4",
    "派件": "5",
    "退回": "6",
    "转投": "7",
    "清关": "8",
    "拒签": "14",
    "已下单": "101",
    "待揽收": "102",
    "已揽收": "103",
    "到达派件城市": "1001",
    "干线": "1002",
    "转递": "1003",
    "投柜或驿站": "501",
    "本人签收": "301",
    "派件异常后签收": "302",
    "代签": "303",
    "投柜或站签收": "304",
    "已销单": "401",
    "超时未签收": "201",
    "超时未更新": "202",
    "拒收": "203",
    "派件异常": "204",
    "柜或驿站超时未取": "205",
    "无法联系": "206",
    "超区": "207",
    "滞留": "208",
    "破损": "209",
    "销单": "210",
    "待清关": "10",
    "清关中": "11",
    "已清关": "12",
    "清关异常": "13",
}

#: The raw code of the synthetic event a ``status=abort`` push becomes, and its mapping.
ABORT_CODE = "abort"
PUSH_ABORTED = CodeMapping(Status.EXCEPTION, SubStatus.CARRIER_TRACKING_ABORTED)


#: Subscribe ``returnCode`` (REFERENCE §3.2 [V]). 501 重复订阅 = already subscribed = idempotent success.
SUBSCRIBE_RETURN_CODES: dict[str, ResultKind] = {
    "200": ResultKind.OK,
    "501": ResultKind.OK,
    "600": ResultKind.AUTH,  # invalid key
    "601": ResultKind.AUTH,  # key expired
    "700": ResultKind.REJECTED,  # bad data or callback URL
    "701": ResultKind.REJECTED,  # company refuses subscriptions
    "702": ResultKind.REJECTED,  # company not identified
    "500": ResultKind.UNAVAILABLE,  # server error
}

#: Real-time query ``returnCode`` [U: from Kuaidi100's public doc, not in REFERENCE]. A success carries
#: no returnCode but ``status: "200"`` and ``data``.
QUERY_RETURN_CODES: dict[str, ResultKind] = {
    "200": ResultKind.OK,
    "400": ResultKind.REJECTED,  # 提交的数据不完整，或者贵公司没授权 / 找不到对应公司
    "408": ResultKind.REJECTED,  # 电话号码校验不通过 (phone required / wrong)
    "500": ResultKind.NO_RESULT,  # 查询无结果，请隔段时间再查
    "501": ResultKind.UNAVAILABLE,  # 服务器错误
    "502": ResultKind.UNAVAILABLE,  # 服务器繁忙
    "503": ResultKind.AUTH,  # 验证签名失败
    "601": ResultKind.AUTH,  # key 已过期 / 没有可用单量
}

#: Our carrier -> Kuaidi100 ``com`` (lower-case company code).
COMPANY_CODES: dict[Carrier, str] = {
    Carrier.SF: "shunfeng",
    Carrier.ZTO: "zhongtong",
    Carrier.YTO: "yuantong",
    Carrier.STO: "shentong",
    Carrier.YD: "yunda",
    Carrier.EMS: "ems",
    Carrier.JD: "jd",
    Carrier.JTSD: "jtexpress",
    Carrier.DBL: "debangkuaidi",
    Carrier.HTKY: "huitongkuaidi",
    Carrier.YZPY: "youzhengguonei",
    Carrier.ZJS: "zhaijisong",
    Carrier.UC: "youshuwuliu",
    Carrier.CAINIAO: "cainiao",  # [U] 菜鸟直送's com code: no source found; configurable (company_codes)
}


def classify_result(code: str, message: str, *, operation: Literal["subscribe", "query"]) -> CarrierError | None:
    """The typed error a ``returnCode`` of a subscribe or a real-time query means, or ``None`` when it
    is no error (200; 501 already subscribed; a query's 500 nothing tracked yet)."""
    table = SUBSCRIBE_RETURN_CODES if operation == "subscribe" else QUERY_RETURN_CODES
    return carrier_error(PROVIDER, table.get(code, ResultKind.REJECTED), message, code)
