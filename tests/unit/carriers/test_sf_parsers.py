"""SF answers read into our models: the double-decoded envelope, waybills and polled routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import CarrierDuplicateOrder, CarrierUnavailable
from parcelhub.carriers.sf import parsers
from parcelhub.domain.models import Carrier, EventSource, Provider
from parcelhub.domain.status import Status, SubStatus

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sf" / "responses"


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_create_response_is_decoded_twice_into_a_waybill() -> None:
    # Given REFERENCE §2.5's verbatim create response (apiResultData is JSON in a string)
    msg_data = parsers.unwrap(fixture_json("create_order.response.json"))
    waybill = parsers.waybill_from_order(msg_data)
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
    waybill = parsers.waybill_from_order(parsers.unwrap(fixture_json("search_order.response.json")))
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
    assert parsers.waybill_from_order(msg_data).tracking_number == "SF1000000000001"


def test_success_without_waybill_number_is_a_bad_response() -> None:
    with pytest.raises(CarrierUnavailable):
        parsers.waybill_from_order({"orderId": "O-1", "waybillNoInfoList": []})


def test_duplicate_order_response() -> None:
    with pytest.raises(CarrierDuplicateOrder) as caught:
        parsers.unwrap(fixture_json("create_order.duplicate.response.json"))
    assert (caught.value.code, caught.value.message) == ("8016", "重复下单")


@pytest.mark.parametrize("api_result_data", ["{not json", None, "[]"])
def test_unreadable_api_result_data_is_unavailable(api_result_data: Any) -> None:
    body = {"apiResultCode": "A1000", "apiResultData": api_result_data}
    with pytest.raises(CarrierUnavailable):
        parsers.unwrap(body)


def test_route_query_response_becomes_polled_events() -> None:
    # Given a route query response / When read / Then polled canonical events with China time
    parsed = parsers.events_from_routes(parsers.unwrap(fixture_json("search_routes.response.json")))
    assert [(e.status, e.sub_status) for e in parsed.events] == [
        (Status.PICKED_UP, SubStatus.NONE),
        (Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),
        (Status.DELIVERED, SubStatus.NONE),
    ]
    assert {e.source for e in parsed.events} == {EventSource.POLL}
    assert parsed.events[0].occurred_at.isoformat() == "2024-05-01T10:30:56+08:00"
    assert parsed.tracking_numbers == [(Carrier.SF, "SF1234567890123")]
    assert parsed.unmapped_codes == []
