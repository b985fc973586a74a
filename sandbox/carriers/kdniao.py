"""Kdniao (快递鸟) sandbox: a real HTTP server on loopback speaking Kdniao's wire format.

Paths (REFERENCE §1.3): ``/api/EOrderService`` (1007 e-waybill, 1147 cancel, 1127 balance; the demo's
``/api/Eorderservice`` spelling too), ``/api/dist`` (8008/1008 subscribe) and
``/Ebusiness/EbusinessOrderHandle.aspx`` (8001/1002 query, 2002 单号识别 from the ground truth: the parcels
issued or registered with ``POST /_sandbox/parcels``, else ``sandbox.numbers.guess_carriers``). Every call is a form
``RequestData/EBusinessID/RequestType/DataSign/DataType`` whose DataSign is checked.

A bad DataSign or an unknown EBusinessID is answered HTTP 200 with
``{"EBusinessID":..,"Success":false,"ResultCode":"104","Reason":..}`` (104 用户问题). Kdniao's exact
answer is unverified (REFERENCE marks it [U]); the plugin treats 104 and a Reason naming the
signature as an authentication failure.

Waybills issued by 1007 are tracked; their lifecycle starts when they are subscribed (8008), and scans
are pushed as full snapshots (102 for 8008, 101 for 1008) signed with the account's AppKey.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import uuid
from datetime import datetime, timedelta
from typing import Any

from sandbox.carriers.base import (
    CHINA_TZ,
    CarrierSandbox,
    PushRequest,
    Reply,
    Route,
    SandboxParcel,
    SandboxRequest,
    Scan,
    Stage,
    json_reply,
)
from sandbox.carriers.cli import serve
from sandbox.carriers.texts import scan_text
from sandbox.numbers import SHAPES, guess_carriers, published_numbers

CARRIER_NAMES = {
    "SF": "顺丰速运",
    "JD": "京东快递",
    "ZTO": "中通快递",
    "YTO": "圆通速递",
    "STO": "申通快递",
    "YD": "韵达快递",
    "EMS": "EMS",
    "JTSD": "极兔速递",
    "DBL": "德邦快递",
    "HTKY": "百世快递",
    "YZPY": "邮政快递包裹",
    "ZJS": "宅急送",
    "UC": "优速快递",
    "CNSD": "菜鸟直送",
}

#: city -> (OriginCode/DestinatioCode area code, 大头笔 prefix)
CITY_CODES = {
    "杭州市": ("571000", "571"),
    "上海市": ("200000", "021"),
    "北京市": ("100000", "010"),
    "苏州市": ("215000", "512"),
    "深圳市": ("518000", "755"),
    "广州市": ("510000", "020"),
}

EORDER = "/api/EOrderService"
OORDER = "/api/OOrderService"  # 预约取件 1001 / 1004 [C]
DIST = "/api/dist"
QUERY = "/Ebusiness/EbusinessOrderHandle.aspx"


def data_sign(request_data: str, app_key: str) -> str:
    """Kdniao DataSign, written independently of the plugin: Base64 of the lower-case hex MD5."""
    return base64.b64encode(hashlib.md5((request_data + app_key).encode("utf-8")).hexdigest().encode()).decode()


def _city(name: str) -> str:
    name = name.strip()
    if not name:
        return "上海市"
    return name if name.endswith("市") else name + "市"


class KdniaoSandbox(CarrierSandbox):
    provider = "kdniao"
    full_snapshot = True

    def __init__(
        self,
        ebusiness_id: str,
        app_key: str,
        *,
        port: int = 0,
        webhook_url: str | None = None,
        stage_seconds: float = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(port=port, webhook_url=webhook_url, stage_seconds=stage_seconds, seed=seed)
        self.ebusiness_id = ebusiness_id
        self.app_key = app_key
        self.orders: dict[str, dict[str, Any]] = {}  # OrderCode -> the 1007 answer given

    # --------------------------------------------------------------------------------- routes
    def routes(self) -> dict[str, Route]:
        return {
            EORDER: self._eorder,
            "/api/Eorderservice": self._eorder,
            DIST: self._dist,
            QUERY: self._query,
            OORDER: self._oorder,
        }

    def describe(self, request: SandboxRequest) -> dict[str, Any]:
        return {"request_type": request.form().get("RequestType")}

    def _now_text(self) -> str:
        return datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")

    def _authenticate(self, request: SandboxRequest, operation: str) -> tuple[dict[str, str], Any, Reply | None]:
        """Decode and check the envelope. Returns ``(form, RequestData JSON, error reply or None)``."""
        form = request.form()
        request_data = form.get("RequestData", "")
        business_id = form.get("EBusinessID", "")
        request_type = form.get("RequestType", "")
        received = form.get("DataSign", "")
        expected = data_sign(request_data, self.app_key)
        signature_valid = bool(received) and hmac.compare_digest(expected, received)
        details = {"request_type": request_type, "ebusiness_id": business_id}
        if business_id != self.ebusiness_id:
            self.record(operation, False, **details, result="104")
            return form, None, self._error(business_id, "104", "用户ID不存在或未开通此接口(EBusinessID)")
        if not signature_valid:
            self.record(operation, False, **details, result="104")
            return form, None, self._error(business_id, "104", "DataSign签名验证失败")
        if form.get("DataType", "2") != "2":
            self.record(operation, True, **details, result="103")
            return form, None, self._error(business_id, "103", "DataType格式有误，仅支持2(JSON)")
        try:
            data = json.loads(request_data)
        except ValueError:
            self.record(operation, True, **details, result="401")
            return form, None, self._error(business_id, "401", "RequestData格式有误")
        if not isinstance(data, dict):
            self.record(operation, True, **details, result="401")
            return form, None, self._error(business_id, "401", "RequestData格式有误")
        return form, data, None

    def _error(self, business_id: str, code: str, reason: str) -> Reply:
        return json_reply(
            200,
            {
                "EBusinessID": business_id,
                "UpdateTime": self._now_text(),
                "Success": False,
                "ResultCode": code,
                "Reason": reason,
            },
        )

    # ----------------------------------------------------------------------------- 1007 / 1147
    def _eorder(self, request: SandboxRequest) -> Reply:
        request_type = request.form().get("RequestType", "")
        if request_type == "1007":
            return self._create(request)
        if request_type == "1147":
            return self._cancel(request)
        if request_type == "1127":
            return self._balance(request)
        self.record("eorder", None, request_type=request_type, result="101")
        return self._error(self.ebusiness_id, "101", f"RequestType {request_type} 不支持此地址")

    def _create(self, request: SandboxRequest) -> Reply:
        _, data, error = self._authenticate(request, "create_waybill")
        if error is not None:
            return error
        rejection = self._reject_create(data)
        if rejection is not None:
            return rejection
        order_code = str(data.get("OrderCode") or "")
        shipper = str(data.get("ShipperCode") or "")
        receiver = data.get("Receiver") or {}
        sender = data.get("Sender") or {}
        with self.lock:  # one lock from the duplicate check to tracking: numbers stay unique
            new = order_code not in self.orders
            reply = self._issue(data, order_code, shipper, receiver, sender)
        faulted = self.after_create(order_code) if new else None  # outside the lock: a late answer blocks no one
        return faulted or reply

    def order_book(self) -> list[dict[str, Any]]:
        book = []
        for order_code, answer in self.orders.items():
            number = str(answer["Order"]["LogisticCode"])
            parcel = self.parcels.get(number)
            book.append(
                {
                    "order_id": order_code,
                    "tracking_number": number,
                    "carrier": str(answer["Order"]["ShipperCode"]),
                    "cancelled": bool(parcel and parcel.cancelled),
                }
            )
        return book

    def _issue(
        self, data: dict[str, Any], order_code: str, shipper: str, receiver: dict[str, Any], sender: dict[str, Any]
    ) -> Reply:
        previous = self.orders.get(order_code)
        if previous is not None:  # Kdniao answers a repeated OrderCode with the order it already issued
            answer = dict(previous) | {"ResultCode": "106", "Reason": "订单已下单成功，请勿重复提交"}
            self.record("create_waybill", True, request_type="1007", order_code=order_code, result="106")
            return json_reply(200, answer)
        if shipper in self.stock:  # an account with a number balance: each waybill uses one
            if self.stock[shipper] <= 0:
                self.record("create_waybill", True, request_type="1007", order_code=order_code, result="105")
                return self._error(self.ebusiness_id, "105", "电子面单余额不足，请充值")
            self.stock[shipper] -= 1
        number = self._issue_number(shipper)
        origin, dest = _city(str(sender.get("CityName", ""))), _city(str(receiver.get("CityName", "")))
        origin_code, _ = CITY_CODES.get(origin, ("000000", "000"))
        dest_code, dest_prefix = CITY_CODES.get(dest, ("000000", "000"))
        sort_code = f"{dest_prefix}-{self.random.randint(100, 999)} {self.random.randint(10, 99)}"
        order = {
            "OrderCode": order_code,
            "ShipperCode": shipper,
            "LogisticCode": number,
            "MarkDestination": sort_code,
            "OriginCode": origin_code,
            "OriginName": origin,
            "DestinatioCode": dest_code,
            "DestinatioName": dest,
            "SortingCode": f"{dest_prefix}{self.random.randint(10, 99)}",
            "PackageCode": f"{dest_prefix}0{self.random.randint(100, 999)}",
            "PackageName": f"{dest.removesuffix('市')}集包中心",
        }
        label = (
            "<html><head><meta charset='utf-8'><title>电子面单</title></head><body>"
            f"<div class='carrier'>{CARRIER_NAMES.get(shipper, shipper)}</div>"
            f"<div class='mark'>{sort_code}</div><div class='barcode'>{number}</div>"
            f"<div class='package'>{order['PackageName']}</div></body></html>"
        )
        answer = {
            "EBusinessID": self.ebusiness_id,
            "Order": order,
            "PrintTemplate": label if str(data.get("IsReturnPrintTemplate", "0")) == "1" else "",
            "EstimatedDeliveryTime": (datetime.now(CHINA_TZ) + timedelta(days=2)).strftime("%Y-%m-%d"),
            "UniquerRequestNumber": str(uuid.UUID(int=self.random.getrandbits(128))),
            "ResultCode": "100",
            "Reason": "成功",
            "Success": True,
            "SubCount": 0,
        }
        parcel = SandboxParcel(carrier=shipper, tracking_number=number, order_id=order_code)
        parcel.origin_city, parcel.dest_city = origin, dest
        if str(data.get("IsNotice", "1")) == "0":  # the courier is told to come: a door pickup
            parcel.plan, parcel.extra["pickup"] = self.pickup_plan, True
        self.orders[order_code] = answer
        self.track(parcel)
        self.record(
            "create_waybill", True, request_type="1007", order_code=order_code, tracking_number=number, result="100"
        )
        return json_reply(200, answer)

    def _reject_create(self, data: dict[str, Any]) -> Reply | None:
        """Validation and injected business rejections of a 1007 call, in Kdniao's shape."""
        order_code = str(data.get("OrderCode") or "")
        shipper = str(data.get("ShipperCode") or "")
        receiver = data.get("Receiver") or {}
        sender = data.get("Sender") or {}
        missing = [
            name
            for name, value in (
                ("OrderCode", order_code),
                ("ShipperCode", shipper),
                ("Receiver.Address", receiver.get("Address")),
                ("Sender.Address", sender.get("Address")),
            )
            if not value
        ]
        if missing:
            self.record("create_waybill", True, order_code=order_code, result="101")
            return self._error(self.ebusiness_id, "101", f"缺少必要参数：{', '.join(missing)}")
        if shipper not in SHAPES:
            self.record("create_waybill", True, order_code=order_code, result="105")
            return self._error(self.ebusiness_id, "105", f"不支持的快递公司编码 {shipper}")
        if self.faults.reject == "address":
            self.record("create_waybill", True, order_code=order_code, result="105", fault="reject:address")
            return self._error(self.ebusiness_id, "105", "收件人地址不详细或超出派送范围，请核实收件地址后重新下单")
        if self.faults.reject == "duplicate":
            self.record("create_waybill", True, order_code=order_code, result="106", fault="reject:duplicate")
            return self._error(self.ebusiness_id, "106", "订单编号已存在，请勿重复下单")
        return None

    def _balance(self, request: SandboxRequest) -> Reply:
        """1127 单号余量查询 [C]: the numbers left for ``ShipperCode``. The answer's field name is unverified
        ([U]): ``Balance`` here, one of the plugin's configurable ``balance_fields``."""
        _, data, error = self._authenticate(request, "waybill_balance")
        if error is not None:
            return error
        shipper = str(data.get("ShipperCode") or "")
        with self.lock:
            left = self.stock.get(shipper)
        if left is None:
            self.record("waybill_balance", True, request_type="1127", result="105")
            return self._error(self.ebusiness_id, "105", f"{shipper} 账号无单号余量限制")
        self.record("waybill_balance", True, request_type="1127", result="100")
        answer = {"EBusinessID": self.ebusiness_id, "Success": True, "ResultCode": "100", "Reason": "成功",
                  "ShipperCode": shipper, "Balance": left}  # fmt: skip
        return json_reply(200, answer)

    def _issue_number(self, shipper: str) -> str:
        """A new number in the carrier's current e-waybill format (its first published shape)."""
        while True:
            (number,) = published_numbers(shipper, 1, self.random)
            if number not in self.parcels:
                return number

    def _cancel(self, request: SandboxRequest) -> Reply:
        _, data, error = self._authenticate(request, "cancel_waybill")
        if error is not None:
            return error
        number = str(data.get("ExpNo") or "")
        with self.lock:
            parcel = self.parcels.get(number)
            if parcel is None or parcel.order_id != str(data.get("OrderCode") or parcel.order_id):
                self.record("cancel_waybill", True, tracking_number=number, result="105")
                return self._error(self.ebusiness_id, "105", "电子面单不存在或订单编号不匹配")
            if self.collected(parcel):
                self.record("cancel_waybill", True, tracking_number=number, result="105")
                return self._error(self.ebusiness_id, "105", "快件已揽收，无法取消电子面单")
            parcel.cancelled = True
        self.record("cancel_waybill", True, request_type="1147", tracking_number=number, result="100")
        ok = {"EBusinessID": self.ebusiness_id, "Success": True, "ResultCode": "100", "Reason": "成功"}
        return json_reply(200, ok)

    # ----------------------------------------------------------------------------- 1001 / 1004 door pickup
    def _oorder(self, request: SandboxRequest) -> Reply:
        """预约取件 1001 and its cancel 1004 on OOrderService (REFERENCE §1.3/§1.4: [V] code, [C] endpoint)."""
        request_type = request.form().get("RequestType", "")
        if request_type == "1001":
            return self._book_pickup(request)
        if request_type == "1004":
            return self._cancel_pickup(request)
        self.record("oorder", None, request_type=request_type, result="101")
        return self._error(self.ebusiness_id, "101", f"RequestType {request_type} 不支持此地址")

    def _book_pickup(self, request: SandboxRequest) -> Reply:
        _, data, error = self._authenticate(request, "book_pickup")
        if error is not None:
            return error
        order_code, shipper = str(data.get("OrderCode") or ""), str(data.get("ShipperCode") or "")
        sender, receiver = data.get("Sender") or {}, data.get("Receiver") or {}
        try:
            start, end = (
                datetime.strptime(str(data.get(k) or ""), "%Y-%m-%d %H:%M:%S") for k in ("StartDate", "EndDate")
            )
        except ValueError:
            self.record("book_pickup", True, order_code=order_code, result="101")
            return self._error(self.ebusiness_id, "101", "缺少必要参数：StartDate/EndDate (yyyy-MM-dd HH:mm:ss)")
        missing = [n for n, v in (("OrderCode", order_code), ("Sender.Address", sender.get("Address")),
                                  ("Receiver.Address", receiver.get("Address"))) if not v]  # fmt: skip
        if missing or shipper not in SHAPES or end <= start:
            self.record("book_pickup", True, order_code=order_code, result="105")
            return self._error(
                self.ebusiness_id, "105", f"预约取件参数有误：{', '.join(missing) or shipper or '时间段'}"
            )
        if self.faults.reject == "address":
            self.record("book_pickup", True, order_code=order_code, result="105", fault="reject:address")
            return self._error(self.ebusiness_id, "105", "寄件地址超出揽收范围")
        with self.lock:
            previous = self.orders.get(order_code)
            if previous is not None:
                self.record("book_pickup", True, order_code=order_code, result="106")
                return json_reply(200, dict(previous) | {"ResultCode": "106", "Reason": "订单已存在，请勿重复提交"})
            number = self._issue_number(shipper)
            answer = {
                "EBusinessID": self.ebusiness_id,
                "Order": {"OrderCode": order_code, "ShipperCode": shipper, "LogisticCode": number,
                          "KDNOrderCode": f"KDN{self.random.randrange(10**12, 10**13)}"},
                "UniquerRequestNumber": str(uuid.UUID(int=self.random.getrandbits(128))),
                "ResultCode": "100",
                "Reason": "成功",
                "Success": True,
            }  # fmt: skip
            self.orders[order_code] = answer
            origin, dest = _city(str(sender.get("CityName", ""))), _city(str(receiver.get("CityName", "")))
            self.pickup_parcel(shipper, number, order_code, origin, dest, subscribed=False)
        self.record(
            "book_pickup", True, request_type="1001", order_code=order_code, tracking_number=number, result="100"
        )
        return json_reply(200, answer)

    def _cancel_pickup(self, request: SandboxRequest) -> Reply:
        _, data, error = self._authenticate(request, "cancel_pickup")
        if error is not None:
            return error
        order_code = str(data.get("OrderCode") or "")
        with self.lock:
            answer = self.orders.get(order_code)
            parcel = self.parcels.get(str(answer["Order"]["LogisticCode"])) if answer else None
            if parcel is None:
                reason = "订单不存在"
            elif parcel.cancelled:
                reason = "订单已取消"
            elif self.collected(parcel):
                reason = "快递员已揽件，不能取消"
            else:
                parcel.cancelled, reason = True, ""
        if reason:
            self.record("cancel_pickup", True, request_type="1004", order_code=order_code, result="105")
            return self._error(self.ebusiness_id, "105", reason)
        self.record("cancel_pickup", True, request_type="1004", order_code=order_code, result="100")
        ok = {"EBusinessID": self.ebusiness_id, "Success": True, "ResultCode": "100", "Reason": "成功"}
        return json_reply(200, ok)

    # ----------------------------------------------------------------------------- 8008 / 1008
    def _dist(self, request: SandboxRequest) -> Reply:
        request_type = request.form().get("RequestType", "")
        if request_type not in ("8008", "1008"):
            self.record("dist", None, request_type=request_type, result="101")
            return self._error(self.ebusiness_id, "101", f"RequestType {request_type} 不支持此地址")
        _, data, error = self._authenticate(request, "subscribe")
        if error is not None:
            return error
        shipper = str(data.get("ShipperCode") or "")
        number = str(data.get("LogisticCode") or "")
        if not shipper or not number:
            self.record("subscribe", True, tracking_number=number, result="402")
            return self._error(self.ebusiness_id, "402", "缺少快递单号或快递公司编码")
        with self.lock:
            parcel = self.parcels.get(number) or self.track(
                SandboxParcel(carrier=shipper, tracking_number=number, order_id=str(data.get("OrderCode") or ""))
            )
            self.start_lifecycle(parcel)  # a registered parcel moves under its true carrier, whatever code was sent
            parcel.extra["callback"] = str(data.get("Callback") or data.get("CallBack") or "")
            parcel.extra["push_type"] = "102" if request_type == "8008" else "101"
        self.record("subscribe", True, tracking_number=number, request_type=request_type)
        return json_reply(
            200,
            {
                "EBusinessID": self.ebusiness_id,
                "UpdateTime": self._now_text(),
                "Success": True,
                "Reason": "",
                "EstimatedDeliveryTime": (datetime.now(CHINA_TZ) + timedelta(days=2)).strftime("%Y-%m-%d"),
            },
        )

    # ----------------------------------------------------------------------------- 8001 / 1002
    def _query(self, request: SandboxRequest) -> Reply:
        request_type = request.form().get("RequestType", "")
        if request_type == "2002":
            return self._recognise(request)
        if request_type not in ("8001", "1002"):
            self.record("query", None, request_type=request_type, result="101")
            return self._error(self.ebusiness_id, "101", f"RequestType {request_type} 不支持此地址")
        _, data, error = self._authenticate(request, "query")
        if error is not None:
            return error
        number = str(data.get("LogisticCode") or "")
        shipper = str(data.get("ShipperCode") or "")
        if not number:
            self.record("query", True, result="402")
            return self._error(self.ebusiness_id, "402", "缺少快递单号")
        with self.lock:
            parcel = self.parcels.get(number)
            scans = list(parcel.scans) if parcel else []
        self.record("query", True, tracking_number=number, request_type=request_type)
        if parcel is None or not scans:
            return json_reply(
                200,
                {
                    "EBusinessID": self.ebusiness_id,
                    "ShipperCode": shipper,
                    "LogisticCode": number,
                    "Success": True,
                    "Reason": "暂无轨迹信息",
                    "State": "0",
                    "Traces": [],
                },
            )
        element = self._element(parcel, scans, value_added=request_type == "8001")
        element.pop("CallBack", None)
        return json_reply(200, element)

    # ----------------------------------------------------------------------------- 2002
    def _recognise(self, request: SandboxRequest) -> Reply:
        """2002 单号识别: the true carrier of a parcel the network holds, else the sandbox's own prefix guess.
        A number nobody can place is ``Success: false`` with no shipper and no ResultCode [U]."""
        _, data, error = self._authenticate(request, "recognise")
        if error is not None:
            return error
        number = str(data.get("LogisticCode") or "").strip().upper()
        with self.lock:
            parcel = self.parcels.get(number)
        carriers = [parcel.carrier] if parcel is not None else guess_carriers(number)
        self.record("recognise", True, request_type="2002", tracking_number=number, carriers=carriers)
        return json_reply(
            200,
            {
                "EBusinessID": self.ebusiness_id,
                "Success": bool(carriers),
                "LogisticCode": number,
                "Shippers": [{"ShipperCode": c, "ShipperName": CARRIER_NAMES.get(c, c)} for c in carriers],
            },
        )

    # ----------------------------------------------------------------------------- pushes
    def scan_for(self, stage: Stage, parcel: SandboxParcel) -> tuple[str, str, str]:
        origin, dest = parcel.origin_city, parcel.dest_city
        o, d = origin.removesuffix("市"), dest.removesuffix("市")
        table: dict[Stage, tuple[str, str, str]] = {
            Stage.PICKED_UP: ("1", scan_text(parcel.carrier, Stage.PICKED_UP, origin, f"{o}西湖网点"), origin),
            Stage.IN_TRANSIT: ("2", f"【{origin}】快件已发往 {d}转运中心", origin),
            Stage.ARRIVED_DEST_CITY: ("201", f"【{dest}】快件已到达 {d}转运中心", dest),
            Stage.OUT_FOR_DELIVERY: ("202", f"【{dest}】快递员王某（138****0000）正在派件", dest),
            Stage.DELIVERED: ("301", scan_text(parcel.carrier, Stage.DELIVERED, dest, f"{d}营业部"), dest),
            Stage.DELIVERY_FAILED: ("405", f"【{dest}】快件派送不成功（收件人电话无人接听），待再次派送", dest),
            Stage.EXCEPTION: ("414", f"【{dest}】快件外包装破损，网点已登记问题件", dest),
            Stage.RETURNING: ("404", f"【{dest}】收件人拒收，快件退回中", dest),
            Stage.RETURNED: ("406", f"【{origin}】退回件已由寄件人签收", origin),
            Stage.AT_LOCKER: ("211", f"【{dest}】快件已放入{d}菜鸟驿站，请凭取件码取件", dest),
            # door pickups: StateEx 10 待揽件 [C]; a failed pickup as 415 客户取消发货 (the order closed) [U]
            Stage.COURIER_ASSIGNED: ("10", f"【{origin}】已分配快递员，待揽件", origin),
            Stage.PICKUP_FAILED: ("415", f"【{origin}】快递员上门揽件未成功，订单已取消", origin),
        }
        return table[stage]

    @staticmethod
    def _state(code: str) -> str:
        """Top-level State (0-4) for a StateEx code."""
        if code in ("0", "10"):
            return "0"
        return code[0]

    def _element(self, parcel: SandboxParcel, scans: list[Scan], *, value_added: bool) -> dict[str, Any]:
        latest = max(scans, key=lambda s: s.at)
        traces: list[dict[str, Any]] = []
        for scan in scans:
            trace: dict[str, Any] = {"AcceptTime": scan.at.strftime("%Y-%m-%d %H:%M:%S"), "AcceptStation": scan.text}
            if value_added:
                trace |= {"Location": scan.location, "Action": scan.code}
            trace["Remark"] = ""
            traces.append(trace)
        element: dict[str, Any] = {
            "EBusinessID": self.ebusiness_id,
            "OrderCode": parcel.order_id,
            "ShipperCode": parcel.carrier,
            "LogisticCode": parcel.tracking_number,
            "Success": True,
            "Reason": "",
            "State": self._state(latest.code),
        }
        if value_added:
            element |= {"StateEx": latest.code, "Location": latest.location}
        element["CallBack"] = parcel.extra.get("callback", "")
        element["EstimatedDeliveryTime"] = (latest.at + timedelta(days=1)).strftime("%Y-%m-%d")
        element["Traces"] = traces
        return element

    def build_push(self, batch: list[tuple[SandboxParcel, list[Scan]]]) -> list[PushRequest]:
        """One push per RequestType, each carrying every waybill of that type (``Count`` a string)."""
        by_type: dict[str, list[dict[str, Any]]] = {}
        for parcel, scans in batch:
            if not scans:
                continue
            push_type = str(parcel.extra.get("push_type", "102"))
            by_type.setdefault(push_type, []).append(self._element(parcel, scans, value_added=push_type == "102"))
        pushes = []
        for push_type, elements in by_type.items():
            payload = {
                "EBusinessID": self.ebusiness_id,
                "PushTime": self._now_text(),
                "Count": str(len(elements)),
                "Data": elements,
            }
            request_data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            form = {
                "RequestData": request_data,
                "DataSign": data_sign(request_data, self.app_key),
                "RequestType": push_type,
            }
            pushes.append(
                PushRequest(
                    body=urllib.parse.urlencode(form).encode("ascii"),
                    content_type="application/x-www-form-urlencoded;charset=utf-8",
                )
            )
        return pushes


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox in the foreground: ``python -m sandbox.carriers.kdniao --port 8701``."""
    serve("kdniao", KdniaoSandbox, {"ebusiness_id": "1234567", "app_key": "00000000-1111-2222-3333-444444444444"}, argv)


if __name__ == "__main__":
    main()
