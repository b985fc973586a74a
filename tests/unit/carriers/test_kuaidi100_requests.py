"""Kuaidi100 request builders: the exact forms we POST (REFERENCE.md §3.1, §3.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parcelhub.carriers.base import CarrierRejected, TrackingQuery, TrackingSubscription
from parcelhub.carriers.kuaidi100 import builders
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.kuaidi100.signing import query_sign
from parcelhub.domain.models import Carrier

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kuaidi100" / "requests"
CUSTOMER = "TESTCUSTOMER0000000000000000000"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def settings() -> Kuaidi100Settings:
    return Kuaidi100Settings(key="TESTKEY", customer=CUSTOMER, salt="TESTSALT")


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
    form = builders.build_subscribe_request(subscription, settings)
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
    assert builders.build_subscribe_request(subscription, settings) == fixture("subscribe_request_sf.form.json")


def test_subscribe_for_sf_without_phone_is_refused_before_sending(settings: Kuaidi100Settings) -> None:
    subscription = TrackingSubscription(
        carrier=Carrier.SF, tracking_number="SF1402345678901", callback_url="https://x.example/h"
    )
    with pytest.raises(CarrierRejected) as caught:
        builders.build_subscribe_request(subscription, settings)
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
    param = json.loads(builders.build_subscribe_request(subscription, settings)["param"])
    assert param["parameters"]["callbackurl"] == "https://hooks.example.com/v1/webhooks/kuaidi100"
    assert param["company"] == "zhongtong"


def test_query_request_is_exactly_the_golden_vector(settings: Kuaidi100Settings) -> None:
    # When we build the real-time query of §3.1
    form = builders.build_query_request(TrackingQuery(Carrier.YTO, "YT1234567890123"), settings)
    # Then customer, sign and the exact param string are the fixture's
    assert form == fixture("query_request.form.json")


def test_query_request_for_sf_has_phone_and_signs_the_sent_string(settings: Kuaidi100Settings) -> None:
    form = builders.build_query_request(TrackingQuery(Carrier.SF, "SF1402345678901", "5678"), settings)
    assert form == fixture("query_request_sf.form.json")
    assert form["sign"] == query_sign(form["param"], "TESTKEY", CUSTOMER)
