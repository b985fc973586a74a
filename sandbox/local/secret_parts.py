"""The hub's secrets as template.yaml splits them: the OMS secret and, per provider, its API secret and its
push secret (names ``parcelhub/<stage>/oms``, ``parcelhub/<stage>/<provider>/api``, ``.../push``).

The local stack, the test fixtures and the bench describe the secrets as one document (``providers``:
each provider's whole entry, ``api_keys``, ``tracking_link_secret``); :func:`secret_values` splits it the
way the layer reads it (``parcelhub.carriers.registry.split_provider_config``), so what is written where
is decided in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the secrets the template declares, by the last part of their name
OMS = "oms"
PROVIDERS = ("sf", "kdniao", "kuaidi100")
PARTS = ("api", "push")
SUFFIXES = (OMS, *(f"{provider}/{part}" for provider in PROVIDERS for part in PARTS))


def suffix_of(name: str) -> str:
    """``parcelhub/dev/sf/push`` -> ``sf/push``."""
    return name.split("/", 2)[-1]


def env_name(suffix: str) -> str:
    """The variable a function is given the secret's ARN in (``sf/push`` -> ``SF_PUSH_SECRET_ARN``)."""
    return suffix.replace("/", "_").upper() + "_SECRET_ARN"


def secret_values(
    providers: Mapping[str, Mapping[str, Any]],
    api_keys: list[dict[str, str]],
    tracking_link_secret: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Secret name suffix -> its JSON document (a provider not listed gets no value: not configured)."""
    from parcelhub.carriers.registry import split_provider_config

    oms: dict[str, Any] = {"api_keys": api_keys}
    if tracking_link_secret:
        oms["tracking_link_secret"] = tracking_link_secret
    values: dict[str, dict[str, Any]] = {OMS: oms}
    for provider, config in providers.items():
        for part, document in split_provider_config(provider, config).items():
            values[f"{provider}/{part.value}"] = document
    return values


def create_secrets(client: Any, prefix: str, values: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Every secret of the template under ``prefix`` (those without a document get no value, as deployed),
    and the environment a function given all of them has (``OMS_SECRET_ARN``, ``SF_API_SECRET_ARN``...)."""
    import json

    env: dict[str, str] = {}
    for suffix in SUFFIXES:
        kwargs: dict[str, Any] = {"Name": f"{prefix}/{suffix}"}
        if suffix in values:
            kwargs["SecretString"] = json.dumps(values[suffix], ensure_ascii=False)
        env[env_name(suffix)] = client.create_secret(**kwargs)["ARN"]
    return env
