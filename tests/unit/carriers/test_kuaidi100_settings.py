"""Kuaidi100 settings: validation of the configuration and the documented defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings

pytestmark = pytest.mark.unit

CUSTOMER = "TESTCUSTOMER0000000000000000000"


@pytest.fixture
def settings() -> Kuaidi100Settings:
    return Kuaidi100Settings(key="TESTKEY", customer=CUSTOMER, salt="TESTSALT")


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
