"""Kuaidi100 settings: validation of the configuration and the documented defaults."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from parcelhub import observability
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings

pytestmark = pytest.mark.unit

CUSTOMER = "TESTCUSTOMER0000000000000000000"


@pytest.fixture
def settings() -> Kuaidi100Settings:
    return Kuaidi100Settings(key="TESTKEY", customer=CUSTOMER, salt="TESTSALT")


def test_settings_reject_an_empty_salt_and_bad_urls() -> None:
    with pytest.raises(ValidationError):
        Kuaidi100Settings(key="K", customer=CUSTOMER, salt="")
    with pytest.raises(ValidationError):
        Kuaidi100Settings(key="K", customer=CUSTOMER, salt="TESTSALT", base_url="poll.kuaidi100.com")
    with pytest.raises(ValidationError):
        Kuaidi100Settings(key="K", customer=CUSTOMER, salt="TESTSALT", unknown_field=1)  # type: ignore[call-arg]


def test_settings_defaults_are_the_documented_endpoints(settings: Kuaidi100Settings) -> None:
    assert settings.subscribe_url == "https://poll.kuaidi100.com/poll"
    assert settings.query_url == "https://poll.kuaidi100.com/poll/query.do"
    assert "TESTKEY" not in repr(settings)  # secrets stay out of logs


def test_a_short_salt_is_accepted_with_a_warning_saying_why() -> None:
    # Given a real account's salt: Kuaidi100's own subscription example uses "*"
    weak = Kuaidi100Settings(key="K", customer=CUSTOMER, salt="*")
    # Then the settings load, and the warning says why a short salt is weak (without the salt itself)
    (warning,) = weak.warnings
    assert warning.startswith("salt is 1 characters: the push sign is MD5(param + salt)")
    assert "16+ random characters" in warning
    assert Kuaidi100Settings(key="K", customer=CUSTOMER, salt="0123456789abcdef").warnings == ()


def test_loading_weak_settings_logs_each_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a logger that records, and the provider secret entry of an account with a short salt and a
    # plain-http endpoint
    logged: list[dict[str, Any]] = []

    class Recorder:
        def warning(self, message: str, extra: dict[str, Any]) -> None:
            logged.append({"message": message} | extra)

    monkeypatch.setattr(observability, "logger", Recorder)
    Kuaidi100Settings.from_config(
        {"key": "K", "customer": CUSTOMER, "salt": "*", "base_url": "http://poll.kuaidi100.com"}
    )
    # Then one warning per weakness, naming the settings class and saying why
    assert [entry["settings"] for entry in logged] == ["Kuaidi100Settings", "Kuaidi100Settings"]
    assert {entry["message"] for entry in logged} == {"weak provider setting"}
    assert "plain http" in logged[0]["warning"]
    assert "salt is 1 characters" in logged[1]["warning"]
