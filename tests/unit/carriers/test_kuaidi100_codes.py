"""Every Kuaidi100 state of REFERENCE.md §3.4 maps to the intended canonical status (table-driven)."""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime

import pytest

from parcelhub.carriers.base import HttpRequest
from parcelhub.carriers.kuaidi100.builders import com_code
from parcelhub.carriers.kuaidi100.codes import COMPANY_CODES, STATE_NAMES, TRACKING_CODES
from parcelhub.carriers.kuaidi100.parsers import MISSING_CODE, carrier_for_com
from parcelhub.carriers.kuaidi100.plugin import Kuaidi100Plugin
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.kuaidi100.signing import push_sign
from parcelhub.domain.models import CHINA_TZ, Carrier
from parcelhub.domain.status import Status, SubStatus

pytestmark = pytest.mark.unit

S, X = Status, SubStatus

#: REFERENCE §3.4, row by row: code, name, intended (status, sub-status).
REFERENCE_STATES: list[tuple[str, str, Status, SubStatus]] = [
    ("1", "揽收", S.PICKED_UP, X.NONE),
    ("101", "已下单", S.WAYBILL_CREATED, X.NONE),
    ("102", "待揽收", S.WAYBILL_CREATED, X.AWAITING_PICKUP),
    ("103", "已揽收", S.PICKED_UP, X.NONE),
    ("0", "在途", S.IN_TRANSIT, X.NONE),
    ("1001", "到达派件城市", S.ARRIVED_AT_DESTINATION_CITY, X.NONE),
    ("1002", "干线", S.IN_TRANSIT, X.NONE),
    ("1003", "转递", S.IN_TRANSIT, X.REDIRECTED),
    ("5", "派件", S.OUT_FOR_DELIVERY, X.NONE),
    ("501", "投柜或驿站", S.AVAILABLE_FOR_PICKUP, X.NONE),
    ("3", "签收", S.DELIVERED, X.NONE),
    ("301", "本人签收", S.DELIVERED, X.SIGNED_BY_RECIPIENT),
    ("302", "派件异常后签收", S.DELIVERED, X.SIGNED_AFTER_EXCEPTION),
    ("303", "代签", S.DELIVERED, X.SIGNED_BY_PROXY),
    ("304", "投柜或站签收", S.DELIVERED, X.SIGNED_AT_LOCKER),
    ("6", "退回", S.RETURNING, X.NONE),
    ("4", "退签", S.RETURNED, X.NONE),
    ("401", "已销单", S.CANCELLED, X.CANCELLED_BY_SENDER),
    ("14", "拒签", S.RETURNING, X.REFUSED),
    ("7", "转投", S.IN_TRANSIT, X.FORWARDED),
    ("2", "疑难", S.EXCEPTION, X.NONE),
    ("201", "超时未签收", S.EXCEPTION, X.CARRIER_TIMEOUT_NOT_SIGNED),
    ("202", "超时未更新", S.EXCEPTION, X.CARRIER_TIMEOUT_NO_UPDATE),
    ("203", "拒收", S.DELIVERY_FAILED, X.REFUSED),
    ("204", "派件异常", S.DELIVERY_FAILED, X.NONE),
    ("205", "柜或驿站超时未取", S.EXCEPTION, X.CARRIER_TIMEOUT_LOCKER),
    ("206", "无法联系", S.DELIVERY_FAILED, X.RECIPIENT_UNREACHABLE),
    ("207", "超区", S.EXCEPTION, X.OUT_OF_SERVICE_AREA),
    ("208", "滞留", S.EXCEPTION, X.HELD),
    ("209", "破损", S.EXCEPTION, X.DAMAGED),
    ("210", "销单", S.EXCEPTION, X.CANCELLED_BY_SENDER),
    ("8", "清关", S.IN_TRANSIT, X.CUSTOMS),
    ("10", "待清关", S.IN_TRANSIT, X.CUSTOMS),
    ("11", "清关中", S.IN_TRANSIT, X.CUSTOMS),
    ("12", "已清关", S.IN_TRANSIT, X.CUSTOMS_CLEARED),
    ("13", "清关异常", S.EXCEPTION, X.CUSTOMS_EXCEPTION),
]

SETTINGS = Kuaidi100Settings(key="TESTKEY", customer="TESTCUSTOMER0000000000000000000", salt="TESTSALT")


def signed_push(traces: list[dict[str, str]], state: str = "0") -> HttpRequest:
    payload = {
        "status": "polling",
        "billstatus": "",
        "message": "",
        "autoCheck": "0",
        "comOld": "",
        "comNew": "",
        "lastResult": {
            "message": "ok",
            "nu": "YT1234567890123",
            "ischeck": "0",
            "condition": "F00",
            "com": "yuantong",
            "status": "200",
            "state": state,
            "data": traces,
        },
    }
    param = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    body = urllib.parse.urlencode({"sign": push_sign(param, "TESTSALT"), "param": param})
    return HttpRequest(body=body.encode("ascii"), headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_the_table_holds_exactly_the_reference_codes() -> None:
    # Given REFERENCE §3.4 Then the code table has every code and no invented one
    assert set(TRACKING_CODES.codes) == {code for code, *_ in REFERENCE_STATES}


@pytest.mark.parametrize(("code", "name", "status", "sub_status"), REFERENCE_STATES)
def test_every_reference_code_maps_as_intended(code: str, name: str, status: Status, sub_status: SubStatus) -> None:
    # Given a push whose trace carries the advanced statusCode
    plugin = Kuaidi100Plugin(SETTINGS)
    request = signed_push(
        [{"time": "2024-05-02 08:10:00", "ftime": "2024-05-02 08:10:00", "context": "x", "statusCode": code}]
    )
    # When parsed
    parsed = plugin.parse_push(request)
    # Then the event has the intended status, sub-status and raw code, and nothing is unmapped
    (event,) = parsed.events
    assert (event.status, event.sub_status, event.raw_code) == (status, sub_status, code)
    assert parsed.unmapped_codes == []
    # And the Chinese name alone (no statusCode) resolves to the same code
    assert STATE_NAMES[name] == code
    by_name = plugin.parse_push(signed_push([{"time": "2024-05-02 08:10:00", "context": "x", "status": name}]))
    assert (by_name.events[0].status, by_name.events[0].sub_status) == (status, sub_status)


def test_an_unknown_code_is_unmapped_and_reported() -> None:
    # Given a trace with a code Kuaidi100 might add tomorrow
    parsed = Kuaidi100Plugin(SETTINGS).parse_push(
        signed_push([{"time": "2024-05-02 08:10:00", "context": "新状态", "statusCode": "1501"}])
    )
    # Then it is not guessed: sub-status UNMAPPED, and the code is listed for the metric
    (event,) = parsed.events
    assert event.sub_status is SubStatus.UNMAPPED
    assert event.raw_code == "1501"
    assert list(parsed.unmapped_codes) == ["1501"]
    mapping, known = TRACKING_CODES.lookup("1501")
    assert not known
    assert mapping.sub_status is SubStatus.UNMAPPED


def test_newest_trace_without_code_falls_back_to_last_result_state() -> None:
    # Given resultv2 off: traces carry no status at all, lastResult.state says 3 (signed)
    traces = [
        {"time": "2024-05-03 14:00:00", "context": "【上海市】已签收"},
        {"time": "2024-05-03 08:00:00", "context": "【上海市】派件中"},
    ]
    parsed = Kuaidi100Plugin(SETTINGS).parse_push(signed_push(traces, state="3"))
    newest, older = parsed.events
    # Then the newest trace takes the state; the older one is read from its text, marked inferred
    assert (newest.status, newest.raw_code, newest.inferred) == (Status.DELIVERED, "3", False)
    assert (older.status, older.raw_code, older.inferred) == (Status.OUT_FOR_DELIVERY, "", True)
    assert list(parsed.unmapped_codes) == []


def test_a_codeless_trace_whose_text_says_nothing_is_a_plain_scan_not_unmapped() -> None:
    # Given resultv2 off and an older trace whose text names no milestone
    traces = [
        {"time": "2024-05-03 14:00:00", "context": "【上海市】已签收"},
        {"time": "2024-05-03 08:00:00", "context": "【上海市】扫描"},
    ]
    parsed = Kuaidi100Plugin(SETTINGS).parse_push(signed_push(traces, state="3"))
    # Then the older scan is a plain scan on the way, marked inferred; nothing is unmapped
    older = parsed.events[1]
    assert (older.status, older.sub_status, older.inferred) == (Status.IN_TRANSIT, SubStatus.NONE, True)
    assert list(parsed.unmapped_codes) == []
    assert MISSING_CODE == "(none)"


def test_company_codes_cover_every_carrier_both_ways() -> None:
    # Given the Carrier enum Then every carrier has a distinct com code that maps back
    assert set(COMPANY_CODES) == set(Carrier)
    assert len(set(COMPANY_CODES.values())) == len(COMPANY_CODES)
    for carrier, com in COMPANY_CODES.items():
        assert carrier_for_com(com, SETTINGS) is carrier
        assert com_code(carrier, SETTINGS) == com
    assert COMPANY_CODES[Carrier.SF] == "shunfeng"
    assert COMPANY_CODES[Carrier.JTSD] == "jtexpress"
    assert carrier_for_com("fengwang", SETTINGS) is None


def test_parse_times_are_china_time() -> None:
    parsed = Kuaidi100Plugin(SETTINGS).parse_push(
        signed_push([{"time": "2024-05-02 08:10:00", "context": "x", "statusCode": "0"}])
    )
    assert parsed.events[0].occurred_at == datetime(2024, 5, 2, 8, 10, tzinfo=CHINA_TZ)
