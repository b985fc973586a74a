"""Kuaidi100 mapper: golden vectors, exact requests, reply classification (REFERENCE.md §3)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    TrackingSubscription,
)
from parcelhub.carriers.kuaidi100 import mapper
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.domain.models import Carrier

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kuaidi100"
CUSTOMER = "TESTCUSTOMER0000000000000000000"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def settings() -> Kuaidi100Settings:
    return Kuaidi100Settings(key="TESTKEY", customer=CUSTOMER, salt="TESTSALT")


# ------------------------------------------------------------------------------------ golden vectors


def test_query_sign_matches_the_reference_golden_vector() -> None:
    # Given the §3.1 param, key and customer
    param = '{"com":"yuantong","num":"YT1234567890123","resultv2":"4"}'
    # When we sign
    sign = mapper.query_sign(param, "TESTKEY", CUSTOMER)
    # Then it is the upper-case hex of the vector
    assert sign == "05905849A441432F6C0B1C1514A8047C"
    assert sign == sign.upper()


def test_push_sign_matches_the_reference_golden_vector() -> None:
    # Given the §3.3 example push JSON byte-copied from REFERENCE, and salt TESTSALT
    wire = (FIXTURES / "push_polling.wire.txt").read_text(encoding="ascii")
    decoded = dict(urllib.parse.parse_qsl(wire))["param"]
    assert decoded.startswith('{"status":"polling","billstatus":""')
    # When we sign it Then it is the documented value (compared case-insensitively)
    assert mapper.push_sign(decoded, "TESTSALT").lower() == "F7E37AD6340A88D7C1D1D742863C8E8F".lower()
    assert mapper.push_sign_matches(decoded, "f7e37ad6340a88d7c1d1d742863c8e8f", "TESTSALT")
    assert not mapper.push_sign_matches(decoded, "F7E37AD6340A88D7C1D1D742863C8E8F", "OTHERSALT")


def test_strict_case_compare_is_a_setting(settings: Kuaidi100Settings) -> None:
    # Given a provider configured to compare the push sign case-sensitively (upper-case hex)
    param = '{"a":1}'
    lower = mapper.push_sign(param, "TESTSALT").lower()
    # Then a lower-case sign is refused, the upper-case one accepted
    assert not mapper.push_sign_matches(param, lower, "TESTSALT", case_insensitive=False)
    assert mapper.push_sign_matches(param, lower.upper(), "TESTSALT", case_insensitive=False)


# ------------------------------------------------------------------------------------ request builders


def test_subscribe_request_is_exactly_the_reference_example(settings: Kuaidi100Settings) -> None:
    # Given the subscription of REFERENCE §3.2
    subscription = TrackingSubscription(
        carrier=Carrier.YTO,
        tracking_number="YT1234567890123",
        callback_url="https://hooks.example.com/kuaidi100?tenant=42",
        origin="广东省深圳市南山区",
        destination="北京市朝阳区",
    )
    # When we build the form
    form = mapper.build_subscribe_form(settings, subscription)
    # Then the fields and the JSON string are exactly the fixture's (schema=json, key inside param)
    assert form == fixture("subscribe_request.form.json")
    param = json.loads(form["param"])
    assert param["key"] == "TESTKEY"
    assert param["parameters"]["salt"] == "TESTSALT"
    assert param["parameters"]["resultv2"] == "4"


def test_subscribe_for_sf_carries_the_phone(settings: Kuaidi100Settings) -> None:
    # Given an SF parcel with the receiver's phone tail
    subscription = TrackingSubscription(
        carrier=Carrier.SF,
        tracking_number="SF1402345678901",
        callback_url="https://hooks.example.com/kuaidi100?tenant=42",
        phone_last4="5678",
    )
    # Then the request is exactly the fixture
    assert mapper.build_subscribe_form(settings, subscription) == fixture("subscribe_request_sf.form.json")


def test_subscribe_for_sf_without_phone_is_refused_before_sending(settings: Kuaidi100Settings) -> None:
    subscription = TrackingSubscription(
        carrier=Carrier.SF, tracking_number="SF1402345678901", callback_url="https://x.example/h"
    )
    with pytest.raises(CarrierRejected) as caught:
        mapper.build_subscribe_form(settings, subscription)
    assert caught.value.code == "PHONE_REQUIRED"


def test_subscribe_falls_back_to_the_configured_callback_url() -> None:
    # Given settings with a default callback URL and a subscription without one
    settings = Kuaidi100Settings(
        key="TESTKEY",
        customer=CUSTOMER,
        salt="TESTSALT",
        callback_url="https://hooks.example.com/v1/webhooks/kuaidi100",
    )
    subscription = TrackingSubscription(carrier=Carrier.ZTO, tracking_number="75123456789012", callback_url="")
    # Then the configured URL is used
    param = json.loads(mapper.build_subscribe_form(settings, subscription)["param"])
    assert param["parameters"]["callbackurl"] == "https://hooks.example.com/v1/webhooks/kuaidi100"
    assert param["company"] == "zhongtong"


def test_query_request_is_exactly_the_golden_vector(settings: Kuaidi100Settings) -> None:
    # When we build the real-time query of §3.1
    form = mapper.build_query_form(settings, Carrier.YTO, "YT1234567890123")
    # Then customer, sign and the exact param string are the fixture's
    assert form == fixture("query_request.form.json")


def test_query_request_for_sf_has_phone_and_signs_the_sent_string(settings: Kuaidi100Settings) -> None:
    form = mapper.build_query_form(settings, Carrier.SF, "SF1402345678901", "5678")
    assert form == fixture("query_request_sf.form.json")
    assert form["sign"] == mapper.query_sign(form["param"], "TESTKEY", CUSTOMER)


# --------------------------------------------------------------------------------- reply classification

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
    case: str, error: type[CarrierError] | None, code: str | None
) -> None:
    # Given a recorded subscribe reply
    body = fixture("subscribe_responses.json")[case]
    # When it is checked Then success returns and failures raise with the provider's code and message
    if error is None:
        mapper.check_subscribe_response(body)
        return
    with pytest.raises(error) as caught:
        mapper.check_subscribe_response(body)
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
        mapper.parse_query_response(Carrier.YTO, "YT1234567890123", body)
    assert caught.value.code == code
    assert caught.value.message == body["message"]


def test_query_without_result_is_an_empty_timeline(settings: Kuaidi100Settings) -> None:
    body = fixture("query_responses.json")["no_result"]
    assert mapper.parse_query_response(Carrier.YTO, "YT1234567890123", body) == ([], [])


def test_query_reply_parses_into_poll_events_newest_first(settings: Kuaidi100Settings) -> None:
    # Given a recorded query reply (data[] newest first)
    body = fixture("query_response_ok.json")
    expected = fixture("query_response_ok.expected.json")
    # When parsed
    events, unmapped = mapper.parse_query_response(Carrier.YTO, "YT1234567890123", body)
    # Then every trace is a canonical poll event with +08:00 times and stable hashes
    assert [event.model_dump(mode="json") for event in events] == expected["events"]
    assert unmapped == expected["unmapped_codes"]
    assert all(event.occurred_at.utcoffset().total_seconds() == 8 * 3600 for event in events)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------- settings


def test_settings_reject_a_short_salt_and_bad_urls() -> None:
    with pytest.raises(ValidationError):
        Kuaidi100Settings(key="K", customer=CUSTOMER, salt="short")
    with pytest.raises(ValidationError):
        Kuaidi100Settings(key="K", customer=CUSTOMER, salt="TESTSALT", base_url="poll.kuaidi100.com")
    with pytest.raises(ValidationError):
        Kuaidi100Settings(key="K", customer=CUSTOMER, salt="TESTSALT", unknown_field=1)  # type: ignore[call-arg]


def test_settings_defaults_are_the_documented_endpoints(settings: Kuaidi100Settings) -> None:
    assert settings.subscribe_url == "https://poll.kuaidi100.com/poll"
    assert settings.query_url == "https://poll.kuaidi100.com/poll/query.do"
    assert "TESTKEY" not in repr(settings)  # secrets stay out of logs
