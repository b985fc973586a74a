"""Kuaidi100 replies classified into results and typed errors, and query replies parsed into events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    TrackingQuery,
)
from parcelhub.carriers.kuaidi100 import parsers
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.domain.models import Carrier

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kuaidi100" / "responses"
CUSTOMER = "TESTCUSTOMER0000000000000000000"
QUERY = TrackingQuery(Carrier.YTO, "YT1234567890123")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def settings() -> Kuaidi100Settings:
    return Kuaidi100Settings(key="TESTKEY", customer=CUSTOMER, salt="TESTSALT")


SUBSCRIBE_CASES: list[tuple[str, type[CarrierError] | None, str | None]] = [
    ("ok", None, None),
    ("duplicate", None, None),  # 501 already subscribed = idempotent success
    ("bad_key", CarrierAuthError, "600"),
    ("key_expired", CarrierAuthError, "601"),
    ("bad_data", CarrierRejected, "700"),
    ("company_refused", CarrierRejected, "701"),
    ("company_unknown", CarrierRejected, "702"),
    ("server_error", CarrierUnavailable, "500"),
]


@pytest.mark.parametrize(("case", "error", "code"), SUBSCRIBE_CASES)
def test_subscribe_return_codes_map_to_typed_errors(
    settings: Kuaidi100Settings, case: str, error: type[CarrierError] | None, code: str | None
) -> None:
    # Given a recorded subscribe reply
    body = fixture("subscribe_responses.json")[case]
    # When it is checked Then success returns and failures raise with the provider's code and message
    if error is None:
        parsers.parse_subscribe_response(body, settings)
        return
    with pytest.raises(error) as caught:
        parsers.parse_subscribe_response(body, settings)
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.message == body["message"]


QUERY_CASES: list[tuple[str, type[CarrierError], str]] = [
    ("bad_sign", CarrierAuthError, "503"),
    ("key_expired", CarrierAuthError, "601"),
    ("bad_company", CarrierRejected, "400"),
    ("phone_required", CarrierRejected, "408"),
    ("server_busy", CarrierUnavailable, "502"),
]


@pytest.mark.parametrize(("case", "error", "code"), QUERY_CASES)
def test_query_failures_map_to_typed_errors(
    settings: Kuaidi100Settings, case: str, error: type[CarrierError], code: str
) -> None:
    body = fixture("query_responses.json")[case]
    with pytest.raises(error) as caught:
        parsers.parse_query_response(body, QUERY, settings)
    assert caught.value.code == code
    assert caught.value.message == body["message"]


def test_query_without_result_is_an_empty_timeline(settings: Kuaidi100Settings) -> None:
    body = fixture("query_responses.json")["no_result"]
    parsed = parsers.parse_query_response(body, QUERY, settings)
    assert (parsed.events, parsed.unmapped_codes) == ([], [])


def test_query_reply_parses_into_poll_events_newest_first(settings: Kuaidi100Settings) -> None:
    # Given a recorded query reply (data[] newest first)
    body = fixture("query_response_ok.json")
    expected = fixture("query_response_ok.expected.json")
    # When parsed
    parsed = parsers.parse_query_response(body, QUERY, settings)
    events, unmapped = parsed.events, parsed.unmapped_codes
    # Then every trace is a canonical poll event with +08:00 times and stable hashes
    assert [event.model_dump(mode="json") for event in events] == expected["events"]
    assert unmapped == expected["unmapped_codes"]
    assert all(event.occurred_at.utcoffset().total_seconds() == 8 * 3600 for event in events)  # type: ignore[union-attr]
