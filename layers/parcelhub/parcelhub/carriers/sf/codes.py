"""SF Fengqiao code tables as data (REFERENCE.md §2.5 and §2.7).

* ``OP_CODES`` — route ``opCode`` -> canonical status. Every opCode of §2.7 is here; an unknown one
  maps to IN_TRANSIT with sub-status UNMAPPED (``CodeTable``) and is reported by the parser so the
  caller emits the ``UnmappedCarrierCode`` metric.
* ``GATEWAY_ERRORS`` — ``apiResultCode`` A-codes -> error kind. The code list is [U] (REFERENCE).
* ``BUSINESS_ERRORS`` — ``apiResultData.errorCode`` -> error kind. Only 8016 (重复下单) is
  corroborated [C]; the others are plausible Fengqiao codes [U] kept as data so a real console's list
  can replace them without code changes. An unknown business code is a plain rejection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from parcelhub.carriers.codes import CodeTable, m
from parcelhub.domain.status import Status, SubStatus

PROVIDER = "sf"

#: opCode -> canonical mapping. Evidence column of REFERENCE §2.7 in the comments.
OP_CODES = CodeTable(
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


class ErrorKind(StrEnum):
    """How a provider error code is translated into our typed errors."""

    AUTH = "auth"  # CarrierAuthError: configuration, alert, don't retry
    UNAVAILABLE = "unavailable"  # CarrierUnavailable: retry / fail over
    DUPLICATE = "duplicate"  # CarrierDuplicateOrder: fetch the existing order
    REJECTED = "rejected"  # CarrierRejected: business rejection
    ALREADY_CANCELLED = "already_cancelled"  # cancel is idempotent: treat as done


@dataclass(frozen=True, slots=True)
class ErrorRule:
    kind: ErrorKind
    meaning: str


GATEWAY_OK = "A1000"
BUSINESS_OK = "S0000"

#: apiResultCode -> rule ([U] list, REFERENCE §2.5).
GATEWAY_ERRORS: Mapping[str, ErrorRule] = {
    "A1001": ErrorRule(ErrorKind.AUTH, "必传参数不可为空"),
    "A1002": ErrorRule(ErrorKind.AUTH, "请求时效已过期"),
    "A1003": ErrorRule(ErrorKind.AUTH, "IP无效"),
    "A1004": ErrorRule(ErrorKind.AUTH, "无对应服务权限"),
    "A1005": ErrorRule(ErrorKind.UNAVAILABLE, "流量受控"),
    "A1006": ErrorRule(ErrorKind.AUTH, "数字签名无效"),
    "A1007": ErrorRule(ErrorKind.DUPLICATE, "重复请求"),
    "A1009": ErrorRule(ErrorKind.UNAVAILABLE, "目标服务异常或不可达"),
    "A1099": ErrorRule(ErrorKind.UNAVAILABLE, "系统异常"),
}
#: an A-code we don't know: the gateway did not process the call, so retrying is safe (a repeated
#: create is caught by SF's orderId uniqueness, 8016)
UNKNOWN_GATEWAY_KIND = ErrorKind.UNAVAILABLE

#: apiResultData.errorCode -> rule. 8016 [C]; the rest [U] (see the module docstring).
BUSINESS_ERRORS: Mapping[str, ErrorRule] = {
    "8016": ErrorRule(ErrorKind.DUPLICATE, "重复下单"),
    "1010": ErrorRule(ErrorKind.REJECTED, "寄件地址不能为空"),
    "1011": ErrorRule(ErrorKind.REJECTED, "寄件联系人不能为空"),
    "1012": ErrorRule(ErrorKind.REJECTED, "寄件电话不能为空"),
    "1014": ErrorRule(ErrorKind.REJECTED, "到件地址不能为空"),
    "1015": ErrorRule(ErrorKind.REJECTED, "到件联系人不能为空"),
    "1016": ErrorRule(ErrorKind.REJECTED, "到件电话不能为空"),
    "20052": ErrorRule(ErrorKind.REJECTED, "到件地址超出收派范围"),
    "6126": ErrorRule(ErrorKind.AUTH, "月结卡号不合法"),
    "8096": ErrorRule(ErrorKind.AUTH, "月结卡号不存在或已失效"),
    "8018": ErrorRule(ErrorKind.REJECTED, "未获取到订单信息"),
    "8024": ErrorRule(ErrorKind.REJECTED, "未下单"),
    "8037": ErrorRule(ErrorKind.ALREADY_CANCELLED, "已消单"),
    "8252": ErrorRule(ErrorKind.REJECTED, "订单已揽收，不可取消"),
}
UNKNOWN_BUSINESS_KIND = ErrorKind.REJECTED

#: the code the sandbox answers ``faults.reject = "address"`` with (an address the route can't serve)
ADDRESS_REJECTION_CODE = "20052"
DUPLICATE_ORDER_CODE = "8016"
ORDER_NOT_FOUND_CODE = "8018"
NOT_ORDERED_CODE = "8024"
ALREADY_CANCELLED_CODE = "8037"
PICKED_UP_NO_CANCEL_CODE = "8252"


def gateway_rule(code: str) -> ErrorRule:
    return GATEWAY_ERRORS.get(code, ErrorRule(UNKNOWN_GATEWAY_KIND, "未知网关错误"))


def business_rule(code: str) -> ErrorRule:
    return BUSINESS_ERRORS.get(code, ErrorRule(UNKNOWN_BUSINESS_KIND, "业务错误"))
