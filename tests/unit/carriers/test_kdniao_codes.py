"""Every Kdniao State / StateEx / Action code of REFERENCE §1.7 maps to the intended canonical status."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from parcelhub.carriers.base import HttpRequest
from parcelhub.carriers.kdniao.codes import TRACKING_CODES
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import data_sign
from parcelhub.domain.status import Status as S
from parcelhub.domain.status import SubStatus as X

pytestmark = pytest.mark.unit

APP_KEY = "00000000-1111-2222-3333-444444444444"

#: REFERENCE §1.7 (State and StateEx tables), normalised per §6; written out here independently.
EXPECTED: dict[str, tuple[S, X]] = {
    "0": (S.WAYBILL_CREATED, X.NO_TRACE_YET),
    "1": (S.PICKED_UP, X.NONE),
    "10": (S.WAYBILL_CREATED, X.AWAITING_PICKUP),
    "2": (S.IN_TRANSIT, X.NONE),
    "201": (S.ARRIVED_AT_DESTINATION_CITY, X.NONE),
    "204": (S.IN_TRANSIT, X.AT_TRANSIT_HUB),
    "205": (S.IN_TRANSIT, X.AT_DELIVERY_STATION),
    "206": (S.IN_TRANSIT, X.NONE),
    "202": (S.OUT_FOR_DELIVERY, X.NONE),
    "211": (S.AVAILABLE_FOR_PICKUP, X.NONE),
    "3": (S.DELIVERED, X.NONE),
    "301": (S.DELIVERED, X.SIGNED_BY_RECIPIENT),
    "302": (S.DELIVERED, X.SIGNED_AFTER_EXCEPTION),
    "304": (S.DELIVERED, X.SIGNED_BY_PROXY),
    "311": (S.DELIVERED, X.SIGNED_AT_LOCKER),
    "4": (S.EXCEPTION, X.NONE),
    "401": (S.EXCEPTION, X.CARRIER_TIMEOUT_NO_UPDATE),
    "402": (S.EXCEPTION, X.CARRIER_TIMEOUT_NOT_SIGNED),
    "403": (S.EXCEPTION, X.CARRIER_TIMEOUT_NO_UPDATE),
    "404": (S.RETURNING, X.REFUSED),
    "405": (S.DELIVERY_FAILED, X.NONE),
    "406": (S.RETURNED, X.NONE),
    "407": (S.RETURNING, X.NONE),
    "412": (S.EXCEPTION, X.CARRIER_TIMEOUT_LOCKER),
    "413": (S.CANCELLED, X.INTERCEPTED),
    "414": (S.EXCEPTION, X.DAMAGED),
    "415": (S.CANCELLED, X.CANCELLED_BY_SENDER),
    "416": (S.DELIVERY_FAILED, X.RECIPIENT_UNREACHABLE),
    "417": (S.EXCEPTION, X.DELAYED),
    "418": (S.EXCEPTION, X.NONE),
    "419": (S.OUT_FOR_DELIVERY, X.REDELIVERY),
    "420": (S.DELIVERY_FAILED, X.ADDRESS_PROBLEM),
    "421": (S.DELIVERY_FAILED, X.WRONG_PHONE),
    "422": (S.EXCEPTION, X.MISSORTED),
    "423": (S.EXCEPTION, X.OUT_OF_SERVICE_AREA),
    "5": (S.IN_TRANSIT, X.FORWARDED),
    "6": (S.IN_TRANSIT, X.CUSTOMS),
    "601": (S.IN_TRANSIT, X.CUSTOMS),
    "602": (S.IN_TRANSIT, X.CUSTOMS),
    "603": (S.IN_TRANSIT, X.CUSTOMS_CLEARED),
    "604": (S.EXCEPTION, X.CUSTOMS_EXCEPTION),
}


def test_the_table_covers_exactly_the_reference_codes() -> None:
    assert set(TRACKING_CODES.codes) == set(EXPECTED)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_code_maps_to_intended_status(code: str, expected: tuple[S, X]) -> None:
    mapping, known = TRACKING_CODES.lookup(code)
    assert known
    assert (mapping.status, mapping.sub_status) == expected


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_each_code_as_a_trace_action_in_a_push_yields_that_status(code: str, expected: tuple[S, X]) -> None:
    # Given a signed 102 push whose only trace carries the code as Action
    element = {
        "ShipperCode": "ZTO",
        "LogisticCode": "73100000000009",
        "Success": True,
        "State": "2",
        "StateEx": code,
        "Traces": [{"AcceptTime": "2024-05-02 08:00:00", "AcceptStation": "扫描", "Action": code}],
    }
    request_data = json.dumps({"EBusinessID": "1234567", "Count": "1", "Data": [element]}, ensure_ascii=False)
    form = {"RequestData": request_data, "DataSign": data_sign(request_data, APP_KEY), "RequestType": "102"}
    plugin = KdniaoPlugin(KdniaoSettings(ebusiness_id="1234567", app_key=APP_KEY))
    # When parsed
    parsed = plugin.parse_push(HttpRequest(body=urllib.parse.urlencode(form).encode()))
    # Then the event has the mapped status and nothing is reported unmapped
    [event] = parsed.events
    assert (event.status, event.sub_status) == expected
    assert event.raw_code == code
    assert parsed.unmapped_codes == ()


@pytest.mark.parametrize("code", ["999", "", "4x", "2011"])
def test_unknown_code_is_unmapped_not_guessed(code: str) -> None:
    mapping, known = TRACKING_CODES.lookup(code)
    assert not known
    assert mapping.sub_status is X.UNMAPPED
