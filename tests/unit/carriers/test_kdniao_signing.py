"""Kdniao DataSign (REFERENCE §1.2) against the golden vectors, and the on-wire envelope (§1.1, §1.5)."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcelhub.carriers.base import HttpRequest, PushRejected, TrackingQuery
from parcelhub.carriers.kdniao.builders import build_query_request, envelope
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import data_sign, verify_data_sign
from parcelhub.carriers.wire import encode_form
from parcelhub.domain.models import Carrier

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kdniao"
APP_KEY = "00000000-1111-2222-3333-444444444444"
GOLDEN_DATA = '{"OrderCode":"","ShipperCode":"YTO","LogisticCode":"YT1234567890123","CustomerName":""}'
GOLDEN_SIGN = "ODZjZGQyNDEyYjg2ZGZmY2M3ZDMyYzM5ZGViNTgyMjE="
GOLDEN_WIRE = "ODZjZGQyNDEyYjg2ZGZmY2M3ZDMyYzM5ZGViNTgyMjE%3D"
RAW_DIGEST_VARIANT = "hs3SQSuG3/zH0yw53rWCIQ=="
REFERENCE_1002_BODY = (
    "RequestData=%7B%22OrderCode%22%3A%22%22%2C%22ShipperCode%22%3A%22YTO%22%2C%22LogisticCode%22%3A%22"
    "YT1234567890123%22%2C%22CustomerName%22%3A%22%22%7D&EBusinessID=1234567&RequestType=1002"
    "&DataSign=ODZjZGQyNDEyYjg2ZGZmY2M3ZDMyYzM5ZGViNTgyMjE%3D&DataType=2"
)


def settings() -> KdniaoSettings:
    return KdniaoSettings(ebusiness_id="1234567", app_key=APP_KEY)


def test_golden_vector_data_sign() -> None:
    # Given the REFERENCE golden RequestData and AppKey / When signed
    sign = data_sign(GOLDEN_DATA, APP_KEY)
    # Then it is Base64 of the lower-case hex MD5, and URL-encodes once to the on-wire value
    assert sign == GOLDEN_SIGN
    assert base64.b64decode(sign).decode("ascii") == "86cdd2412b86dffcc7d32c39deb58221"
    assert urllib.parse.quote_plus(sign) == GOLDEN_WIRE


def test_query_builder_reproduces_golden_request_data() -> None:
    # Given a YTO query without phone digits / When built / Then it is the golden RequestData byte for byte
    assert build_query_request(TrackingQuery(Carrier.YTO, "YT1234567890123"), settings())["RequestData"] == GOLDEN_DATA


def test_full_1002_request_body_matches_reference_example() -> None:
    # Given the golden query in an envelope with RequestType 1002
    form = envelope(GOLDEN_DATA, "1002", settings())
    # Then the form carries the raw values and the wire body is REFERENCE §1.5's example, each value encoded once
    assert form["DataSign"] == GOLDEN_SIGN
    assert encode_form(form) == REFERENCE_1002_BODY
    assert dict(urllib.parse.parse_qsl(REFERENCE_1002_BODY)) == form


def test_raw_digest_variant_is_not_a_valid_data_sign() -> None:
    # Given the SF/Cainiao-style raw-digest Base64 of the same input / Then it is refused
    assert not verify_data_sign(GOLDEN_DATA, RAW_DIGEST_VARIANT, APP_KEY)
    assert verify_data_sign(GOLDEN_DATA, GOLDEN_SIGN, APP_KEY)


def test_verify_push_rejects_the_raw_digest_variant() -> None:
    # Given the REFERENCE push signed with Base64(raw MD5) instead of Base64(hex MD5)
    fixture = json.loads((FIXTURES / "pushes" / "102_reference_raw_digest.json").read_text("utf-8"))
    assert len(fixture["DataSign"]) == 24
    assert fixture["DataSign"].endswith("==")
    body = urllib.parse.urlencode(fixture).encode()
    # When verified / Then rejected
    with pytest.raises(PushRejected):
        KdniaoPlugin(settings()).verify_push(HttpRequest(body=body))


def test_verify_tolerates_a_data_sign_sent_unencoded_or_encoded_twice() -> None:
    # Given a DataSign whose '+' arrived as a space, or still percent-encoded (transport slips, [U])
    data = '{"k":"v?"}'
    sign = data_sign(data, APP_KEY)
    # Then both still verify, while any other value does not
    assert verify_data_sign(data, urllib.parse.quote_plus(sign), APP_KEY)
    assert verify_data_sign(data, sign.replace("+", " "), APP_KEY)
    assert not verify_data_sign(data, sign[:-2] + "A=", APP_KEY)


@given(request_data=st.text(max_size=200), key=st.text(min_size=1, max_size=40))
def test_data_sign_is_always_base64_of_32_lowercase_hex_chars(request_data: str, key: str) -> None:
    sign = data_sign(request_data, key)
    decoded = base64.b64decode(sign).decode("ascii")
    assert len(sign) == 44
    assert sign.endswith("=")
    assert len(decoded) == 32
    assert set(decoded) <= set("0123456789abcdef")
    assert verify_data_sign(request_data, sign, key)
