"""SF Fengqiao code tables as data (REFERENCE.md §2.5 and §2.7), and the one place result codes become
errors (``classify_result``).

* ``TRACKING_CODES`` — route ``opCode`` -> canonical status. Every opCode of §2.7 is here; an unknown one
  maps to IN_TRANSIT with sub-status UNMAPPED (``CodeTable``) and is reported by the parser so the
  caller emits the ``UnmappedCarrierCode`` metric.
* ``GATEWAY_ERRORS`` — ``apiResultCode`` A-codes -> result kind. The code list is [U] (REFERENCE).
* ``BUSINESS_ERRORS`` — ``apiResultData.errorCode`` -> result kind. Only 8016 (重复下单) is
  corroborated [C]; the others are plausible Fengqiao codes [U] kept as data so a real console's list
  can replace them without code changes. An unknown business code is a plain rejection.
"""

from __future__ import annotations

from collections.abc import Mapping

from parcelhub.carriers.base import CarrierError, CodeMapping
from parcelhub.carriers.codes import CodeTable, ResultKind, ResultRule, carrier_error, m
from parcelhub.domain.models import Provider
from parcelhub.domain.status import Status, SubStatus

PROVIDER = Provider.SF.value

#: opCode -> canonical mapping. Evidence column of REFERENCE §2.7 in the comments.
TRACKING_CODES = CodeTable(
    provider=PROVIDER,
    codes={
        "50": m(Status.PICKED_UP),  # 顺丰已收取快件 (B)
        "54": m(Status.PICKED_UP),  # 顺丰速运 已收取快件 (A)
        "501": m(Status.IN_TRANSIT),  # 快件运输中, right after pickup (A)
        "407": m(Status.IN_TRANSIT),  # 快件已发往【X店】 (A)
        "30": m(Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),  # 在【X】完成分拣，准备发往【Y】 (A)
        "36": m(Status.IN_TRANSIT),  # 快件离开【X】，已在发往【Y】的路上 (A)
        "31": m(Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),  # 快件到达【X中转场】 (A)
        "607": m(Status.IN_TRANSIT),  # in-transit scan (B, meaning [U])
        "123": m(Status.IN_TRANSIT),  # (B, meaning [U]; REFERENCE suggests IN_TRANSIT?)
        "130": m(Status.ARRIVED_AT_DESTINATION_CITY, SubStatus.AT_DELIVERY_STATION),  # 已到达目的地网点 (B)
        "44": m(Status.OUT_FOR_DELIVERY),  # 正在为您的快件分配最合适的快递员 (A)
        "204": m(Status.OUT_FOR_DELIVERY),  # 快件交给XX，正在派送途中 (A)
        "80": m(Status.DELIVERED),  # 您的快件已签收 (A + B)
        "8000": m(Status.DELIVERED),  # terminal code next to 80 (B, meaning [U])
        "631": m(Status.RETURNED),  # 快件已退回 (B)
        "648": m(Status.RETURNING),  # return-related, 退回/转寄 (B, meaning [U])
        "99": m(Status.EXCEPTION, SubStatus.HELD),  # exception / customer-requested hold [U]
        "70": m(Status.DELIVERY_FAILED),  # 派件不成功 [U]
        "33": m(Status.EXCEPTION, SubStatus.HELD),  # 派件异常/滞留 [U]
        # Not in REFERENCE §2.7: the sandbox's locker stage. [U] — 暂存丰巢智能柜; confirm on a real account.
        "125": m(Status.AVAILABLE_FOR_PICKUP),
    },
    unknown_status=Status.IN_TRANSIT,
)

#: SF's own normalised route status (``secondaryStatusCode``, then ``firstStatusCode``), sent next to the
#: opCode by newer accounts (RoutePushService fields 10-13 [V]; the code/name pairs [C] from route nodes
#: a public integration stored: eagle1-sys/whereis-api-v0 ``config/create-whereis-db.sql``). Used when
#: the opCode is not in ``TRACKING_CODES``, so an unknown opCode with a status is never UNMAPPED.
STATUS_CODES = CodeTable(
    provider=PROVIDER,
    codes={
        # secondaryStatusCode
        "101": m(Status.PICKED_UP),  # 已揽收
        "201": m(Status.IN_TRANSIT),  # 运送中
        "204": m(Status.IN_TRANSIT, SubStatus.CUSTOMS),  # 清关中
        "205": m(Status.IN_TRANSIT, SubStatus.CUSTOMS_CLEARED),  # 已清关
        "301": m(Status.OUT_FOR_DELIVERY),  # 派送中
        "401": m(Status.DELIVERED),  # 已签收
    },
    unknown_status=Status.IN_TRANSIT,
)
FIRST_STATUS_CODES = CodeTable(
    provider=PROVIDER,
    codes={
        "1": m(Status.PICKED_UP),  # 已揽收
        "2": m(Status.IN_TRANSIT),  # 运送中
        "3": m(Status.OUT_FOR_DELIVERY),  # 派送中
        "4": m(Status.DELIVERED),  # 已签收
    },
    unknown_status=Status.IN_TRANSIT,
)


def normalised_status(secondary: str, first: str) -> CodeMapping | None:
    """SF's normalised status of a route node (secondary code first, it is the finer one), or ``None``."""
    for code, table in ((secondary, STATUS_CODES), (first, FIRST_STATUS_CODES)):
        mapping, known = table.lookup(code)
        if code.strip() and known:
            return mapping
    return None


GATEWAY_OK = "A1000"
BUSINESS_OK = "S0000"

#: apiResultCode -> rule ([U] list, REFERENCE §2.5).
GATEWAY_ERRORS: Mapping[str, ResultRule] = {
    "A1001": ResultRule(ResultKind.AUTH, "必传参数不可为空"),
    "A1002": ResultRule(ResultKind.AUTH, "请求时效已过期"),
    "A1003": ResultRule(ResultKind.AUTH, "IP无效"),
    "A1004": ResultRule(ResultKind.AUTH, "无对应服务权限"),
    "A1005": ResultRule(ResultKind.UNAVAILABLE, "流量受控"),
    "A1006": ResultRule(ResultKind.AUTH, "数字签名无效"),
    "A1007": ResultRule(ResultKind.DUPLICATE, "重复请求"),
    "A1009": ResultRule(ResultKind.UNAVAILABLE, "目标服务异常或不可达"),
    "A1099": ResultRule(ResultKind.UNAVAILABLE, "系统异常"),
}
#: an A-code we don't know: the gateway did not process the call, so retrying is safe (a repeated
#: create is caught by SF's orderId uniqueness, 8016)
UNKNOWN_GATEWAY_KIND = ResultKind.UNAVAILABLE

#: apiResultData.errorCode -> rule. 8016 [C]; the rest [U] (see the module docstring).
BUSINESS_ERRORS: Mapping[str, ResultRule] = {
    "8016": ResultRule(ResultKind.DUPLICATE, "重复下单"),
    "1010": ResultRule(ResultKind.REJECTED, "寄件地址不能为空"),
    "1011": ResultRule(ResultKind.REJECTED, "寄件联系人不能为空"),
    "1012": ResultRule(ResultKind.REJECTED, "寄件电话不能为空"),
    "1014": ResultRule(ResultKind.REJECTED, "到件地址不能为空"),
    "1015": ResultRule(ResultKind.REJECTED, "到件联系人不能为空"),
    "1016": ResultRule(ResultKind.REJECTED, "到件电话不能为空"),
    "20052": ResultRule(ResultKind.REJECTED, "到件地址超出收派范围"),
    "6126": ResultRule(ResultKind.AUTH, "月结卡号不合法"),
    "8096": ResultRule(ResultKind.AUTH, "月结卡号不存在或已失效"),
    "8018": ResultRule(ResultKind.REJECTED, "未获取到订单信息"),
    "8024": ResultRule(ResultKind.REJECTED, "未下单"),
    "8037": ResultRule(ResultKind.ALREADY_CANCELLED, "已消单"),
    "8252": ResultRule(ResultKind.REJECTED, "订单已揽收，不可取消"),
}
UNKNOWN_BUSINESS_KIND = ResultKind.REJECTED


def gateway_rule(code: str) -> ResultRule:
    return GATEWAY_ERRORS.get(code, ResultRule(UNKNOWN_GATEWAY_KIND, "未知网关错误"))


def business_rule(code: str) -> ResultRule:
    return BUSINESS_ERRORS.get(code, ResultRule(UNKNOWN_BUSINESS_KIND, "业务错误"))


def classify_result(code: str, message: str = "", *, gateway: bool = False) -> CarrierError | None:
    """The typed error an SF result code means (``message`` defaults to the table's meaning).

    ``gateway``: an ``apiResultCode`` (``None`` for A1000, a missing one is ``NO_RESULT_CODE``);
    otherwise a business ``errorCode`` of a call that did not succeed, which is always an error
    (8037 已消单 too: ``already_cancelled`` lets a cancel treat it as done)."""
    if gateway:
        if code == GATEWAY_OK:
            return None
        rule = gateway_rule(code)
        return carrier_error(PROVIDER, rule.kind, message or rule.meaning, code or "NO_RESULT_CODE")
    rule = business_rule(code)
    return carrier_error(PROVIDER, rule.kind, message or rule.meaning, code)


def already_cancelled(code: str | None) -> bool:
    """Whether a cancel's error code means the order is cancelled already (cancel is idempotent)."""
    return bool(code) and business_rule(code or "").kind is ResultKind.ALREADY_CANCELLED
