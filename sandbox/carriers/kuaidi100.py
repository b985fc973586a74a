"""Kuaidi100 sandbox: a real HTTP server on 127.0.0.1 speaking Kuaidi100's wire format (REFERENCE §3).

* ``POST /poll`` — subscribe (form ``schema=json``, ``param`` with the key inside). Checks the key
  (600 otherwise), the company (701), callback URL (700); a known subscription answers 501 重复订阅;
  a new one starts tracking the number (Kuaidi100 issues no waybills) and its lifecycle.
* ``POST /poll/query.do`` — real-time query (form ``customer``, ``sign``, ``param``) with
  ``sign = UPPER(MD5(param + key + customer))`` (503 验证签名失败 otherwise); ``data[]`` newest first;
  500 查询无结果 for a number without traces.
* Pushes: form ``param`` + ``sign = MD5(param + salt)`` (upper-case hex) with the salt of the
  subscription, full snapshots (``lastResult.data[]`` newest first), ``status`` polling → shutdown
  once signed for.

* ``GET /autonumber/auto?num=&key=`` — 智能单号识别: ``[{"comCode", "lengthPre", "noPre", "noCount"}]``
  best first, from the ground truth (parcels registered with ``POST /_sandbox/parcels``) or, for a number
  it has no record of, ``sandbox.numbers.guess_carriers``.
* Ground truth on subscribe: a registered parcel subscribed under its own company starts its lifecycle;
  under another company with ``autoCom=1`` it starts too and every push says ``autoCheck:"1"``,
  ``comOld`` (the company sent), ``comNew`` and ``lastResult.com`` (the true one), as Kuaidi100 does when
  it corrects a company (REFERENCE §3.3); with ``autoCom=0`` the subscription is accepted (200: Kuaidi100
  cannot tell), nothing is ever found under that company, a query answers 500 查询无结果, and after two
  stages an ``abort`` push "3天查询无记录" with no traces ends the watch (the real outcome, compressed).

Business replies are HTTP 200 with ``{"result": false, "returnCode": ..., "message": ...}``.
``faults.reject``: ``"address"`` → 700 (subscribe) / 400 (query); ``"duplicate"`` → 501.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.parse
from typing import Any

from sandbox.carriers.base import (
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
from sandbox.numbers import guess_carriers

#: kuaidi100 ``com`` -> our carrier code (the sandbox keeps its own copy: it plays the provider)
COMPANIES: dict[str, str] = {
    "shunfeng": "SF",
    "zhongtong": "ZTO",
    "yuantong": "YTO",
    "shentong": "STO",
    "yunda": "YD",
    "ems": "EMS",
    "jd": "JD",
    "jtexpress": "JTSD",
    "debangkuaidi": "DBL",
    "huitongkuaidi": "HTKY",
    "youzhengguonei": "YZPY",
    "zhaijisong": "ZJS",
    "youshuwuliu": "UC",
    "cainiao": "CNSD",
}
COM_OF = {carrier: com for com, carrier in COMPANIES.items()}

#: messages of the returnCodes (REFERENCE §3.2 and Kuaidi100's doc)
MESSAGES: dict[str, str] = {
    "200": "提交成功",
    "501": "重复订阅",
    "600": "您不是合法的订阅者（即授权Key出错）",
    "601": "POLL:KEY已过期",
    "700": "订阅方的订阅数据存在错误（如不支持的快递公司、单号为空、单号超长等）或错误的回调地址",
    "701": "拒绝订阅的快递公司",
    "702": "POLL:识别不到该单号对应的快递公司",
    "q400": "找不到对应公司",
    "q408": "快递公司参数异常：顺丰快递必须填写收、寄件人手机号码",
    "q500": "查询无结果，请隔段时间再查",
    "q503": "验证签名失败",
    "abort": "3天查询无记录",
}

#: a few cities: areaName, areaCode, areaCenter, areaPinYin (resultv2=4 fields)
AREAS: dict[str, tuple[str, str, str, str]] = {
    "杭州市": ("浙江,杭州市,西湖区", "CN330106000000", "120.130203,30.259324", "xi hu qu"),
    "上海市": ("上海,上海,闵行区", "CN310112000000", "121.381709,31.112813", "min hang qu"),
    "北京市": ("北京,北京,朝阳区", "CN110105000000", "116.443205,39.921506", "chao yang qu"),
    "深圳市": ("广东,深圳市,南山区", "CN440305000000", "113.930478,22.533191", "nan shan qu"),
    "广州市": ("广东,广州市,天河区", "CN440106000000", "113.361597,23.124817", "tian he qu"),
}

#: stage -> (statusCode, status name)
STAGE_CODES: dict[Stage, tuple[str, str]] = {
    Stage.PICKED_UP: ("103", "揽收"),
    Stage.IN_TRANSIT: ("1002", "干线"),
    Stage.ARRIVED_DEST_CITY: ("1001", "到达派件城市"),
    Stage.OUT_FOR_DELIVERY: ("5", "派件"),
    Stage.DELIVERED: ("301", "签收"),
    Stage.DELIVERY_FAILED: ("206", "疑难"),
    Stage.EXCEPTION: ("208", "疑难"),
    Stage.RETURNING: ("6", "退回"),
    Stage.RETURNED: ("4", "退签"),
    Stage.AT_LOCKER: ("501", "投柜或驿站"),
}

SIGNED_STAGES = frozenset({Stage.DELIVERED, Stage.RETURNED})


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _city_of(address: str, default: str) -> str:
    """The city in a free-text address (``广东省深圳市南山区`` -> ``深圳市``)."""
    found = re.search(r"(?:省|自治区)?([^省市区]{2,6}市)", address or "")
    return found.group(1) if found else default


class Kuaidi100Sandbox(CarrierSandbox):
    provider = "kuaidi100"
    full_snapshot = True

    def __init__(
        self,
        key: str,
        customer: str,
        salt: str = "",
        *,
        port: int = 0,
        webhook_url: str | None = None,
        stage_seconds: float = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(port=port, webhook_url=webhook_url, stage_seconds=stage_seconds, seed=seed)
        self.key = key
        self.customer = customer
        self.salt = salt
        #: numbers subscribed under a company that is not theirs, without autoCom: polled, never found
        self.lost: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------------------ routes
    def routes(self) -> dict[str, Route]:
        return {"/poll": self._subscribe, "/poll/query.do": self._query, "/autonumber/auto": self._autonumber}

    @staticmethod
    def _fail(code: str, message_key: str | None = None) -> Reply:
        message = MESSAGES[message_key or code]
        return json_reply(200, {"result": False, "returnCode": code, "message": message})

    def _subscribe(self, request: SandboxRequest) -> Reply:
        form = request.form()
        try:
            param = json.loads(form.get("param", ""))
        except ValueError:
            param = None
        if form.get("schema", "json") != "json" or not isinstance(param, dict):
            self.record("subscribe", None, error="schema/param")
            return self._fail("700")
        number = str(param.get("number") or "")
        company = str(param.get("company") or "")
        raw_parameters = param.get("parameters")
        parameters: dict[str, Any] = raw_parameters if isinstance(raw_parameters, dict) else {}
        key_ok = param.get("key") == self.key
        auto_com = str(parameters.get("autoCom") or "0")
        self.record("subscribe", key_ok, tracking_number=number, company=company, auto_com=auto_com)
        failure = self._subscribe_failure(key_ok, number, company, parameters)
        if failure is not None:
            return self._fail(failure)
        extra = {
            "salt": str(parameters.get("salt") or ""),
            "callbackurl": str(parameters.get("callbackurl") or ""),
            "resultv2": str(parameters.get("resultv2") or "0"),
            "phone": str(parameters.get("phone") or ""),
        }
        with self.lock:
            existing = self.parcels.get(number)
            if self.faults.reject == "duplicate" or (existing is not None and existing.subscribed):
                return self._fail("501")
            if number in self.lost:
                return self._fail("501")  # still polling under the wrong company until it aborts
            if existing is None:  # no ground truth: the number is the subscriber's word
                existing = self.track(SandboxParcel(carrier=COMPANIES[company], tracking_number=number, order_id=""))
            elif COMPANIES[company] != existing.carrier:
                if auto_com != "1":
                    # Kuaidi100 polls the wrong company, finds nothing, and gives up (an abort push)
                    self.lost[number] = extra | {"com": company, "since": time.monotonic(), "pushed": False}
                    return json_reply(200, {"result": True, "returnCode": "200", "message": MESSAGES["200"]})
                extra["com_old"] = company  # autoCom: corrected to the true company in every push
            existing.origin_city = _city_of(str(param.get("from") or ""), "杭州市")
            existing.dest_city = _city_of(str(param.get("to") or ""), "上海市")
            existing.extra.update(extra)
            self.start_lifecycle(existing)
        return json_reply(200, {"result": True, "returnCode": "200", "message": MESSAGES["200"]})

    def _subscribe_failure(self, key_ok: bool, number: str, company: str, parameters: dict[str, Any]) -> str | None:
        """The returnCode a subscription fails with, in Kuaidi100's order of checks; None when valid."""
        if not key_ok:
            return "600"
        if self.faults.reject == "address":
            return "700"
        if not number or len(number) > 32 or not str(parameters.get("callbackurl") or "").startswith("http"):
            return "700"
        if company not in COMPANIES:
            return "701"
        return None

    def _query(self, request: SandboxRequest) -> Reply:
        form = request.form()
        raw = form.get("param", "")
        sign_ok = form.get("customer") == self.customer and form.get("sign", "") == md5_upper(
            raw + self.key + self.customer
        )
        try:
            param = json.loads(raw)
        except ValueError:
            param = None
        number = str(param.get("num") or "") if isinstance(param, dict) else ""
        self.record("query", sign_ok, tracking_number=number)
        if not sign_ok:
            return self._fail("503", "q503")
        if not isinstance(param, dict) or not number or param.get("com") not in COMPANIES:
            return self._fail("400", "q400")
        if self.faults.reject == "address":
            return self._fail("400", "q400")
        if param.get("com") == "shunfeng" and not param.get("phone"):
            return self._fail("408", "q408")
        with self.lock:
            parcel = self.parcels.get(number)
            if parcel is not None and COMPANIES[str(param["com"])] != parcel.carrier:
                parcel = None  # nothing under the company asked
            scans = sorted(parcel.scans, key=lambda s: s.at, reverse=True) if parcel else []
            if parcel is None or not scans:
                return self._fail("500", "q500")
            result = self._last_result(parcel, scans, str(param.get("resultv2") or "0"))
        return json_reply(200, result)

    def _autonumber(self, request: SandboxRequest) -> Reply:
        """智能单号识别 ``GET /autonumber/auto?num=&key=``: a JSON array best first - the true company of a
        parcel the network holds, else the sandbox's own prefix guess (possibly ``[]``). A wrong key is
        answered like a subscription's (600) [U]."""
        number = request.query.get("num", "").strip().upper()
        key_ok = request.query.get("key") == self.key
        self.record("autonumber", key_ok, tracking_number=number)
        if not key_ok:
            return self._fail("600")
        with self.lock:
            parcel = self.parcels.get(number)
        carriers = [parcel.carrier] if parcel is not None else guess_carriers(number)
        answer = [
            {"comCode": COM_OF[c], "lengthPre": len(number), "noPre": number[:4], "noCount": 1000 // (rank + 1)}
            for rank, c in enumerate(carriers)
            if c in COM_OF
        ]
        return json_reply(200, answer)

    def advance(self, now: float | None = None) -> int:
        """The lifecycle, and the abort push of a subscription under the wrong company (after two stages)."""
        added = super().advance(now)
        moment = time.monotonic() if now is None else now
        with self.lock:
            due = [
                (number, watch)
                for number, watch in self.lost.items()
                if not watch["pushed"] and moment - watch["since"] >= 2 * self.stage_seconds
            ]
            for _, watch in due:
                watch["pushed"] = True
        for number, watch in due:
            self.send(self._abort_push(number, watch), {"tracking_number": number, "carrier": None, "scans": []})
        return added

    def _abort_push(self, number: str, watch: dict[str, Any]) -> PushRequest:
        last = {"message": "ok", "nu": number, "ischeck": "0", "condition": "F00", "com": watch["com"],
                "status": "201", "state": "0", "data": []}  # fmt: skip
        payload = {"status": "abort", "billstatus": "", "message": MESSAGES["abort"], "autoCheck": "0",
                   "comOld": "", "comNew": "", "lastResult": last}  # fmt: skip
        param = _dumps(payload)
        body = urllib.parse.urlencode({"sign": md5_upper(param + str(watch["salt"] or self.salt)), "param": param})
        return PushRequest(body=body.encode("ascii"), content_type="application/x-www-form-urlencoded")

    # ------------------------------------------------------------------------------------ lifecycle
    def scan_for(self, stage: Stage, parcel: SandboxParcel) -> tuple[str, str, str]:
        code, _name = STAGE_CODES[stage]
        origin, dest = parcel.origin_city, parcel.dest_city
        short_o, short_d = origin.removesuffix("市"), dest.removesuffix("市")
        hub_o, hub_d = f"{short_o}转运中心", f"{short_d}转运中心"
        site_o, site_d = f"{short_o}{_district(origin)}营业部", f"{short_d}{_district(dest)}营业部"
        texts: dict[Stage, tuple[str, str]] = {
            Stage.PICKED_UP: (origin, scan_text(parcel.carrier, Stage.PICKED_UP, origin, site_o)),
            Stage.IN_TRANSIT: (origin, f"【{origin}】快件离开 【{hub_o}】 已发往 【{hub_d}】"),
            Stage.ARRIVED_DEST_CITY: (dest, f"【{dest}】快件已到达 【{site_d}】"),
            Stage.OUT_FOR_DELIVERY: (dest, f"【{dest}】{site_d} 派件员：王师傅 电话：13800000000 当前正在为您派件"),
            Stage.DELIVERED: (dest, scan_text(parcel.carrier, Stage.DELIVERED, dest, site_d)),
            Stage.DELIVERY_FAILED: (dest, f"【{dest}】派件员多次联系收件人未果，快件暂存{site_d}，将再次派送"),
            Stage.EXCEPTION: (dest, f"【{dest}】快件滞留在 【{site_d}】，原因：天气原因"),
            Stage.RETURNING: (dest, f"【{dest}】快件已退回，退回原因：收件人拒收"),
            Stage.RETURNED: (origin, f"【{origin}】退回件已由寄件人签收"),
            Stage.AT_LOCKER: (
                dest,
                f"【{dest}】快件已放至 {short_d}{_district(dest)}菜鸟驿站，请凭取件码 8-2-1103 取件",
            ),
        }
        city, text = texts[stage]
        return code, text, AREAS.get(city, (city.removesuffix("市"), "", "", ""))[0]

    def build_push(self, batch: list[tuple[SandboxParcel, list[Scan]]]) -> list[PushRequest]:
        pushes = []
        for parcel, scans in batch:
            # the base class hands scans in time order (or shuffled); Kuaidi100 sends newest first
            resultv2 = str(parcel.extra.get("resultv2") or "4")
            last = self._last_result(parcel, list(reversed(scans)), resultv2)
            signed = any(scan.stage in SIGNED_STAGES for scan in parcel.scans)
            payload = {
                "status": "shutdown" if signed else "polling",
                "billstatus": "check" if signed else "sending",
                "message": "",
                "autoCheck": "1" if parcel.extra.get("com_old") else "0",
                "comOld": str(parcel.extra.get("com_old") or ""),
                "comNew": last["com"] if parcel.extra.get("com_old") else "",
                "lastResult": last,
            }
            param = _dumps(payload)
            salt = str(parcel.extra.get("salt", self.salt))
            body = urllib.parse.urlencode({"sign": md5_upper(param + salt), "param": param})
            pushes.append(PushRequest(body=body.encode("ascii"), content_type="application/x-www-form-urlencoded"))
        return pushes

    def _last_result(self, parcel: SandboxParcel, scans: list[Scan], resultv2: str) -> dict[str, Any]:
        newest = max(scans, key=lambda s: s.at) if scans else None
        return {
            "message": "ok",
            "nu": parcel.tracking_number,
            "ischeck": "1" if newest is not None and newest.stage in SIGNED_STAGES else "0",
            "condition": "F00",
            "com": COM_OF.get(parcel.carrier, parcel.carrier.lower()),
            "status": "200",
            "state": _state(newest.stage, resultv2) if newest else "0",
            "data": [self._trace(scan, resultv2) for scan in scans],
        }

    @staticmethod
    def _trace(scan: Scan, resultv2: str) -> dict[str, str]:
        stamp = scan.at.strftime("%Y-%m-%d %H:%M:%S")
        trace = {"time": stamp, "ftime": stamp, "context": scan.text}
        if resultv2 == "0":
            return trace
        code, name = STAGE_CODES[scan.stage]
        area = next((a for a in AREAS.values() if a[0] == scan.location), (scan.location, "", "", ""))
        trace |= {"status": name, "areaCode": area[1], "areaName": area[0]}
        if resultv2 in ("4", "6"):
            trace |= {"statusCode": code, "areaCenter": area[2], "areaPinYin": area[3]}
        return trace


def _district(city: str) -> str:
    """The district of a city in ``AREAS`` (``上海市`` -> ``闵行区``), else ``城区``."""
    area = AREAS.get(city)
    return area[0].rsplit(",", 1)[-1] if area else "城区"


def _state(stage: Stage, resultv2: str) -> str:
    """``lastResult.state``: the advanced code with resultv2 4/6, else the base state."""
    code = STAGE_CODES[stage][0]
    if resultv2 in ("4", "6"):
        return code
    return {"103": "1", "1002": "0", "1001": "0", "301": "3", "206": "2", "208": "2", "501": "5"}.get(code, code)


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox in the foreground: ``python -m sandbox.carriers.kuaidi100 --port 8703``."""
    credentials = {"key": "TESTKEY", "customer": "TESTCUSTOMER0000000000000000000", "salt": "TESTSALT"}
    serve("kuaidi100", Kuaidi100Sandbox, credentials, argv)


if __name__ == "__main__":
    main()
