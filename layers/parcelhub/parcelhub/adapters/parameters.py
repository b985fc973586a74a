"""Loading the hub configuration (SSM Parameter Store) and the secrets (Secrets Manager) through Powertools
parameters, cached for ``CACHE_SECONDS`` / ``SECRETS_CACHE_SECONDS`` and validated by the models of
:mod:`parcelhub.config`.

Each secret is read on its own, on first use: a Kdniao push reads Kdniao's push secret and nothing else.
A secret the template created but nobody has put a value into yet (no ``AWSCURRENT`` version) is a part
that is not configured: ``None``, remembered for the same cache period so it is not asked on every call."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from parcelhub.config import HubConfig, OmsSecrets, SecretPart, environment
from parcelhub.domain.models import Provider

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

CACHE_SECONDS = 300
#: the secrets are re-read at least this often: an OMS key removed from ``api_keys`` (or a rotated provider
#: credential) takes effect within this bound on every warm function (about 1,440 reads a day per secret
#: and warm environment: USD 0.0072 at USD 0.05 per 10,000 API calls)
SECRETS_CACHE_SECONDS = 60

#: secret ARN -> when it was last found without a value (monotonic seconds)
_unset: dict[str, float] = {}


@functools.cache
def _ssm() -> SSMProvider:
    """Powertools' SSM provider on the process's one boto3 session (``adapters.aws.client``): its default
    provider would build a session of its own, and a second session loads botocore's endpoint and service
    data again (about 100 ms of a cold start)."""
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    from parcelhub.adapters.aws import client

    return SSMProvider(boto3_client=client("ssm"))


@functools.cache
def _secrets() -> SecretsProvider:
    """Powertools' Secrets Manager provider, on the one boto3 session too."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from parcelhub.adapters.aws import client

    return SecretsProvider(boto3_client=client("secretsmanager"))


def hub_config() -> HubConfig:
    """The hub configuration (fetched through Powertools, cached for ``CACHE_SECONDS``)."""
    env = environment()
    if not env.config_parameter:
        return HubConfig()
    raw = _ssm().get(env.config_parameter, transform="json", max_age=CACHE_SECONDS)
    return _parse_hub_config(json.dumps(raw or {}, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _parse_hub_config(document: str) -> HubConfig:
    return HubConfig.model_validate_json(document)


def secret_document(arn: str) -> Mapping[str, Any] | None:
    """One secret's JSON (cached for ``SECRETS_CACHE_SECONDS``); ``None`` while it has no value. Any other
    failure (access denied, throttling) raises."""
    unset_at = _unset.get(arn)
    if unset_at is not None and time.monotonic() - unset_at < SECRETS_CACHE_SECONDS:
        return None
    from aws_lambda_powertools.utilities import parameters

    from parcelhub.adapters.aws import error_code

    try:
        raw = _secrets().get(arn, transform="json", max_age=SECRETS_CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as error:
        # Powertools wraps the ClientError without ``from``: it is the implicit context
        if error_code(error.__cause__ or error.__context__) == "ResourceNotFoundException":
            _unset[arn] = time.monotonic()
            return None
        raise
    _unset.pop(arn, None)
    if not isinstance(raw, dict):
        raise ValueError(f"secret {arn} is not a JSON object")
    return raw


def oms_secrets() -> OmsSecrets:
    """The OMS API key hashes and the tracking-link secret (``OMS_SECRET_ARN``); empty while unset."""
    env = environment()
    env.require("oms_secret_arn")
    document = secret_document(env.oms_secret_arn)
    return _parse_oms_secrets(json.dumps(document or {}, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _parse_oms_secrets(document: str) -> OmsSecrets:
    return OmsSecrets.model_validate_json(document)


def provider_config(provider: Provider, parts: frozenset[SecretPart]) -> dict[str, Any] | None:
    """A provider's configuration from the given parts of it (merged; the push part's options win), or
    ``None`` when one of them is not given to this function or has no value: the provider is then not
    configured here."""
    env = environment()
    merged: dict[str, Any] = {}
    for part in sorted(parts):  # api before push
        arn = env.provider_secret_arn(provider, part)
        document = secret_document(arn) if arn else None
        if document is None:
            return None
        merged.update(document)
    return merged


def reset_caches() -> None:
    """Forget everything loaded (tests and the local stack call this between configurations)."""
    environment.cache_clear()
    _parse_hub_config.cache_clear()
    _parse_oms_secrets.cache_clear()
    _unset.clear()
    _ssm.cache_clear()  # the providers hold the values they fetched, and their clients
    _secrets.cache_clear()
