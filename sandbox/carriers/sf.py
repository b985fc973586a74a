"""SF Express Fengqiao sandbox: a real HTTP server on loopback speaking Fengqiao's wire format.

``POST /std/service`` (form: partnerID, requestID, serviceCode, timestamp, msgDigest, msgData) for
every serviceCode, exactly like ``sfapi.sf-express.com``, so pointing the plugin's ``base_url`` here is
the only change. It:

* checks partnerID and ``msgDigest = Base64(MD5_raw(URLEncoder(msgData + timestamp + checkWord)))``
  (its own Java ``URLEncoder`` implementation, independent of the plugin's) and answers a bad one
  the way SF does: ``apiResultCode`` A1006 数字签名无效 with ``apiResultData`` null; missing fields
  A1001, a stale timestamp A1002, a repeated requestID A1007, an unknown serviceCode A1004;
* answers business results as ``apiResultData`` = JSON *inside a string* (``success``/``errorCode``/
  ``errorMsg``/``msgData``), with 8016 重复下单 for a repeated ``orderId`` (the hub's idempotency
  proof), an address rejection (``faults.reject = "address"``), 8024/8037/8252 on cancel;
* issues unique ``SF`` + 13 digit waybill numbers with route-label data (``routeLabelInfo``);
* pushes routes (increments, at most 10 ``WaybillRoute`` per push) as JSON ``{"Body":{"WaybillRoute":
  [...]}}`` or the form variant ``content=<URL-encoded XML>`` to the webhook. SF does not sign pushes:
  the webhook URL carries the secret token (``push_token`` is appended as the last path segment when
  given; otherwise ``webhook_url`` is used as configured, like the Fengqiao console).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.parse
import uuid
from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from sandbox.carriers.base import (
    HAPPY_PATH,
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

MAX_ROUTES_PER_PUSH = 10
SERVICE_PATH = "/std/service"

#: a few real SF city codes (the first three digits of route labels); others get a stable fallback
CITY_CODES = {
    "北京市": "010",
    "上海市": "021",
    "广州市": "020",
    "深圳市": "755",
    "杭州市": "571",
    "南京市": "025",
    "成都市": "028",
    "武汉市": "027",
    "西安市": "029",
    "苏州市": "512",
}
PRODUCT_NAMES = {1: "顺丰特快", 2: "顺丰标快"}
PRODUCT_CODES = {1: "T1", 2: "T4"}

_JAVA_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")


def java_url_encode(text: str) -> str:
    """``java.net.URLEncoder.encode(text, "UTF-8")`` written from its spec (not the plugin's code)."""
    out: list[str] = []
    for char in text:
        if char in _JAVA_SAFE:
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def sf_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    raw = hashlib.md5(java_url_encode(msg_data + timestamp + checkword).encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def city_code(city: str) -> str:
    if city in CITY_CODES:
        return CITY_CODES[city]
    return str(700 + int(hashlib.sha256(city.encode("utf-8")).hexdigest(), 16) % 200)


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _short(city: str) -> str:
    return city[:-1] if city.endswith("市") else city


#: the reverse-order (door pickup) services [U]: the names the plugin sends by default (SfServiceCodes)
REVERSE_CREATE = "EXP_RECE_CREATE_REVERSE_ORDER"
REVERSE_CANCEL = "EXP_RECE_CANCEL_REVERSE_ORDER"


class SfSandbox(CarrierSandbox):
    provider = "sf"
    full_snapshot = False  # SF pushes increments
    #: SF's route push has no courier-assigned or failed-pickup opCode in the reference: a door pickup
    #: starts at the pickup scan (54), and its failure is not modelled
    pickup_plan = HAPPY_PATH
    pickup_failure_scan = False

    def __init__(
        self,
        *,
        partner_id: str,
        checkword: str,
        monthly_card: str | None = None,
        push_token: str | None = None,
        port: int = 0,
        webhook_url: str | None = None,
        stage_seconds: float = 2.0,
        seed: int | None = None,
        push_format: str = "json",
        max_skew_seconds: float = 600.0,
    ) -> None:
        super().__init__(port=port, webhook_url=webhook_url, stage_seconds=stage_seconds, seed=seed)
        if push_format not in ("json", "xml"):
            raise ValueError("push_format must be 'json' or 'xml'")
        self.partner_id = partner_id
        self.checkword = checkword
        self.monthly_card = monthly_card
        self.push_token = push_token
        self.push_format = push_format
        self.max_skew_seconds = max_skew_seconds
        self.orders: dict[str, dict[str, Any]] = {}
        self._request_ids: set[str] = set()
        self._route_ids = 1_790_000_000_000_000

    # ------------------------------------------------------------------------------------ routing
    def routes(self) -> dict[str, Route]:
        return {SERVICE_PATH: self._service}

    def _service(self, request: SandboxRequest) -> Reply:  # noqa: PLR0911 - one answer per gateway check
        if request.method != "POST":
            return 405, b"Method Not Allowed", "text/plain"
        form = request.form()
        service = form.get("serviceCode", "")
        required = ("partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData")
        missing = [name for name in required if not form.get(name)]
        if missing:
            self.record(service or "unknown", None, error="A1001", missing=missing)
            return self._gateway_error("A1001", "必传参数不可为空")
        valid = form["partnerID"] == self.partner_id and form["msgDigest"] == sf_digest(
            form["msgData"], form["timestamp"], self.checkword
        )
        details = {"partner_id": form["partnerID"], "request_id": form["requestID"]}
        if not valid:
            self.record(service, False, error="A1006", **details)
            return self._gateway_error("A1006", "数字签名无效")
        if not self._fresh(form["timestamp"]):
            self.record(service, True, error="A1002", **details)
            return self._gateway_error("A1002", "请求时效已过期")
        with self.lock:
            repeated = form["requestID"] in self._request_ids
            self._request_ids.add(form["requestID"])
        if repeated:
            self.record(service, True, error="A1007", **details)
            return self._gateway_error("A1007", "重复请求")
        try:
            msg = json.loads(form["msgData"])
        except ValueError:
            self.record(service, True, error="A1001", **details)
            return self._gateway_error("A1001", "msgData不是合法的JSON")
        handlers = {
            "EXP_RECE_CREATE_ORDER": self._create_order,
            "EXP_RECE_UPDATE_ORDER": self._update_order,
            "EXP_RECE_SEARCH_ROUTES": self._search_routes,
            "EXP_RECE_SEARCH_ORDER_RESP": self._search_order,
            REVERSE_CREATE: self._create_reverse_order,
            REVERSE_CANCEL: self._cancel_reverse_order,
        }
        handler = handlers.get(service)
        if handler is None or not isinstance(msg, dict):
            self.record(service, True, error="A1004", **details)
            return self._gateway_error("A1004", "无对应服务权限")
        self.record(service, True, order_id=msg.get("orderId"), **details)
        return handler(msg)

    def describe(self, request: SandboxRequest) -> dict[str, Any]:
        form = request.form()
        try:
            order_id = json.loads(form.get("msgData") or "{}").get("orderId")
        except (ValueError, AttributeError):
            order_id = None
        return {"service": form.get("serviceCode"), "order_id": order_id}

    def _fresh(self, timestamp: str) -> bool:
        if not timestamp.isdigit():
            return False
        return abs(time.time() * 1000 - int(timestamp)) <= self.max_skew_seconds * 1000

    # ------------------------------------------------------------------------------------ envelopes
    def _response_id(self) -> str:
        return uuid.UUID(int=self.random.getrandbits(128)).hex.upper()

    def _gateway_error(self, code: str, message: str) -> Reply:
        body = {
            "apiErrorMsg": message,
            "apiResponseID": self._response_id(),
            "apiResultCode": code,
            "apiResultData": None,
        }
        return json_reply(200, body)

    def _result(
        self, success: bool, msg_data: Any = None, error_code: str = "S0000", error_msg: str | None = None
    ) -> Reply:
        data = {"success": success, "errorCode": error_code, "errorMsg": error_msg, "msgData": msg_data}
        body = {
            "apiErrorMsg": "",
            "apiResponseID": self._response_id(),
            "apiResultCode": "A1000",
            "apiResultData": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        }
        return json_reply(200, body)

    def _business_error(self, code: str, message: str) -> Reply:
        return self._result(False, None, code, message)

    # ------------------------------------------------------------------------------------ operations
    def _create_order(self, msg: dict[str, Any]) -> Reply:  # noqa: PLR0911 - one answer per validation
        order_id = str(msg.get("orderId") or "")
        if not order_id:
            return self._business_error("8013", "未传入订单号")
        contacts = {c.get("contactType"): c for c in msg.get("contactInfoList") or [] if isinstance(c, dict)}
        for contact_type, codes in ((1, ("1010", "1011", "1012")), (2, ("1014", "1015", "1016"))):
            contact = contacts.get(contact_type, {})
            side = "寄件" if contact_type == 1 else "到件"
            if not contact.get("address"):
                return self._business_error(codes[0], f"{side}地址不能为空")
            if not contact.get("contact"):
                return self._business_error(codes[1], f"{side}联系人不能为空")
            if not (contact.get("tel") or contact.get("mobile")):
                return self._business_error(codes[2], f"{side}电话不能为空")
        if self.monthly_card is not None and str(msg.get("monthlyCard") or "") != self.monthly_card:
            return self._business_error("8096", "月结卡号不存在或已失效")
        if self.faults.reject == "address":
            return self._business_error("20052", "到件地址超出收派范围")
        with self.lock:
            if order_id in self.orders or self.faults.reject == "duplicate":
                return self._business_error("8016", "重复下单")
            waybill_no = self._new_waybill_no()
            sender, receiver = contacts[1], contacts[2]
            express_type = int(msg.get("expressTypeId") or 2)
            result = self._order_result(order_id, waybill_no, sender, receiver, express_type)
            parcel = SandboxParcel(
                carrier="SF",
                tracking_number=waybill_no,
                order_id=order_id,
                origin_city=str(sender.get("city") or "深圳市"),
                dest_city=str(receiver.get("city") or "上海市"),
                subscribed=True,  # SF pushes routes of Fengqiao orders without a subscription
                extra={"phones": [_digits(c.get("mobile") or c.get("tel")) for c in (sender, receiver)]},
            )
            if str(msg.get("isDocall") or "0") == "1":  # 通知收派员上门: a door pickup
                parcel.plan, parcel.extra["pickup"] = self.pickup_plan, True
            self.orders[order_id] = {"result": result, "parcel": parcel, "cancelled": False}
            self.track(parcel)
        faulted = self.after_create(order_id)  # outside the lock: a late answer must not block other calls
        return faulted or self._result(True, result)

    def order_book(self) -> list[dict[str, Any]]:
        return [
            {
                "order_id": order_id,
                "tracking_number": order["parcel"].tracking_number,
                "carrier": "SF",
                "cancelled": bool(order["cancelled"]),
            }
            for order_id, order in self.orders.items()
        ]

    def _new_waybill_no(self) -> str:
        while True:
            number = "SF" + "".join(str(self.random.randrange(10)) for _ in range(13))
            if number not in self.parcels:
                return number

    def _order_result(
        self, order_id: str, waybill_no: str, sender: dict[str, Any], receiver: dict[str, Any], express_type: int
    ) -> dict[str, Any]:
        origin, dest = city_code(str(sender.get("city") or "")), city_code(str(receiver.get("city") or ""))
        station = f"{self.random.randrange(100):03d}"
        label = {
            "waybillNo": waybill_no,
            "sourceTransferCode": f"{origin}W",
            "sourceCityCode": origin,
            "sourceDeptCode": f"{origin}A",
            "sourceTeamCode": "",
            "destCityCode": dest,
            "destDeptCode": f"{dest}{station}",
            "destDeptCodeMapping": "",
            "destTeamCode": f"{self.random.randrange(1, 40):03d}",
            "destTeamCodeMapping": "",
            "destTransferCode": f"{dest}W",
            "destRouteLabel": f"{dest}WF-{station}",
            "proName": PRODUCT_NAMES.get(express_type, "顺丰标快"),
            "cargoTypeCode": "C201",
            "limitTypeCode": PRODUCT_CODES.get(express_type, "T4"),
            "expressTypeCode": "B1",
            "codingMapping": f"F{self.random.randrange(10, 99)}",
            "codingMappingOut": "",
            "xbFlag": "0",
            "printFlag": "000000000",
            "twoDimensionCode": (
                f"MMM={{'k1':'{dest}WF','k2':'{dest}{station}','k3':'','k4':'{PRODUCT_CODES.get(express_type, 'T4')}',"
                f"'k5':'{waybill_no}','k6':'','k7':'{self.random.getrandbits(32):08x}'}}"
            ),
            "proCode": PRODUCT_CODES.get(express_type, "T4"),
            "printIcon": "00000000",
            "abFlag": "",
            "errMsg": "",
            "destPortCode": "",
            "destCountry": "",
            "destPostCode": "",
            "checkCode": f"{self.random.randrange(10000):04d}",
        }
        return {
            "orderId": order_id,
            "originCode": origin,
            "destCode": dest,
            "filterResult": 2,
            "remark": "",
            "waybillNoInfoList": [{"waybillType": 1, "waybillNo": waybill_no}],
            "routeLabelInfo": [{"code": "1000", "routeLabelData": label, "message": "SUCCESS"}],
        }

    def _update_order(self, msg: dict[str, Any]) -> Reply:
        order_id = str(msg.get("orderId") or "")
        deal_type = int(msg.get("dealType") or 0)
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return self._business_error("8024", "未下单")
            parcel: SandboxParcel = order["parcel"]
            if deal_type == 2:
                if order["cancelled"]:
                    return self._business_error("8037", "已消单")
                if self.collected(parcel):
                    return self._business_error("8252", "订单已揽收，不可取消")
                order["cancelled"] = True
                parcel.cancelled = True
            elif deal_type != 1:
                return self._business_error("8000", "dealType不合法")
        return self._result(
            True,
            {
                "orderId": order_id,
                "waybillNoInfoList": [{"waybillType": 1, "waybillNo": parcel.tracking_number}],
                "resStatus": 2,
                "extraInfoList": None,
            },
        )

    # ------------------------------------------------------------------------------------ door pickup
    def _create_reverse_order(self, msg: dict[str, Any]) -> Reply:
        """A reverse order (上门取件 for a return) [U service code and fields]: the create-order body with the
        customer as the sender and ``sendStartTm``; answered like a create, the parcel's lifecycle a pickup."""
        start = str(msg.get("sendStartTm") or "")
        try:
            datetime.strptime(start, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return self._business_error("1020", "要求上门取件时间(sendStartTm)不合法")
        reply = self._create_order(msg)
        with self.lock:
            order = self.orders.get(str(msg.get("orderId") or ""))
            parcel: SandboxParcel | None = order["parcel"] if order else None
            if parcel is not None and not parcel.scans:
                parcel.plan, parcel.extra["pickup"] = self.pickup_plan, True
        return reply

    def _cancel_reverse_order(self, msg: dict[str, Any]) -> Reply:
        """Cancel a reverse order before the courier collects [U]: 8037 once cancelled, 8252 once collected."""
        order_id = str(msg.get("orderId") or "")
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return self._business_error("8024", "未下单")
            parcel: SandboxParcel = order["parcel"]
            if order["cancelled"]:
                return self._business_error("8037", "已消单")
            if self.collected(parcel):
                return self._business_error("8252", "订单已揽收，不可取消")
            order["cancelled"] = parcel.cancelled = True
        return self._result(True, {"orderId": order_id, "resStatus": 2})

    def _search_routes(self, msg: dict[str, Any]) -> Reply:
        numbers = [str(n) for n in msg.get("trackingNumber") or []]
        by_order = str(msg.get("trackingType") or "1") == "2"
        responses = []
        with self.lock:
            for number in numbers:
                if by_order:
                    order = self.orders.get(number)
                    parcel = order["parcel"] if order else None
                else:
                    parcel = self.parcels.get(number)
                routes = [self._route(scan) for scan in parcel.scans] if parcel else []
                if parcel and not self._phone_matches(parcel, str(msg.get("checkPhoneNo") or "")):
                    routes = []  # [U] SF hides routes when checkPhoneNo matches neither party
                mail_no = parcel.tracking_number if parcel else number
                responses.append({"mailNo": mail_no, "routes": routes})
        return self._result(True, {"routeResps": responses})

    @staticmethod
    def _phone_matches(parcel: SandboxParcel, last4: str) -> bool:
        if not last4:
            return True
        return any(phone and phone.endswith(last4) for phone in parcel.extra.get("phones", []))

    def _search_order(self, msg: dict[str, Any]) -> Reply:
        with self.lock:
            order = self.orders.get(str(msg.get("orderId") or ""))
        if order is None:
            return self._business_error("8018", "未获取到订单信息")
        result = dict(order["result"])
        # the order-result query spells the route codes in lower case
        result["origincode"] = result.pop("originCode")
        result["destcode"] = result.pop("destCode")
        return self._result(True, result)

    # ------------------------------------------------------------------------------------ tracking
    @staticmethod
    def _route(scan: Scan) -> dict[str, str]:
        return {
            "acceptAddress": scan.location,
            "acceptTime": scan.at.strftime("%Y-%m-%d %H:%M:%S"),
            "remark": scan.text,
            "opCode": scan.code,
        }

    def scan_for(self, stage: Stage, parcel: SandboxParcel) -> tuple[str, str, str]:
        origin, dest = parcel.origin_city, parcel.dest_city
        courier = "快递员王师傅"
        table: dict[Stage, tuple[str, str, str]] = {
            Stage.PICKED_UP: ("54", "顺丰速运 已收取快件", origin),
            Stage.IN_TRANSIT: (
                "30",
                f"快件在【{_short(origin)}中转场】完成分拣，准备发往 【{_short(dest)}中转场】",
                origin,
            ),
            Stage.ARRIVED_DEST_CITY: ("130", f"快件已到达【{_short(dest)}营业点】，即将派件", dest),
            Stage.OUT_FOR_DELIVERY: ("204", f"快件交给{courier}，正在派送途中（联系电话：138****0000）", dest),
            Stage.DELIVERED: (
                "80",
                f"您的快件已签收，如有疑问请电联快递员【{courier[3:]}，电话：138****0000】，感谢您使用顺丰，期待再次为您服务。",
                dest,
            ),
            Stage.DELIVERY_FAILED: ("70", "快件派送不成功(收方客户不在)，待再次派送", dest),
            Stage.EXCEPTION: ("33", f"快件滞留在【{_short(dest)}营业点】，待进一步处理", dest),
            Stage.RETURNING: ("648", "快件已退回/转寄，正在退回寄件人途中", dest),
            Stage.RETURNED: ("631", "快件已退回，寄件人已签收", origin),
            Stage.AT_LOCKER: ("125", "快件已暂存至【丰巢智能快递柜】，请凭取件码取件", dest),
        }
        return table[stage]

    def build_push(self, batch: list[tuple[SandboxParcel, list[Scan]]]) -> list[PushRequest]:
        nodes: list[dict[str, str]] = []
        for parcel, scans in batch:
            for scan in scans:
                with self.lock:
                    self._route_ids += 1
                    route_id = str(self._route_ids)
                nodes.append(
                    {
                        "id": route_id,
                        "mailno": parcel.tracking_number,
                        "orderid": parcel.order_id,
                        "acceptTime": scan.at.strftime("%Y-%m-%d %H:%M:%S"),
                        "acceptAddress": scan.location,
                        "remark": scan.text,
                        "opCode": scan.code,
                        "reasonCode": "",
                        "reasonName": "",
                    }
                )
        suffix = f"/{self.push_token}" if self.push_token else ""
        pushes = []
        for start in range(0, len(nodes), MAX_ROUTES_PER_PUSH):
            chunk = nodes[start : start + MAX_ROUTES_PER_PUSH]
            if self.push_format == "xml":
                body, content_type = _xml_push(chunk), "application/x-www-form-urlencoded; charset=UTF-8"
            else:
                body = json.dumps({"Body": {"WaybillRoute": chunk}}, ensure_ascii=False).encode("utf-8")
                content_type = "application/json;charset=UTF-8"
            pushes.append(PushRequest(body=body, content_type=content_type, path_suffix=suffix))
        return pushes


def _xml_push(nodes: list[dict[str, str]]) -> bytes:
    routes = "".join(
        "<WaybillRoute " + " ".join(f"{key}={quoteattr(value)}" for key, value in node.items()) + "/>" for node in nodes
    )
    xml = f'<Request service="RoutePushService" lang="zh-CN"><Body>{routes}</Body></Request>'
    return ("content=" + urllib.parse.quote_plus(xml)).encode("ascii")


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox standalone: ``python -m sandbox.carriers.sf --port 8402 --webhook-url ...``."""
    credentials = {
        "partner_id": "TESTPARTNER",
        "checkword": "TESTCHECKWORD0000000000000000000",
        "monthly_card": None,
        "push_token": None,
    }
    serve("sf", SfSandbox, credentials, argv, extra={"push_format": ("json", "xml")})


if __name__ == "__main__":
    main()
