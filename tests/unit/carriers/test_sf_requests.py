"""SF request builders asserted exactly against fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import CarrierRejected, TrackingQuery, WaybillOrder
from parcelhub.carriers.sf import builders
from parcelhub.carriers.sf.builders import Stamp
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import Carrier, Party, Provider, ShipmentRequest, Waybill

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sf" / "requests"
REQUEST_ID = "6f1c2a8e-2b0e-4c38-9a57-2d1b7f0d9a11"
TIMESTAMP = "1700000000000"
STAMP = Stamp(timestamp=TIMESTAMP, request_id=REQUEST_ID)


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8").rstrip("\n")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


def settings(**overrides: Any) -> SfSettings:
    values: dict[str, Any] = {
        "partner_id": "TESTPARTNER",
        "checkword": "TESTCHECKWORD0000000000000000000",
        "monthly_card": "7551234567",
        "push_token": "tok-0123456789abcdef0123456789",
    }
    return SfSettings.model_validate(values | overrides)


def order(**request_overrides: Any) -> WaybillOrder:
    raw = fixture_json("order.json")
    request = ShipmentRequest.model_validate(raw["request"] | request_overrides)
    return WaybillOrder(
        shipment_id=raw["shipment_id"], carrier=Carrier(raw["carrier"]), request=request, sender=Party(**raw["sender"])
    )


def payload_of(form: dict[str, str]) -> Any:
    """The business JSON of a built form."""
    return json.loads(form["msgData"])


def sf_waybill() -> Waybill:
    return Waybill(
        provider=Provider.SF,
        carrier=Carrier.SF,
        tracking_number="SF1234567890123",
        provider_order_id="DTC-20240501-0001",
    )


@pytest.mark.parametrize(
    ("name", "service_code", "build"),
    [
        ("create_order", "EXP_RECE_CREATE_ORDER", lambda s: builders.build_create_request(order(), s, STAMP)),
        ("cancel_order", "EXP_RECE_UPDATE_ORDER", lambda s: builders.build_cancel_request(sf_waybill(), s, STAMP)),
        (
            "search_routes",
            "EXP_RECE_SEARCH_ROUTES",
            lambda s: builders.build_query_request(TrackingQuery(Carrier.SF, "SF1234567890123", "0000"), s, STAMP),
        ),
        (
            "search_order",
            "EXP_RECE_SEARCH_ORDER_RESP",
            lambda s: builders.build_fetch_request("DTC-20240501-0001", s, STAMP),
        ),
    ],
)
def test_request_builders_match_the_fixture_exactly(name: str, service_code: str, build: Any) -> None:
    # Given the fixture order and settings / When the msgData and the form are built
    config = settings()
    form = build(config)
    msg_data = form["msgData"]
    # Then the JSON string is byte-for-byte the fixture and so is every form field (order included)
    assert form["serviceCode"] == service_code
    assert msg_data == fixture_text(f"{name}.msgdata.json")
    expected_form = fixture_json(f"{name}.form.json")
    assert form == expected_form
    assert list(form) == ["partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData"]


def test_route_query_without_phone_is_the_golden_vector_msgdata() -> None:
    # Given no phone / Then the route query is REFERENCE §2.2's golden msgData and digest
    config = settings()
    form = builders.build_query_request(TrackingQuery(Carrier.SF, "SF1234567890123"), config, STAMP)
    msg_data = form["msgData"]
    assert msg_data == '{"language":"0","trackingType":"1","trackingNumber":["SF1234567890123"],"methodType":"1"}'
    assert form["serviceCode"] == "EXP_RECE_SEARCH_ROUTES"
    assert form["msgDigest"] == "xCv72pnbGvziYQDEdpJygw=="


def test_express_service_level_uses_the_configured_express_type() -> None:
    # Given an express order and a custom product table / Then expressTypeId comes from settings (data)
    config = settings(express_type_ids={"standard": 2, "express": 1})
    assert payload_of(builders.build_create_request(order(service="express"), config, STAMP))["expressTypeId"] == 1
    custom = settings(express_type_ids={"standard": 6, "express": 5})
    assert payload_of(builders.build_create_request(order(service="standard"), custom, STAMP))["expressTypeId"] == 6


def test_create_order_sums_parcels_and_omits_absent_optional_fields() -> None:
    # Given two parcels and a receiver without postcode/company
    payload = payload_of(
        builders.build_create_request(order(parcels=[{"weight_kg": 1.2}, {"weight_kg": 0.35}]), settings(), STAMP)
    )
    # Then the quantity and weight are totals and the receiver carries no empty keys
    assert (payload["parcelQty"], payload["totalWeight"]) == (2, 1.55)
    receiver = order().receiver.model_copy(update={"postcode": None})
    created = builders.build_create_request(order(receiver=receiver.model_dump()), settings(), STAMP)
    contact = payload_of(created)["contactInfoList"][1]
    assert "postCode" not in contact
    assert "company" not in contact


@pytest.mark.parametrize(("unit", "expected"), [("ms", "1700000000123"), ("s", "1700000000")])
def test_timestamp_unit_is_a_setting(unit: str, expected: str) -> None:
    assert builders.timestamp_for(settings(timestamp_unit=unit), 1_700_000_000.123) == expected


def test_cancel_needs_the_sf_order_id() -> None:
    waybill = sf_waybill().model_copy(update={"provider_order_id": None})
    with pytest.raises(CarrierRejected):
        builders.build_cancel_request(waybill, settings(), STAMP)


@pytest.mark.parametrize(
    ("phone", "last4"), [("18688806057", "6057"), ("+86 138-0000-1234", "1234"), ("0755-1234567", "4567")]
)
def test_phone_last4(phone: str, last4: str) -> None:
    assert builders.phone_last4(phone) == last4
