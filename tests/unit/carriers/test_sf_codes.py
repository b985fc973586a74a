"""Every SF opCode of REFERENCE.md §2.7 and every error code maps as intended (table-driven)."""

from __future__ import annotations

import pytest

from parcelhub.carriers.base import CarrierAuthError, CarrierDuplicateOrder, CarrierRejected, CarrierUnavailable
from parcelhub.carriers.sf import codes
from parcelhub.carriers.sf.parsers import unwrap
from parcelhub.domain.status import Status, SubStatus

pytestmark = pytest.mark.unit

#: REFERENCE §2.7, row by row: opCode -> (status, sub-status) we intend
OP_CODE_EXPECTATIONS = [
    ("50", Status.PICKED_UP, SubStatus.NONE),
    ("54", Status.PICKED_UP, SubStatus.NONE),
    ("501", Status.IN_TRANSIT, SubStatus.NONE),
    ("407", Status.IN_TRANSIT, SubStatus.NONE),
    ("30", Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),
    ("36", Status.IN_TRANSIT, SubStatus.NONE),
    ("31", Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB),
    ("607", Status.IN_TRANSIT, SubStatus.NONE),
    ("130", Status.ARRIVED_AT_DESTINATION_CITY, SubStatus.AT_DELIVERY_STATION),
    ("123", Status.IN_TRANSIT, SubStatus.NONE),
    ("44", Status.OUT_FOR_DELIVERY, SubStatus.NONE),
    ("204", Status.OUT_FOR_DELIVERY, SubStatus.NONE),
    ("80", Status.DELIVERED, SubStatus.NONE),
    ("8000", Status.DELIVERED, SubStatus.NONE),
    ("631", Status.RETURNED, SubStatus.NONE),
    ("648", Status.RETURNING, SubStatus.NONE),
    ("99", Status.EXCEPTION, SubStatus.HELD),
    ("70", Status.DELIVERY_FAILED, SubStatus.NONE),
    ("33", Status.EXCEPTION, SubStatus.HELD),
    # [U] extension used by the sandbox's locker stage
    ("125", Status.AVAILABLE_FOR_PICKUP, SubStatus.NONE),
]


@pytest.mark.parametrize(("op_code", "status", "sub_status"), OP_CODE_EXPECTATIONS)
def test_every_reference_op_code_maps_as_intended(op_code: str, status: Status, sub_status: SubStatus) -> None:
    # Given an opCode from REFERENCE §2.7 / When looked up / Then it is known and maps as intended
    mapping, known = codes.TRACKING_CODES.lookup(op_code)
    assert known
    assert (mapping.status, mapping.sub_status) == (status, sub_status)


def test_the_table_has_exactly_the_codes_under_test() -> None:
    # Then no code sneaks into the table without an intended mapping above
    assert set(codes.TRACKING_CODES.codes) == {code for code, _, _ in OP_CODE_EXPECTATIONS}


@pytest.mark.parametrize("op_code", ["9999", "", "  ", "54 1"])
def test_unknown_op_code_is_in_transit_unmapped(op_code: str) -> None:
    # Given a code SF never documented / Then IN_TRANSIT with sub-status UNMAPPED, flagged unknown
    mapping, known = codes.TRACKING_CODES.lookup(op_code)
    assert not known
    assert (mapping.status, mapping.sub_status) == (Status.IN_TRANSIT, SubStatus.UNMAPPED)


GATEWAY_EXPECTATIONS = [
    ("A1001", CarrierAuthError),
    ("A1002", CarrierAuthError),
    ("A1003", CarrierAuthError),
    ("A1004", CarrierAuthError),
    ("A1005", CarrierUnavailable),
    ("A1006", CarrierAuthError),
    ("A1007", CarrierDuplicateOrder),
    ("A1009", CarrierUnavailable),
    ("A1099", CarrierUnavailable),
    ("A1234", CarrierUnavailable),  # unknown A-code: the gateway did not process it, retry is safe
]


@pytest.mark.parametrize(("api_code", "error"), GATEWAY_EXPECTATIONS)
def test_gateway_codes_raise_the_typed_error_with_sfs_code_and_message(api_code: str, error: type) -> None:
    # Given a gateway refusal in SF's envelope / When unwrapped / Then the typed error carries SF's code
    body = {"apiErrorMsg": "网关说明", "apiResponseID": "X", "apiResultCode": api_code, "apiResultData": None}
    with pytest.raises(error) as caught:
        unwrap(body)
    assert type(caught.value) is error
    assert caught.value.code == api_code
    assert caught.value.message == "网关说明"


BUSINESS_EXPECTATIONS = [
    ("8016", CarrierDuplicateOrder),
    ("1010", CarrierRejected),
    ("1011", CarrierRejected),
    ("1012", CarrierRejected),
    ("1014", CarrierRejected),
    ("1015", CarrierRejected),
    ("1016", CarrierRejected),
    ("20052", CarrierRejected),
    ("6126", CarrierAuthError),
    ("8096", CarrierAuthError),
    ("8018", CarrierRejected),
    ("8024", CarrierRejected),
    ("8037", CarrierRejected),  # the plugin's cancel treats it as done
    ("8252", CarrierRejected),
    ("7777", CarrierRejected),  # unknown business code: a plain rejection
]


def test_business_table_is_fully_covered() -> None:
    assert set(codes.BUSINESS_ERRORS) == {c for c, _ in BUSINESS_EXPECTATIONS} - {"7777"}
    assert set(codes.GATEWAY_ERRORS) == {c for c, _ in GATEWAY_EXPECTATIONS} - {"A1234"}


@pytest.mark.parametrize(("error_code", "error"), BUSINESS_EXPECTATIONS)
def test_business_codes_raise_the_typed_error(error_code: str, error: type) -> None:
    # Given A1000 with a business failure inside the JSON string / Then the typed error with SF's code
    inner = f'{{"success":false,"errorCode":"{error_code}","errorMsg":"业务说明","msgData":null}}'
    body = {"apiErrorMsg": "", "apiResponseID": "X", "apiResultCode": "A1000", "apiResultData": inner}
    with pytest.raises(error) as caught:
        unwrap(body)
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.message) == (error_code, "业务说明")
