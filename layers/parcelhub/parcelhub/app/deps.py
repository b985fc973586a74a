"""Cached factories for every adapter a use case needs, built on first use from the function's
settings (never at import). Tests reset them with :func:`reset`."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from parcelhub.config import environment, secrets

if TYPE_CHECKING:
    from parcelhub.adapters.dynamodb import DynamoShipmentStore
    from parcelhub.adapters.eventbridge import EventBridgePublisher
    from parcelhub.carriers.base import ProviderPlugin
    from parcelhub.domain.models import Provider
    from parcelhub.security.pii import PiiCipher


@functools.cache
def store() -> DynamoShipmentStore:
    from parcelhub.adapters.dynamodb import DynamoShipmentStore

    env = environment()
    env.require("table_name")
    return DynamoShipmentStore(env.table_name, shards=env.stall_shards)


@functools.cache
def publisher() -> EventBridgePublisher:
    from parcelhub.adapters.eventbridge import EventBridgePublisher

    env = environment()
    env.require("event_bus_name")
    return EventBridgePublisher(env.event_bus_name)


@functools.cache
def cipher() -> PiiCipher:
    from parcelhub.security.pii import pii_cipher

    env = environment()
    env.require("pii_key_id")
    return pii_cipher(env.pii_key_id)


@functools.cache
def aws_client(service: str) -> Any:
    """A process-wide boto3 client with standard retries and tight timeouts."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,  # type: ignore[call-overload]
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5),
    )


def plugin(provider: Provider | str) -> ProviderPlugin:
    """The provider's plugin, configured from the provider secret (rebuilt when the secret changes)."""
    from parcelhub.domain.models import Provider

    name = Provider(provider)
    config = secrets().providers.get(name)
    if config is None:
        raise LookupError(f"no credentials configured for provider {name.value}")
    return _plugin(name, json.dumps(config, sort_keys=True))


@functools.lru_cache(maxsize=16)
def _plugin(provider: Provider, config_json: str) -> ProviderPlugin:
    from parcelhub.carriers.registry import build_plugin

    return build_plugin(provider, json.loads(config_json))


def reset() -> None:
    """Forget every cached adapter and configuration (tests, and the local stack between runs)."""
    from parcelhub.adapters import dynamodb
    from parcelhub.adapters import eventbridge
    from parcelhub.config import reset_caches
    from parcelhub.security import pii

    for factory in (store, publisher, cipher, aws_client, _plugin):
        factory.cache_clear()
    for module_factory in (dynamodb.dynamodb_client, eventbridge.events_client, pii.kms_client, pii.pii_cipher):
        module_factory.cache_clear()
    reset_caches()
