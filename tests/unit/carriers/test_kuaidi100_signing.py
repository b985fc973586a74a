"""Kuaidi100 signatures against the REFERENCE golden vectors (§3.1 query sign, §3.3 push sign)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from parcelhub.carriers.kuaidi100 import signing
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kuaidi100"
CUSTOMER = "TESTCUSTOMER0000000000000000000"


@pytest.fixture
def settings() -> Kuaidi100Settings:
    return Kuaidi100Settings(key="TESTKEY", customer=CUSTOMER, salt="TESTSALT")


def test_query_sign_matches_the_reference_golden_vector() -> None:
    # Given the §3.1 param, key and customer
    param = '{"com":"yuantong","num":"YT1234567890123","resultv2":"4"}'
    # When we sign
    sign = signing.query_sign(param, "TESTKEY", CUSTOMER)
    # Then it is the upper-case hex of the vector
    assert sign == "05905849A441432F6C0B1C1514A8047C"
    assert sign == sign.upper()


def test_push_sign_matches_the_reference_golden_vector() -> None:
    # Given the §3.3 example push JSON byte-copied from REFERENCE, and salt TESTSALT
    wire = (FIXTURES / "pushes" / "push_polling.wire.txt").read_text(encoding="ascii")
    decoded = dict(urllib.parse.parse_qsl(wire))["param"]
    assert decoded.startswith('{"status":"polling","billstatus":""')
    # When we sign it Then it is the documented value (compared case-insensitively)
    assert signing.push_sign(decoded, "TESTSALT").lower() == "F7E37AD6340A88D7C1D1D742863C8E8F".lower()
    assert signing.push_sign_matches(decoded, "f7e37ad6340a88d7c1d1d742863c8e8f", "TESTSALT")
    assert not signing.push_sign_matches(decoded, "F7E37AD6340A88D7C1D1D742863C8E8F", "OTHERSALT")


def test_strict_case_compare_is_a_setting(settings: Kuaidi100Settings) -> None:
    # Given a provider configured to compare the push sign case-sensitively (upper-case hex)
    param = '{"a":1}'
    lower = signing.push_sign(param, "TESTSALT").lower()
    # Then a lower-case sign is refused, the upper-case one accepted
    assert not signing.push_sign_matches(param, lower, "TESTSALT", case_insensitive=False)
    assert signing.push_sign_matches(param, lower.upper(), "TESTSALT", case_insensitive=False)
