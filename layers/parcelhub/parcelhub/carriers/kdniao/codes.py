"""Kdniao code tables as data (REFERENCE §1.5 and §1.7), and the one place result codes become errors.

* ``TRACKING_CODES`` — State / StateEx / Traces[].Action -> canonical status. One table serves
  ``State`` (0-6) and ``StateEx``/``Action`` (增值版): the single-digit codes mean the same in both. The
  mapping follows REFERENCE §6's suggested normalisation. Carrier-detected timeouts (401/402/403/412)
  carry the ``CARRIER_TIMEOUT_*`` sub-statuses so the stall detector can act at once. Unknown codes
  fall back to IN_TRANSIT/UNMAPPED (see ``CodeTable``) and are reported by the parser.
* ``*_RESULT_CODES`` — ``ResultCode`` sets per result kind [C codes, our classification]. They are the
  defaults of the same-named settings (an account that answers differently is a configuration change);
  ``classify_result`` reads them from the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcelhub.carriers.base import CarrierError
from parcelhub.carriers.codes import CodeTable, ResultKind, carrier_error, m
from parcelhub.domain.models import Provider
from parcelhub.domain.status import Status as S
from parcelhub.domain.status import SubStatus as X

if TYPE_CHECKING:
    from parcelhub.carriers.kdniao.settings import KdniaoSettings

PROVIDER = Provider.KDNIAO.value

TRACKING_CODES = CodeTable(
    provider=PROVIDER,
    codes={
        # waiting
        "0": m(S.WAYBILL_CREATED, X.NO_TRACE_YET),  # 暂无轨迹信息
        "10": m(S.WAYBILL_CREATED, X.AWAITING_PICKUP),  # 待揽件
        # moving
        "1": m(S.PICKED_UP),  # 已揽收
        "2": m(S.IN_TRANSIT),  # 在途中
        "201": m(S.ARRIVED_AT_DESTINATION_CITY),  # 到达派件城市
        "204": m(S.IN_TRANSIT, X.AT_TRANSIT_HUB),  # 到达转运中心
        "205": m(S.IN_TRANSIT, X.AT_DELIVERY_STATION),  # 到达派件网点
        "206": m(S.IN_TRANSIT),  # 寄件网点发件
        "202": m(S.OUT_FOR_DELIVERY),  # 派件中
        "211": m(S.AVAILABLE_FOR_PICKUP),  # 已放入快递柜或驿站
        # delivered
        "3": m(S.DELIVERED),  # 已签收
        "301": m(S.DELIVERED, X.SIGNED_BY_RECIPIENT),  # 正常签收
        "302": m(S.DELIVERED, X.SIGNED_AFTER_EXCEPTION),  # 派件异常后最终签收
        "304": m(S.DELIVERED, X.SIGNED_BY_PROXY),  # 代收签收
        "311": m(S.DELIVERED, X.SIGNED_AT_LOCKER),  # 快递柜或驿站签收
        # problems
        "4": m(S.EXCEPTION),  # 问题件
        "401": m(S.EXCEPTION, X.CARRIER_TIMEOUT_NO_UPDATE),  # 发货无信息 (no info since shipping)
        "402": m(S.EXCEPTION, X.CARRIER_TIMEOUT_NOT_SIGNED),  # 超时未签收
        "403": m(S.EXCEPTION, X.CARRIER_TIMEOUT_NO_UPDATE),  # 超时未更新
        "404": m(S.RETURNING, X.REFUSED),  # 拒收(退件)
        "405": m(S.DELIVERY_FAILED),  # 派件异常
        "406": m(S.RETURNED),  # 退货签收
        "407": m(S.RETURNING),  # 退货未签收
        "412": m(S.EXCEPTION, X.CARRIER_TIMEOUT_LOCKER),  # 快递柜或驿站超时未取
        "413": m(S.CANCELLED, X.INTERCEPTED),  # 单号已拦截
        "414": m(S.EXCEPTION, X.DAMAGED),  # 破损
        "415": m(S.CANCELLED, X.CANCELLED_BY_SENDER),  # 客户取消发货
        "416": m(S.DELIVERY_FAILED, X.RECIPIENT_UNREACHABLE),  # 无法联系
        "417": m(S.EXCEPTION, X.DELAYED),  # 配送延迟
        "418": m(S.EXCEPTION),  # 快件取出 (taken out of the locker/station by the courier)
        "419": m(S.OUT_FOR_DELIVERY, X.REDELIVERY),  # 重新派送
        "420": m(S.DELIVERY_FAILED, X.ADDRESS_PROBLEM),  # 收货地址不详细
        "421": m(S.DELIVERY_FAILED, X.WRONG_PHONE),  # 收件人电话错误
        "422": m(S.EXCEPTION, X.MISSORTED),  # 错分件
        "423": m(S.EXCEPTION, X.OUT_OF_SERVICE_AREA),  # 超区件
        # forwarding and customs
        "5": m(S.IN_TRANSIT, X.FORWARDED),  # 转寄
        "6": m(S.IN_TRANSIT, X.CUSTOMS),  # 清关
        "601": m(S.IN_TRANSIT, X.CUSTOMS),  # 待清关
        "602": m(S.IN_TRANSIT, X.CUSTOMS),  # 清关中
        "603": m(S.IN_TRANSIT, X.CUSTOMS_CLEARED),  # 已清关
        "604": m(S.EXCEPTION, X.CUSTOMS_EXCEPTION),  # 清关异常
    },
)

#: ResultCode 100 = success
OK_RESULT_CODES: frozenset[str] = frozenset({"100"})
#: 104 用户问题 (account problem). How Kdniao answers a bad DataSign is [U]: we expect 104.
AUTH_RESULT_CODES: frozenset[str] = frozenset({"104"})
#: a Reason containing one of these marks an authentication failure whatever the code [U]
AUTH_REASON_MARKERS: tuple[str, ...] = ("DataSign", "签名", "用户ID", "EBusinessID", "AppKey")
#: 106 = the order code was already used [U]; with the order in the body it is idempotent success
DUPLICATE_RESULT_CODES: frozenset[str] = frozenset({"106"})
#: 405 超出查询次数限制 (query limit exceeded) is a rate limit: retry later, not a rejection
UNAVAILABLE_RESULT_CODES: frozenset[str] = frozenset({"405"})


def classify_result(code: str | None, reason: str, settings: KdniaoSettings, *, success: bool) -> CarrierError | None:
    """The typed error a Kdniao answer means, or ``None`` for a success.

    ``Success`` true + ResultCode 100 (or none: subscribe and query answers carry none) is success.
    A duplicate order code with ``Success`` true is success too (the provider returns the order)."""
    if success and (code is None or code in settings.ok_result_codes or code in settings.duplicate_result_codes):
        return None
    if code in settings.auth_result_codes or any(marker in reason for marker in settings.auth_reason_markers):
        kind = ResultKind.AUTH
    elif code in settings.unavailable_result_codes:
        kind = ResultKind.UNAVAILABLE
    elif code in settings.duplicate_result_codes:
        kind = ResultKind.DUPLICATE
    else:
        kind = ResultKind.REJECTED
    return carrier_error(PROVIDER, kind, reason, code)
