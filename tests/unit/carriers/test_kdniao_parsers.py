"""Kdniao answers (recorded shapes) classified into results and typed errors."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierRejected,
    CarrierUnavailable,
    TrackingQuery,
    WaybillOrder,
)
from parcelhub.carriers.kdniao.parsers import check_result, parse_create_response, parse_query_response
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.domain.models import CHINA_TZ, Carrier, EventSource, Party, Provider, ShipmentRequest
from parcelhub.domain.status import Status, SubStatus

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kdniao"
SETTINGS = KdniaoSettings(ebusiness_id="1234567", app_key="00000000-1111-2222-3333-444444444444")
QUERY = TrackingQuery(Carrier.ZTO, "73100000000001")


def response(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "responses" / name).read_text("utf-8"))
    return data


def order() -> WaybillOrder:
    raw = json.loads((FIXTURES / "requests" / "create_waybill.input.json").read_text("utf-8"))
    return WaybillOrder(
        shipment_id=raw["shipment_id"],
        carrier=Carrier(raw["carrier"]),
        request=ShipmentRequest.model_validate(raw["request"]),
        sender=Party.model_validate(raw["sender"]),
    )


def test_create_ok_keeps_label_and_routing_fields() -> None:
    body = response("create_ok.json")
    waybill = parse_create_response(body, order(), SETTINGS)
    assert waybill.provider is Provider.KDNIAO
    assert waybill.carrier is Carrier.ZTO
    assert waybill.tracking_number == "73100000000001"
    assert waybill.provider_order_id == "shp_7f3c2a9e4b"
    assert waybill.sort_code == "021-300 12"  # MarkDestination (大头笔)
    assert waybill.origin_code == "571000"
    assert waybill.destination_code == "200000"  # from the vendor-typo field DestinatioCode
    assert waybill.package_code == "0210517"
    assert waybill.label == body["PrintTemplate"]


def test_duplicate_order_code_with_the_order_is_the_same_waybill() -> None:
    waybill = parse_create_response(response("create_duplicate_with_order.json"), order(), SETTINGS)
    assert waybill.tracking_number == "73100000000001"


def test_duplicate_order_code_without_order_raises_duplicate() -> None:
    with pytest.raises(CarrierDuplicateOrder) as caught:
        parse_create_response(response("create_duplicate.json"), order(), SETTINGS)
    assert caught.value.code == "106"


def test_address_rejection_keeps_provider_code_and_reason() -> None:
    with pytest.raises(CarrierRejected) as caught:
        parse_create_response(response("create_rejected_address.json"), order(), SETTINGS)
    assert not isinstance(caught.value, CarrierDuplicateOrder)
    assert caught.value.code == "105"
    assert caught.value.message == response("create_rejected_address.json")["Reason"]
    assert not caught.value.retryable


def test_missing_parameter_is_a_rejection() -> None:
    with pytest.raises(CarrierRejected) as caught:
        check_result(response("create_missing_parameter.json"), SETTINGS)
    assert caught.value.code == "101"


@pytest.mark.parametrize("name", ["bad_data_sign.json", "sign_failure_other_code.json"])
def test_signature_or_account_failure_is_an_auth_error(name: str) -> None:
    with pytest.raises(CarrierAuthError) as caught:
        check_result(response(name), SETTINGS)
    assert caught.value.code == response(name)["ResultCode"]


def test_query_limit_is_retryable() -> None:
    with pytest.raises(CarrierUnavailable) as caught:
        check_result(response("query_limit.json"), SETTINGS)
    assert caught.value.code == "405"
    assert caught.value.retryable


def test_subscribe_ok_without_result_code_is_success_and_failure_is_rejection() -> None:
    check_result(response("subscribe_ok.json"), SETTINGS)
    check_result(response("cancel_ok.json"), SETTINGS)
    with pytest.raises(CarrierRejected) as caught:
        check_result(response("subscribe_failed.json"), SETTINGS)
    assert caught.value.code is None
    assert caught.value.message == "快递单号有误"


def test_query_answer_is_parsed_into_poll_events() -> None:
    events = parse_query_response(response("query_ok.json"), QUERY, SETTINGS).events
    assert [e.status for e in events] == [
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.ARRIVED_AT_DESTINATION_CITY,
        Status.OUT_FOR_DELIVERY,
    ]
    assert {e.source for e in events} == {EventSource.POLL}
    assert events[-1].occurred_at == datetime(2024, 5, 2, 8, 4, 25, tzinfo=CHINA_TZ)


def test_query_without_traces_yields_no_events() -> None:
    assert parse_query_response(response("query_no_trace.json"), QUERY, SETTINGS).events == []


def test_query_answer_is_parsed_like_a_push_and_reports_unknown_codes() -> None:
    # Given the recorded query answer whose last two traces carry a code Kdniao might add tomorrow, and a
    # text that says nothing either
    body = response("query_ok.json")
    for trace in body["Traces"][-2:]:
        trace["Action"] = "499"
        trace["AcceptStation"] = "【苏州市】状态码 4.9.9"
    # When parsed
    parsed = parse_query_response(body, QUERY, SETTINGS)
    # Then the traces are UNMAPPED, the code is listed once for the metric, and the number is named
    assert [e.sub_status for e in parsed.events if e.raw_code == "499"] == [SubStatus.UNMAPPED, SubStatus.UNMAPPED]
    assert parsed.unmapped_codes == ["499"]
    assert parsed.tracking_numbers == [(Carrier.ZTO, "73100000000001")]


def test_an_unknown_code_whose_text_says_enough_is_inferred_and_reported_apart() -> None:
    # Given the same unknown code on a scan whose text names the milestone
    body = response("query_ok.json")
    body["Traces"][-1]["Action"] = "499"
    body["Traces"][-1]["AcceptStation"] = "【苏州市】快件已签收，签收人：本人"
    # When parsed
    parsed = parse_query_response(body, QUERY, SETTINGS)
    # Then the scan is delivered, marked inferred, and the code is listed apart (not UNMAPPED)
    (last,) = [e for e in parsed.events if e.raw_code == "499"]
    assert (last.status, last.sub_status, last.inferred, last.raw_code) == (
        Status.DELIVERED,
        SubStatus.NONE,
        True,
        "499",
    )
    assert parsed.unmapped_codes == []
    assert parsed.inferred_codes == ["499"]
