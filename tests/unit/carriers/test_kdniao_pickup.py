"""Kdniao door pickup for returns: 1001 预约取件 / 1004 on OOrderService, or 1007 with a window / 1147."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import CarrierRejected, PickupOrder
from parcelhub.carriers.kdniao import builders, parsers
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import data_sign
from parcelhub.domain.models import CHINA_TZ, Carrier, Provider
from tests.unit.carriers.test_sf_pickup import pickup_order as sf_pickup_order

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures"
APP_KEY = "56da2cf8-c8a2-44b2-b6fa-476cd7d1ba17"
BOOKED_AT = datetime(2026, 12, 1, 10, 0, tzinfo=CHINA_TZ)


def settings(**overrides: Any) -> KdniaoSettings:
    return KdniaoSettings(**({"ebusiness_id": "1234567", "app_key": APP_KEY} | overrides))


def pickup_order(carrier: Carrier = Carrier.ZTO) -> PickupOrder:
    """The SF suite's return pickup, as a Kdniao carrier's."""
    return dataclasses.replace(sf_pickup_order(), return_id="ret_01JDRETURN0000000000000002", carrier=carrier)


def response(name: str) -> Any:
    return json.loads((FIXTURES / "kdniao" / "responses" / name).read_text(encoding="utf-8"))


def test_given_a_return_when_a_pickup_is_built_then_1001_with_the_window_signed() -> None:
    form = builders.build_pickup_request(pickup_order(), settings())
    data = json.loads(form["RequestData"])
    # Then RequestType 1001, signed over the very RequestData
    assert form["RequestType"] == "1001"
    assert form["DataSign"] == data_sign(form["RequestData"], APP_KEY)
    # And the customer is the Sender, the warehouse the Receiver, the window in China time
    assert (data["Sender"]["Name"], data["Sender"]["Mobile"], data["Sender"]["ExpAreaName"]) == (
        "李四",
        "18688806057",
        "白云区",
    )
    assert data["Receiver"]["Company"] == "示例品牌"
    assert (data["StartDate"], data["EndDate"]) == ("2026-12-02 09:00:00", "2026-12-02 12:00:00")
    assert (data["OrderCode"], data["ShipperCode"], data["Callback"]) == (
        "ret_01JDRETURN0000000000000002",
        "ZTO",
        "ret_01JDRETURN0000000000000002",
    )
    assert data["Commodity"] == [{"GoodsName": "护肤品", "Goodsquantity": 1}]
    assert "IsNotice" not in data


def test_given_eorder_for_a_carrier_when_built_then_1007_telling_the_courier_to_come() -> None:
    config = settings(pickup_methods={Carrier.ZTO: "eorder"})
    form = builders.build_pickup_request(pickup_order(), config)
    assert form["RequestType"] == "1007"
    assert json.loads(form["RequestData"])["IsNotice"] == 0
    # And another carrier keeps the default method
    assert builders.build_pickup_request(pickup_order(Carrier.YTO), config)["RequestType"] == "1001"


def test_given_a_pickup_answer_when_parsed_then_the_booking_with_the_waybill() -> None:
    booking = parsers.parse_pickup_response(response("pickup_ok.json"), pickup_order(), settings(), BOOKED_AT)
    assert (booking.provider, booking.carrier) == (Provider.KDNIAO, Carrier.ZTO)
    assert (booking.tracking_number, booking.booking_id) == ("73100000000077", "KDN2612011000012")
    assert booking.pickup_order_id == "ret_01JDRETURN0000000000000002"


def test_given_a_booking_when_cancelled_then_1004_and_idempotent_but_refused_after_collection() -> None:
    booking = parsers.parse_pickup_response(response("pickup_ok.json"), pickup_order(), settings(), BOOKED_AT)
    form = builders.build_pickup_cancel_request(booking, settings())
    assert form["RequestType"] == "1004"
    assert json.loads(form["RequestData"]) == {
        "ShipperCode": "ZTO",
        "OrderCode": "ret_01JDRETURN0000000000000002",
        "ExpNo": "73100000000077",
    }
    assert (
        builders.build_pickup_cancel_request(booking, settings(default_pickup_method="eorder"))["RequestType"] == "1147"
    )
    parsers.parse_pickup_cancel_response(response("pickup_cancel_already.json"), settings())
    with pytest.raises(CarrierRejected):
        parsers.parse_pickup_cancel_response(response("pickup_cancel_collected.json"), settings())
