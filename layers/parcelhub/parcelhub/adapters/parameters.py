"""Loading the hub configuration (SSM Parameter Store) and the secrets (Secrets Manager) through Powertools
parameters, cached for ``CACHE_SECONDS`` and validated by the models of :mod:`parcelhub.config`."""

from __future__ import annotations

import functools
import json

from parcelhub.config import HubConfig, Secrets, environment

CACHE_SECONDS = 300
#: the secrets are re-read at least this often: an OMS key removed from ``api_keys`` (or a rotated provider
#: credential) takes effect within this bound on every warm function (about 1,440 reads a day per warm
#: environment: USD 0.0072 at USD 0.05 per 10,000 API calls)
SECRETS_CACHE_SECONDS = 60


def hub_config() -> HubConfig:
    """The hub configuration (fetched through Powertools, cached for ``CACHE_SECONDS``)."""
    env = environment()
    if not env.config_parameter:
        return HubConfig()
    from aws_lambda_powertools.utilities import parameters

    raw = parameters.get_parameter(env.config_parameter, transform="json", max_age=CACHE_SECONDS)
    return _parse_hub_config(json.dumps(raw or {}, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _parse_hub_config(document: str) -> HubConfig:
    return HubConfig.model_validate_json(document)


def secrets() -> Secrets:
    """Provider credentials and OMS API keys (Secrets Manager, cached for ``SECRETS_CACHE_SECONDS``)."""
    env = environment()
    env.require("provider_secret_arn")
    from aws_lambda_powertools.utilities import parameters

    raw = parameters.get_secret(env.provider_secret_arn, transform="json", max_age=SECRETS_CACHE_SECONDS)
    return _parse_secrets(json.dumps(raw or {}, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _parse_secrets(document: str) -> Secrets:
    return Secrets.model_validate_json(document)


def reset_caches() -> None:
    """Forget everything loaded (tests and the local stack call this between configurations)."""
    environment.cache_clear()
    _parse_hub_config.cache_clear()
    _parse_secrets.cache_clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
