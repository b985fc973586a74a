"""Kdniao settings validation and the registry line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parcelhub.carriers.base import ProviderPlugin
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.registry import build_plugin
from parcelhub.domain.models import Carrier

pytestmark = pytest.mark.unit

CONFIG = {"ebusiness_id": "1234567", "app_key": "00000000-1111-2222-3333-444444444444"}


def test_from_config_defaults() -> None:
    plugin = KdniaoPlugin.from_config(CONFIG)
    s = plugin.settings
    assert s.base_url == "https://api.kdniao.com"
    assert s.url(s.eorder_path) == "https://api.kdniao.com/api/EOrderService"
    assert s.url(s.subscribe_path) == "https://api.kdniao.com/api/dist"
    assert s.url(s.query_path) == "https://api.kdniao.com/Ebusiness/EbusinessOrderHandle.aspx"
    assert (s.create_request_type, s.cancel_request_type, s.subscribe_request_type, s.query_request_type) == (
        "1007",
        "1147",
        "8008",
        "8001",
    )
    assert s.timeout == (3.05, 10.0)
    assert plugin.supported_carriers() == frozenset(Carrier)
    assert "0000" not in repr(s)  # the AppKey never shows in logs


def test_registry_builds_the_plugin() -> None:
    plugin = build_plugin("kdniao", CONFIG | {"base_url": "http://127.0.0.1:9/", "read_timeout": 0.5})
    assert isinstance(plugin, KdniaoPlugin)
    assert isinstance(plugin, ProviderPlugin)
    assert plugin.settings.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "bad",
    [
        {"ebusiness_id": "1234567"},  # no AppKey
        CONFIG | {"base_url": "ftp://api.kdniao.com"},
        CONFIG | {"read_timeout": 0},
        CONFIG | {"eorder_path": "api/EOrderService"},
        CONFIG | {"pay_type": 7},
        CONFIG | {"unknown_setting": 1},
        CONFIG | {"accounts": {"NOPE": {"customer_name": "x"}}},
    ],
)
def test_invalid_config_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        KdniaoSettings.model_validate(bad)
