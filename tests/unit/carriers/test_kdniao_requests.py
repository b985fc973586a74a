"""Every Kdniao request builder, asserted exactly against a fixture (form fields and RequestData text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import TrackingQuery, TrackingSubscription, WaybillOrder
from parcelhub.carriers.kdniao.builders import (
    build_cancel_request,
    build_create_request,
    build_query_request,
    build_subscribe_request,
)
from parcelhub.carriers.kdniao.settings import KdniaoAccount, KdniaoSettings
from parcelhub.domain.models import Carrier, Party, Provider, ShipmentRequest, Waybill

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kdniao" / "requests"
APP_KEY = "00000000-1111-2222-3333-444444444444"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text("utf-8"))
    return data


def settings(**overrides: Any) -> KdniaoSettings:
    base: dict[str, Any] = {
        "ebusiness_id": "1234567",
        "app_key": APP_KEY,
        "accounts": {
            Carrier.ZTO: KdniaoAccount(customer_name="zto-cust-001", customer_pwd="secret-pwd", send_site="杭州西湖")
        },
    }
    return KdniaoSettings(**(base | overrides))


def order_from_fixture() -> WaybillOrder:
    raw = load("create_waybill.input.json")
    return WaybillOrder(
        shipment_id=raw["shipment_id"],
        carrier=Carrier(raw["carrier"]),
        request=ShipmentRequest.model_validate(raw["request"]),
        sender=Party.model_validate(raw["sender"]),
    )


def assert_matches(fixture: str, form: dict[str, str], request_type: str, path: str) -> None:
    expected = load(fixture)
    # the RequestData text, byte for byte (what is signed is what is sent)
    assert form["RequestData"] == expected["form"]["RequestData"]
    # every form field, values raw (encoded once by the HTTP layer)
    assert form["RequestType"] == request_type
    assert form == expected["form"]
    assert path == expected["path"]


def test_create_waybill_1007() -> None:
    # Given an order for ZTO with a configured ZTO e-waybill account
    s = settings()
    # When the 1007 RequestData is built / Then it is exactly the fixture (OrderCode = shipment id)
    assert_matches("create_waybill.json", build_create_request(order_from_fixture(), s), "1007", s.eorder_path)


def test_create_without_account_sends_no_account_fields() -> None:
    s = settings(accounts={})
    payload = json.loads(build_create_request(order_from_fixture(), s)["RequestData"])
    assert not {"CustomerName", "CustomerPwd", "MonthCode", "SendSite"} & payload.keys()
    assert payload["ShipperCode"] == "ZTO"
    assert payload["IsReturnPrintTemplate"] == 1


def test_landline_phone_goes_to_tel_not_mobile() -> None:
    order = order_from_fixture()
    sender = order.sender.model_copy(update={"phone": "0571-88880000"})
    payload = json.loads(
        build_create_request(WaybillOrder(order.shipment_id, order.carrier, order.request, sender), settings())[
            "RequestData"
        ]
    )
    assert payload["Sender"]["Tel"] == "0571-88880000"
    assert "Mobile" not in payload["Sender"]


def test_cancel_waybill_1147() -> None:
    s = settings()
    waybill = Waybill(
        provider=Provider.KDNIAO,
        carrier=Carrier.ZTO,
        tracking_number="73100000000001",
        provider_order_id="shp_7f3c2a9e4b",
    )
    assert_matches("cancel_waybill.json", build_cancel_request(waybill, s), "1147", s.eorder_path)


def test_subscribe_8008_passes_our_id_as_callback() -> None:
    s = settings()
    subscription = TrackingSubscription(
        carrier=Carrier.ZTO,
        tracking_number="73100000000001",
        callback_url="https://hooks.example.com/webhooks/kdniao",
        phone_last4="1111",  # ignored for non-SF carriers
        order_id="shp_7f3c2a9e4b",
    )
    assert_matches("subscribe.json", build_subscribe_request(subscription, s), "8008", s.subscribe_path)


def test_subscribe_sf_carries_phone_last4_as_customer_name() -> None:
    s = settings()
    subscription = TrackingSubscription(
        carrier=Carrier.SF,
        tracking_number="SF1234567890123",
        callback_url="https://hooks.example.com/webhooks/kdniao",
        phone_last4="1111",
        order_id="shp_7f3c2a9e4b",
    )
    assert_matches("subscribe_sf.json", build_subscribe_request(subscription, s), "8008", s.subscribe_path)


def test_query_8001() -> None:
    s = settings()
    query = TrackingQuery(Carrier.YTO, "YT1234567890123", "1111")
    assert_matches("query.json", build_query_request(query, s), "8001", s.query_path)


def test_query_sf_8001() -> None:
    s = settings()
    query = TrackingQuery(Carrier.SF, "SF1234567890123", "1111")
    assert_matches("query_sf.json", build_query_request(query, s), "8001", s.query_path)
