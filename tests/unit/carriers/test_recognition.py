"""The aggregators' number recognition (Kdniao 2002 单号识别, Kuaidi100 智能单号识别), the carrier
correction a Kuaidi100 push carries (``autoCheck``), and ``autoCom`` on subscribe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierCorrection,
    CarrierRejected,
    CarrierUnavailable,
    HttpRequest,
    TrackingSubscription,
)
from parcelhub.carriers.kdniao import builders as kd_builders
from parcelhub.carriers.kdniao import parsers as kd_parsers
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import data_sign
from parcelhub.carriers.kuaidi100 import builders as k100_builders
from parcelhub.carriers.kuaidi100 import parsers as k100_parsers
from parcelhub.carriers.kuaidi100.codes import COMPANY_CODES
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.kuaidi100.signing import push_sign
from parcelhub.carriers.wire import compact_json, encode_form
from parcelhub.domain.models import Carrier

pytestmark = pytest.mark.unit

PUBLISHED = Path(__file__).parents[2] / "fixtures" / "kuaidi100" / "published"
APP_KEY = "00000000-1111-2222-3333-444444444444"
_NOW = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: the carriers #19 names: every one has a Kuaidi100 com code and is a Kdniao ShipperCode
NAMED = (Carrier.SF, Carrier.ZTO, Carrier.YTO, Carrier.STO, Carrier.YD, Carrier.JTSD, Carrier.EMS, Carrier.YZPY,
         Carrier.JD, Carrier.DBL, Carrier.CAINIAO)  # fmt: skip


def kdniao(**overrides: Any) -> KdniaoSettings:
    return KdniaoSettings(**({"ebusiness_id": "1234567", "app_key": APP_KEY} | overrides))


def kuaidi100(**overrides: Any) -> Kuaidi100Settings:
    base = {"key": "TESTKEY", "customer": "TESTCUSTOMER0000000000000000000", "salt": "S"}
    return Kuaidi100Settings(**(base | overrides))


# ------------------------------------------------------------------------------------ Kdniao 2002


def test_kdniao_2002_request_is_the_signed_envelope_with_the_number() -> None:
    # When the recognition of a number is built
    form = kd_builders.build_recognise_request("773014136444784", kdniao())
    # Then it is the signed envelope of RequestType 2002 carrying only LogisticCode
    assert form["RequestType"] == "2002"
    assert json.loads(form["RequestData"]) == {"LogisticCode": "773014136444784"}
    assert form["DataSign"] == data_sign(form["RequestData"], APP_KEY)
    assert kdniao().url(kdniao().recognise_path) == "https://api.kdniao.com/Ebusiness/EbusinessOrderHandle.aspx"


def test_kdniao_2002_answer_lists_our_carriers_in_its_order() -> None:
    # Given an answer naming STO first, then a carrier we do not know, then ZTO and STO again
    body = {
        "EBusinessID": "1234567",
        "Success": True,
        "LogisticCode": "773014136444784",
        "Shippers": [
            {"ShipperCode": "STO", "ShipperName": "申通快递"},
            {"ShipperCode": "QFKD", "ShipperName": "全峰快递"},
            {"ShipperCode": "ZTO", "ShipperName": "中通快递"},
            {"ShipperCode": "STO", "ShipperName": "申通快递"},
        ],
    }
    # Then our carriers, best first, each once
    assert kd_parsers.parse_recognise_response(body, kdniao()) == [Carrier.STO, Carrier.ZTO]


def test_kdniao_2002_answer_for_an_unknown_number_is_empty() -> None:
    body = {"EBusinessID": "1234567", "Success": False, "LogisticCode": "X1", "Shippers": []}
    assert kd_parsers.parse_recognise_response(body, kdniao()) == []


def test_kdniao_2002_refusal_is_typed() -> None:
    body = {"EBusinessID": "1234567", "Success": False, "ResultCode": "104", "Reason": "DataSign签名验证失败"}
    with pytest.raises(CarrierAuthError):
        kd_parsers.parse_recognise_response(body, kdniao())


def test_kdniao_2002_field_names_are_configurable() -> None:
    body = {"Success": True, "Shipper": [{"Code": "CNSD"}]}
    settings = kdniao(recognise_shippers_field="Shipper", recognise_code_field="Code")
    assert kd_parsers.parse_recognise_response(body, settings) == [Carrier.CAINIAO]


# ------------------------------------------------------------------------------------ Kuaidi100 autonumber


def test_kuaidi100_autonumber_asks_with_the_number_and_key_on_its_own_host() -> None:
    assert k100_builders.build_autonumber_request("YT4318407829600", kuaidi100()) == {
        "num": "YT4318407829600",
        "key": "TESTKEY",
    }
    assert kuaidi100().autonumber_endpoint == "https://www.kuaidi100.com/autonumber/auto"
    # a sandbox or proxy base URL answers autonumber too; an explicit URL wins
    assert kuaidi100(base_url="http://127.0.0.1:8703").autonumber_endpoint == "http://127.0.0.1:8703/autonumber/auto"
    assert kuaidi100(autonumber_url="https://x.example/auto").autonumber_endpoint == "https://x.example/auto"


def test_kuaidi100_autonumber_answer_maps_com_codes_back_to_our_carriers() -> None:
    # Given the documented array shape, best first, with a com code outside our table
    body = [
        {"comCode": "zhongtong", "lengthPre": 14, "noPre": "7310", "noCount": 1200},
        {"comCode": "tiantian", "lengthPre": 14, "noPre": "7310", "noCount": 3},
        {"comCode": "shentong", "lengthPre": 14, "noPre": "7310", "noCount": 40},
    ]
    assert k100_parsers.parse_autonumber_response(body, kuaidi100()) == [Carrier.ZTO, Carrier.STO]
    assert k100_parsers.parse_autonumber_response([], kuaidi100()) == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"returnCode": "600", "message": "您不是合法的订阅者"}, CarrierAuthError),
        ({"returnCode": "700", "message": "bad"}, CarrierRejected),
        ({"message": "?"}, CarrierUnavailable),
        ("<html>", CarrierUnavailable),
    ],
)
def test_kuaidi100_autonumber_refusals_are_typed(body: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        k100_parsers.parse_autonumber_response(body, kuaidi100())


def test_every_named_carrier_has_a_kuaidi100_code_that_maps_back() -> None:
    for carrier in NAMED:
        assert k100_parsers.carrier_for_com(COMPANY_CODES[carrier], kuaidi100()) is carrier


# ------------------------------------------------------------------------------------ autoCom / autoCheck


def test_subscribe_sends_autocom_1_only_when_the_carrier_is_a_guess() -> None:
    def auto_com(auto_detect: bool) -> str:
        subscription = TrackingSubscription(
            Carrier.ZTO, "75123456789012", "https://hooks.example.com/k", auto_detect=auto_detect
        )
        form = k100_builders.build_subscribe_request(subscription, kuaidi100())
        value: str = json.loads(form["param"])["parameters"]["autoCom"]
        return value

    assert auto_com(True) == "1"
    assert auto_com(False) == "0"


def test_a_published_autocheck_push_reports_the_correction_and_keys_events_under_the_new_carrier() -> None:
    # Given Kuaidi100's published push correcting yuantong -> ems (signed with its subscriber's salt)
    request = HttpRequest(body=(PUBLISHED / "push_autocheck.wire.txt").read_bytes(), headers=FORM)
    # When parsed
    parsed = k100_parsers.parse_push(request, kuaidi100(salt="V030344422"), received_at=_NOW)
    # Then the correction is reported and every event is EMS's
    correction = CarrierCorrection(tracking_number="V030344422", old=Carrier.YTO, new=Carrier.EMS)
    assert list(parsed.corrections) == [correction]
    assert parsed.events
    assert {event.carrier for event in parsed.events} == {Carrier.EMS}


def test_a_push_without_autocheck_has_no_correction() -> None:
    param = compact_json(
        {"status": "polling", "autoCheck": "0", "comOld": "", "comNew": "",
         "lastResult": {"nu": "YT4318407829600", "com": "yuantong", "state": "0",
                        "data": [{"time": "2024-05-02 08:10:00", "context": "快件已发往 上海转运中心"}]}}
    )  # fmt: skip
    body = encode_form({"sign": push_sign(param, "S"), "param": param}).encode("utf-8")
    parsed = k100_parsers.parse_push(HttpRequest(body=body, headers=FORM), kuaidi100(), received_at=_NOW)
    assert list(parsed.corrections) == []
    assert {event.carrier for event in parsed.events} == {Carrier.YTO}
