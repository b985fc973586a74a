"""SF settings: validation of the configuration and the defaults."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import ServiceLevel

pytestmark = pytest.mark.unit


def settings(**overrides: Any) -> SfSettings:
    values: dict[str, Any] = {
        "partner_id": "TESTPARTNER",
        "checkword": "TESTCHECKWORD0000000000000000000",
        "monthly_card": "7551234567",
        "push_token": "tok-0123456789abcdef0123456789",
    }
    return SfSettings.model_validate(values | overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"partner_id": ""},
        {"monthly_card": "not-a-card"},
        {"push_token": ""},
        {"base_url": "ftp://sfapi.sf-express.com"},
        {"path": "std/service"},
        {"express_type_ids": {"standard": 2}},
        {"push_format": "soap"},
        {"read_timeout": 0},
        {"unknown_setting": 1},
    ],
)
def test_settings_reject_invalid_configuration(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**overrides)


def test_a_short_push_token_is_accepted_with_a_warning_saying_why() -> None:
    # Given an account whose console already pushes to a URL with a short token
    weak = settings(push_token="short")
    # Then the settings load, and say why the value is weak
    (warning,) = weak.warnings
    assert "push_token is 5 characters" in warning
    assert "SF does not sign route pushes" in warning
    assert "short" not in warning.replace("a short one", "")  # the token itself is never in the warning
    assert settings().warnings == ()


def test_settings_defaults_and_url() -> None:
    config = settings(base_url="https://sfapi-sbox.sf-express.com/")
    assert config.url == "https://sfapi-sbox.sf-express.com/std/service"
    assert config.timeout == (3.05, 10.0)
    assert config.express_type_ids[ServiceLevel.STANDARD] == 2
    assert "TESTCHECKWORD" not in repr(config)  # secrets stay out of logs
