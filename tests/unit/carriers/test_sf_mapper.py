"""SF request builders asserted exactly against fixtures, and responses read into our models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parcelhub.carriers.base import CarrierDuplicateOrder, CarrierRejected, CarrierUnavailable, WaybillOrder
from parcelhub.carriers.sf import mapper
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import (
    Carrier,
    EventSource,
    Party,
    Provider,
    ServiceLevel,
    ShipmentRequest,
    Waybill,
)
from parcelhub.domain.status import Status, SubStatus

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sf"
REQUEST_ID = "6f1c2a8e-2b0e-4c38-9a57-2d1b7f0d9a11"
TIMESTAMP = "1700000000000"


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


def sf_waybill() -> Waybill:
    return Waybill(
        provider=Provider.SF,
        carrier=Carrier.SF,
        tracking_number="SF1234567890123",
        provider_order_id="DTC-20240501-0001",
    )


# ------------------------------------------------------------------------------------------ requests


@pytest.mark.parametrize(
    ("name", "service_code", "build"),
    [
        ("create_order", "EXP_RECE_CREATE_ORDER", lambda s: mapper.create_order_payload(s, order())),
        ("cancel_order", "EXP_RECE_UPDATE_ORDER", lambda s: mapper.cancel_order_payload(s, sf_waybill())),
        (
            "search_routes",
            "EXP_RECE_SEARCH_ROUTES",
            lambda s: mapper.search_routes_payload(s, "SF1234567890123", "0000"),
        ),
        ("search_order", "EXP_RECE_SEARCH_ORDER_RESP", lambda s: mapper.search_order_payload(s, "DTC-20240501-0001")),
    ],
)
def test_request_builders_match_the_fixture_exactly(name: str, service_code: str, build: Any) -> None:
    # Given the fixture order and settings / When the msgData and the form are built
    config = settings()
    msg_data = mapper.to_json(build(config))
    form = mapper.envelope(config, service_code, msg_data, TIMESTAMP, REQUEST_ID)
    # Then the JSON string is byte-for-byte the fixture and so is every form field (order included)
    assert msg_data == fixture_text(f"{name}.msgdata.json")
    expected_form = fixture_json(f"{name}.form.json")
    assert form == expected_form
    assert list(form) == ["partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData"]


def test_route_query_without_phone_is_the_golden_vector_msgdata() -> None:
    # Given no phone / Then the route query is REFERENCE §2.2's golden msgData and digest
    config = settings()
    msg_data = mapper.to_json(mapper.search_routes_payload(config, "SF1234567890123"))
    assert msg_data == '{"language":"0","trackingType":"1","trackingNumber":["SF1234567890123"],"methodType":"1"}'
    assert mapper.envelope(config, "EXP_RECE_SEARCH_ROUTES", msg_data, TIMESTAMP, REQUEST_ID)["msgDigest"] == (
        "xCv72pnbGvziYQDEdpJygw=="
    )


def test_express_service_level_uses_the_configured_express_type() -> None:
    # Given an express order and a custom product table / Then expressTypeId comes from settings (data)
    config = settings(express_type_ids={"standard": 2, "express": 1})
    assert mapper.create_order_payload(config, order(service="express"))["expressTypeId"] == 1
    custom = settings(express_type_ids={"standard": 6, "express": 5})
    assert mapper.create_order_payload(custom, order(service="standard"))["expressTypeId"] == 6


def test_create_order_sums_parcels_and_omits_absent_optional_fields() -> None:
    # Given two parcels and a receiver without postcode/company
    payload = mapper.create_order_payload(settings(), order(parcels=[{"weight_kg": 1.2}, {"weight_kg": 0.35}]))
    # Then the quantity and weight are totals and the receiver carries no empty keys
    assert (payload["parcelQty"], payload["totalWeight"]) == (2, 1.55)
    receiver = order().receiver.model_copy(update={"postcode": None})
    contact = mapper.create_order_payload(settings(), order(receiver=receiver.model_dump()))["contactInfoList"][1]
    assert "postCode" not in contact
    assert "company" not in contact


@pytest.mark.parametrize(("unit", "expected"), [("ms", "1700000000123"), ("s", "1700000000")])
def test_timestamp_unit_is_a_setting(unit: str, expected: str) -> None:
    assert mapper.timestamp_for(settings(timestamp_unit=unit), 1_700_000_000.123) == expected


def test_cancel_needs_the_sf_order_id() -> None:
    waybill = sf_waybill().model_copy(update={"provider_order_id": None})
    with pytest.raises(CarrierRejected):
        mapper.cancel_order_payload(settings(), waybill)


@pytest.mark.parametrize(
    ("phone", "last4"), [("18688806057", "6057"), ("+86 138-0000-1234", "1234"), ("0755-1234567", "4567")]
)
def test_phone_last4(phone: str, last4: str) -> None:
    assert mapper.phone_last4(phone) == last4


# ------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    "overrides",
    [
        {"partner_id": ""},
        {"monthly_card": "not-a-card"},
        {"push_token": "short"},
        {"base_url": "ftp://sfapi.sf-express.com"},
        {"path": "std/service"},
        {"express_type_ids": {"standard": 2}},
        {"push_format": "soap"},
        {"read_timeout": 0},
        {"unknown_setting": 1},
    ],
)
def test_settings_reject_invalid_configuration(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**overrides)


def test_settings_defaults_and_url() -> None:
    config = settings(base_url="https://sfapi-sbox.sf-express.com/")
    assert config.url == "https://sfapi-sbox.sf-express.com/std/service"
    assert config.timeout == (3.05, 10.0)
    assert config.express_type_ids[ServiceLevel.STANDARD] == 2
    assert "TESTCHECKWORD" not in repr(config)  # secrets stay out of logs


# ------------------------------------------------------------------------------------------ responses


def test_create_response_is_decoded_twice_into_a_waybill() -> None:
    # Given REFERENCE §2.5's verbatim create response (apiResultData is JSON in a string)
    msg_data = mapper.unwrap(fixture_json("create_order.response.json"))
    waybill = mapper.waybill_from_order(msg_data)
    # Then the master waybill number, routing codes and the whole routeLabelData as label
    assert waybill.tracking_number == "SF7444407670710"
    assert (waybill.provider, waybill.carrier) == (Provider.SF, Carrier.SF)
    assert waybill.provider_order_id == "QIAO-20200618-004"
    assert (waybill.origin_code, waybill.destination_code, waybill.sort_code) == ("755", "020", "020")
    assert waybill.label is not None
    assert json.loads(waybill.label) == {
        "waybillNo": "SF7444407670710",
        "proName": "顺丰标快",
        "destRouteLabel": "020",
        "twoDimensionCode": "...",
    }


def test_order_query_response_spells_codes_in_lower_case() -> None:
    waybill = mapper.waybill_from_order(mapper.unwrap(fixture_json("search_order.response.json")))
    assert waybill.tracking_number == "SF1234567890123"
    assert (waybill.origin_code, waybill.destination_code) == ("755", "020")
    assert (waybill.sort_code, waybill.package_code) == ("020WF-012", "F31")


def test_master_waybill_wins_over_child_numbers() -> None:
    msg_data = {
        "orderId": "O-1",
        "waybillNoInfoList": [
            {"waybillType": 2, "waybillNo": "SF1000000000002"},
            {"waybillType": 1, "waybillNo": "SF1000000000001"},
        ],
    }
    assert mapper.waybill_from_order(msg_data).tracking_number == "SF1000000000001"


def test_success_without_waybill_number_is_a_bad_response() -> None:
    with pytest.raises(CarrierUnavailable):
        mapper.waybill_from_order({"orderId": "O-1", "waybillNoInfoList": []})


def test_duplicate_order_response() -> None:
    with pytest.raises(CarrierDuplicateOrder) as caught:
        mapper.unwrap(fixture_json("create_order.duplicate.response.json"))
    assert (caught.value.code, caught.value.message) == ("8016", "重复下单")


@pytest.mark.parametrize("api_result_data", ["{not json", None, "[]"])
def test_unreadable_api_result_data_is_unavailable(api_result_data: Any) -> None:
    body = {"apiResultCode": "A1000", "apiResultData": api_result_data}
    with pytest.raises(CarrierUnavailable):
        mapper.unwrap(body)


def test_route_query_response_becomes_polled_events() -> None:
    # Given a route query response / When read / Then polled canonical events with China time
    parsed = mapper.events_from_routes(mapper.unwrap(fixture_json("search_routes.response.json")))
    assert [(e.status, e.sub_status) for e in parsed.events] == [
        (Status.PICKED_UP, SubStatus.NONE),
        (Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),
        (Status.DELIVERED, SubStatus.NONE),
    ]
    assert {e.source for e in parsed.events} == {EventSource.POLL}
    assert parsed.events[0].occurred_at.isoformat() == "2024-05-01T10:30:56+08:00"
    assert parsed.tracking_numbers == [(Carrier.SF, "SF1234567890123")]
    assert parsed.unmapped_codes == []
