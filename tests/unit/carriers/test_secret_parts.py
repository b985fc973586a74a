"""A provider's configuration as two secrets (issue 16 item 2): its API secret and its push secret, each
validated on its own, and a call that needs the part a function was not given refused, not guessed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from parcelhub.carriers.base import CarrierAuthError, HttpRequest, PushRejected
from parcelhub.carriers.registry import build_plugin, split_provider_config
from parcelhub.config import SecretPart
from parcelhub.domain.models import Provider

pytestmark = pytest.mark.unit

WHOLE: dict[Provider, dict[str, Any]] = {
    Provider.SF: {
        "partner_id": "PARTNER",
        "checkword": "checkword-0123",
        "monthly_card": "7551234567",
        "push_token": "push-token-0123456789",
        "base_url": "https://sfapi-sbox.sf-express.com",
    },
    Provider.KDNIAO: {"ebusiness_id": "1234567", "app_key": "app-key-0123", "base_url": "https://api.kdniao.com"},
    Provider.KUAIDI100: {"key": "key-0123", "customer": "CUSTOMER01", "salt": "salt-0123456789abcdef"},
}
SECRET_FIELDS = {"partner_id", "checkword", "monthly_card", "push_token", "key", "customer", "salt"}


@pytest.mark.parametrize("provider", list(WHOLE), ids=lambda p: p.value)
def test_the_push_secret_holds_no_api_credential_except_where_the_provider_signs_pushes_with_it(
    provider: Provider,
) -> None:
    parts = split_provider_config(provider, WHOLE[provider])
    api, push = parts[SecretPart.API], parts[SecretPart.PUSH]
    assert set(push) & SECRET_FIELDS == {"sf": {"push_token"}, "kdniao": set(), "kuaidi100": {"salt"}}[provider.value]
    assert (
        set(api) & SECRET_FIELDS
        == {
            "sf": {"partner_id", "checkword", "monthly_card"},
            "kdniao": set(),
            "kuaidi100": {"key", "customer"},
        }[provider.value]
    )
    # Kdniao's DataSign is keyed with the AppKey: both secrets hold it (the push secret as verification material)
    if provider is Provider.KDNIAO:
        assert api["app_key"] == push["app_key"]
    # options go into both; together the parts are the whole
    assert {**api, **push} == WHOLE[provider]


def test_each_part_builds_a_plugin_that_refuses_what_the_other_part_is_for() -> None:
    parts = split_provider_config(Provider.SF, WHOLE[Provider.SF])
    pushes = build_plugin(Provider.SF, parts[SecretPart.PUSH])
    calls = build_plugin(Provider.SF, parts[SecretPart.API])
    # the push part cannot sign an API request
    with pytest.raises(CarrierAuthError) as refused:
        pushes.query_tracking(*_sf_query())
    assert refused.value.code == "NOT_CONFIGURED"
    # the API part cannot accept a push (no token to compare with)
    request = HttpRequest(body=b"{}", path_params={"token": "push-token-0123456789"})
    with pytest.raises(PushRejected):
        calls.verify_push(request)
    pushes.verify_push(request)  # the push part can


@pytest.mark.parametrize(
    "config",
    [
        {"partner_id": "PARTNER", "push_token": "push-token-0123456789"},  # half the API credentials
        {"base_url": "https://sfapi.sf-express.com"},  # neither part
    ],
)
def test_a_half_written_or_empty_secret_fails_loudly(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build_plugin(Provider.SF, config)


def _sf_query() -> tuple[Any, str]:
    from parcelhub.domain.models import Carrier

    return Carrier.SF, "SF1400000000001"
