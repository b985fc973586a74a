"""SF door pickup for returns: the reverse-order (or isDocall create) form, its answer, and the cancel."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import CarrierRejected, PickupOrder
from parcelhub.carriers.sf import builders, parsers
from parcelhub.carriers.sf.builders import Stamp
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.carriers.sf.signing import msg_digest
from parcelhub.domain.models import CHINA_TZ, Carrier, Item, Parcel, Party, PickupBooking, Provider
from parcelhub.domain.returns import PickupWindow

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sf"
STAMP = Stamp(timestamp="1700000000000", request_id="6f1c2a8e-2b0e-4c38-9a57-2d1b7f0d9a11")
CHECKWORD = "TESTCHECKWORD0000000000000000000"
BOOKED_AT = datetime(2026, 12, 1, 10, 0, tzinfo=CHINA_TZ)


def settings(**overrides: Any) -> SfSettings:
    values = {
        "partner_id": "TESTPARTNER",
        "checkword": "TESTCHECKWORD0000000000000000000",
        "monthly_card": "7551234567",
    }
    return SfSettings.model_validate(values | overrides)


def pickup_order() -> PickupOrder:
    raw = json.loads((FIXTURES / "requests" / "pickup.json").read_text(encoding="utf-8"))
    return PickupOrder(
        return_id=raw["return_id"],
        carrier=Carrier(raw["carrier"]),
        pickup=Party(**raw["pickup"]),
        receiver=Party(**raw["receiver"]),
        items=tuple(Item(**i) for i in raw["items"]),
        parcels=tuple(Parcel(**p) for p in raw["parcels"]),
        window=PickupWindow(**raw["window"]),
        remark=raw["remark"],
    )


def response(name: str) -> Any:
    return json.loads((FIXTURES / "responses" / name).read_text(encoding="utf-8"))


def test_given_a_return_when_a_reverse_order_is_built_then_the_customer_is_the_sender_with_the_window() -> None:
    # Given the default settings (reverse-order service)
    form = builders.build_pickup_request(pickup_order(), settings(), STAMP)
    body = json.loads(form["msgData"])
    # Then the configured reverse-order service is called, signed over the very msgData
    assert form["serviceCode"] == "EXP_RECE_CREATE_REVERSE_ORDER"
    assert form["msgDigest"] == msg_digest(form["msgData"], STAMP.timestamp, "TESTCHECKWORD0000000000000000000")
    # And the courier collects from the customer (contactType 1) for the warehouse (2), from the window's start
    sender, receiver = body["contactInfoList"]
    assert (sender["contactType"], sender["contact"], sender["county"]) == (1, "李四", "白云区")
    assert (receiver["contactType"], receiver["company"]) == (2, "示例品牌")
    assert body["sendStartTm"] == "2026-12-02 09:00:00"
    assert body["orderId"] == "ret_01JDRETURN0000000000000001"
    assert "isDocall" not in body
    assert body["cargoDetails"] == [{"name": "护肤品", "count": 1, "unit": "个"}]


def test_given_the_docall_method_and_an_end_field_when_built_then_a_create_order_with_isdocall() -> None:
    config = settings(pickup_method="docall", pickup_end_field="sendEndTm", service_codes={"create_order": "EXP_X"})
    form = builders.build_pickup_request(pickup_order(), config, STAMP)
    body = json.loads(form["msgData"])
    assert form["serviceCode"] == "EXP_X"
    assert (body["isDocall"], body["sendEndTm"]) == (1, "2026-12-02 12:00:00")


def test_given_a_reverse_order_answer_when_parsed_then_a_booking_with_the_waybill() -> None:
    booking = parsers.parse_pickup_response(
        response("pickup_reverse_order.response.json"), pickup_order(), settings(), BOOKED_AT
    )
    assert (booking.provider, booking.carrier) == (Provider.SF, Carrier.SF)
    assert booking.tracking_number == "SF7444407670711"
    assert booking.pickup_order_id == "ret_01JDRETURN0000000000000001"
    assert (booking.window, booking.booked_at) == (pickup_order().window, BOOKED_AT)


def booking() -> PickupBooking:
    return PickupBooking(
        provider=Provider.SF,
        carrier=Carrier.SF,
        pickup_order_id="ret_01JDRETURN0000000000000001",
        tracking_number="SF7444407670711",
        window=pickup_order().window,
        booked_at=BOOKED_AT,
    )


def test_given_a_booking_when_cancelled_then_the_reverse_cancel_names_the_order() -> None:
    form = builders.build_pickup_cancel_request(booking(), settings(), STAMP)
    assert form["serviceCode"] == "EXP_RECE_CANCEL_REVERSE_ORDER"
    assert json.loads(form["msgData"]) == {"language": "zh_CN", "orderId": "ret_01JDRETURN0000000000000001"}
    docall = json.loads(
        builders.build_pickup_cancel_request(booking(), settings(pickup_method="docall"), STAMP)["msgData"]
    )
    assert docall["dealType"] == 2
    assert docall["waybillNoInfoList"][0]["waybillNo"] == "SF7444407670711"


def test_given_a_cancel_answer_then_already_cancelled_is_done_and_collected_is_refused() -> None:
    parsers.parse_pickup_cancel_response(response("pickup_cancel.already.response.json"), settings())
    with pytest.raises(CarrierRejected) as refused:
        parsers.parse_pickup_cancel_response(response("pickup_cancel.collected.response.json"), settings())
    assert refused.value.code == "8252"
