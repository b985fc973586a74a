"""The composition root: the one place that builds adapters from the function's settings and hands them
to the use cases' constructors.

Everything is built on first use (never at import) and cached for the process, so a warm Lambda reuses
its clients, data-key cache and plugins; :func:`reset` forgets it all (tests, and the local stack between
configurations). Handlers and the HTTP API ask this module for a use case; use cases never import it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from parcelhub.config import SecretPart, environment

if TYPE_CHECKING:
    from parcelhub.adapters.dynamodb import DynamoShipmentStore
    from parcelhub.adapters.dynamodb.outbox import DynamoOutbox
    from parcelhub.adapters.dynamodb.scorecards import DynamoScorecards
    from parcelhub.adapters.eventbridge import EventBridgePublisher
    from parcelhub.adapters.kms import PiiCipher
    from parcelhub.adapters.s3 import S3LabelStore, S3RawArchive, S3ReceiptStore
    from parcelhub.adapters.s3_history import S3FactHistory
    from parcelhub.adapters.sqs import SqsMessageSink
    from parcelhub.adapters.stepfunctions import StepFunctionsStarter
    from parcelhub.app.capacity import CapacityPlanner
    from parcelhub.app.facts import FactRecorder
    from parcelhub.app.ingest import Ingestor
    from parcelhub.app.outbox import OutboxRelay
    from parcelhub.app.poller import Poller
    from parcelhub.app.quotes import Quoter
    from parcelhub.app.receipts import ReceiptCopier
    from parcelhub.app.recovery import RecoverySweeper
    from parcelhub.app.returns import ReturnService
    from parcelhub.app.scorecards import ScorecardService
    from parcelhub.app.shipments import ShipmentService
    from parcelhub.app.stalls import StallSweeper
    from parcelhub.app.tracking_page import TrackingPageService
    from parcelhub.app.trackings import TrackingRegistry
    from parcelhub.app.waybill import WaybillService
    from parcelhub.carriers.base import ProviderPlugin
    from parcelhub.config import HubConfig, OmsSecrets
    from parcelhub.domain.models import Carrier, Provider
    from parcelhub.security.links import TrackingLinks


# ----------------------------------------------------------------------------------------- settings


def _setting(name: str) -> str:
    """A resource name the template gives the function (``RuntimeError`` naming the variable if absent)."""
    env = environment()
    env.require(name)
    return str(getattr(env, name))


def hub_config() -> HubConfig:
    from parcelhub.adapters.parameters import hub_config as load

    return load()


def oms_secrets() -> OmsSecrets:
    """The OMS API key hashes and the tracking-link secret (the API, and the waybill tasks' links)."""
    from parcelhub.adapters.parameters import oms_secrets as load

    return load()


#: the parts of a provider's configuration each kind of call reads (see ``docs/security.md``)
API = frozenset({SecretPart.API})  # waybills, cancels, queries
PUSH = frozenset({SecretPart.PUSH})  # verifying, acknowledging and parsing pushes
SUBSCRIBE = frozenset({SecretPart.API, SecretPart.PUSH})  # a subscription registers the push material


# ----------------------------------------------------------------------------------------- adapters


@functools.cache
def store() -> DynamoShipmentStore:
    """The single-table adapter; handed out as each store port a use case asks for."""
    from parcelhub.adapters.dynamodb import DynamoShipmentStore

    return DynamoShipmentStore(_setting("table_name"), shards=environment().stall_shards)


@functools.cache
def publisher() -> EventBridgePublisher:
    from parcelhub.adapters.eventbridge import EventBridgePublisher

    return EventBridgePublisher(_setting("event_bus_name"))


@functools.cache
def outbox() -> DynamoOutbox:
    """The table's outbox: what a workflow step announces is committed there; the stream relay publishes it."""
    from parcelhub.adapters.dynamodb.outbox import DynamoOutbox

    return DynamoOutbox(_setting("table_name"))


@functools.cache
def relay_dead_letters() -> SqsMessageSink:
    """Where the stream relay sets aside a record it cannot turn into events (with the reason)."""
    from parcelhub.adapters.sqs import SqsMessageSink

    return SqsMessageSink(_setting("event_relay_dlq_url"))


@functools.cache
def cipher() -> PiiCipher:
    from parcelhub.adapters.kms import PiiCipher

    return PiiCipher(_setting("pii_key_id"))


@functools.cache
def waybill_requests() -> SqsMessageSink:
    from parcelhub.adapters.sqs import SqsMessageSink

    return SqsMessageSink(_setting("waybill_queue_url"))


@functools.cache
def tracking_updates(profile: str = "default") -> SqsMessageSink:
    """The tracking-updates queue (``profile="ack"`` on the webhook's enqueue-before-ACK path)."""
    from parcelhub.adapters.sqs import SqsMessageSink

    return SqsMessageSink(_setting("tracking_queue_url"), profile=profile)


@functools.cache
def workflow() -> StepFunctionsStarter:
    from parcelhub.adapters.stepfunctions import StepFunctionsStarter

    return StepFunctionsStarter(_setting("waybill_state_machine_arn"))


@functools.cache
def labels() -> S3LabelStore:
    from parcelhub.adapters.s3 import S3LabelStore

    return S3LabelStore(_setting("data_bucket"), kms_key_id=_setting("pii_key_id"))


@functools.cache
def raw_archive() -> S3RawArchive:
    from parcelhub.adapters.s3 import S3RawArchive

    return S3RawArchive(_setting("data_bucket"), kms_key_id=_setting("pii_key_id"))


def plugin(provider: Provider | str, parts: frozenset[SecretPart] = API) -> ProviderPlugin:
    """The provider's plugin, built from the parts of its configuration the call needs (each its own
    secret: ``API`` by default, ``PUSH`` for pushes, ``SUBSCRIBE`` for subscriptions); rebuilt when they
    change. ``LookupError`` when a part is not given to this function or has no value."""
    from parcelhub.adapters.parameters import provider_config
    from parcelhub.domain.models import Provider

    name = Provider(provider)
    config = provider_config(name, parts)
    if config is None:
        wanted = "+".join(sorted(parts))
        raise LookupError(f"provider {name.value} is not configured for this function ({wanted} secret)")
    return _plugin(name, json.dumps(config, sort_keys=True))


def push_plugin(provider: Provider | str) -> ProviderPlugin:
    """The plugin that verifies, acknowledges and parses the provider's pushes (its push secret only)."""
    return plugin(provider, PUSH)


def subscribing_plugin(provider: Provider | str) -> ProviderPlugin:
    """The plugin a tracking subscription is made with: the API credentials and the push material it
    registers (SF's URL token is in the callback URL, Kuaidi100's salt is sent with the subscription)."""
    return plugin(provider, SUBSCRIBE)


@functools.lru_cache(maxsize=16)
def _plugin(provider: Provider, config_json: str) -> ProviderPlugin:
    from parcelhub.carriers.registry import build_plugin

    return build_plugin(provider, json.loads(config_json))


def callback_url(provider: Provider) -> str:
    """Where a provider pushes tracking: ``WEBHOOK_BASE_URL`` + ``/v1/webhooks/<provider>`` (SF: the
    secret token path ``/v1/webhooks/sf/<push_token>`` from SF's push secret, SF does not sign its pushes)."""
    from parcelhub.adapters.parameters import provider_config
    from parcelhub.carriers.base import CarrierAuthError
    from parcelhub.domain.models import Provider

    env = environment()
    env.require("webhook_base_url")
    base = env.webhook_base_url.rstrip("/")
    if provider is Provider.SF:
        token = str((provider_config(Provider.SF, PUSH) or {}).get("push_token", ""))
        if not token:
            raise CarrierAuthError(Provider.SF.value, "no push_token configured", "NOT_CONFIGURED")
        return f"{base}/v1/webhooks/sf/{token}"
    return f"{base}/v1/webhooks/{provider.value}"


def tracking_links() -> TrackingLinks | None:
    """The tracking-page link signer (``None`` while the secret has no ``tracking_link_secret``); links
    live under ``tracking_page.link_base_url`` (the brand's domain) or else ``PUBLIC_BASE_URL``."""
    secret = oms_secrets().tracking_link_secret
    if secret is None:
        return None
    base = hub_config().tracking_page.link_base_url or environment().public_base_url
    return _tracking_links(secret.get_secret_value(), base)


@functools.lru_cache(maxsize=4)
def _tracking_links(secret: str, base_url: str) -> TrackingLinks:
    from parcelhub.security.links import TrackingLinks

    return TrackingLinks(secret, base_url)


def tracking_url(shipment_id: str) -> str | None:
    links = tracking_links()
    return links.url(shipment_id) if links is not None and links.base_url else None


def configured_issuers() -> Mapping[Provider, frozenset[Carrier]] | None:
    """Providers whose API secret this function is given and has a value, that issue waybills, and their
    carriers (one cached secret read per provider; plugins make no call until used)."""
    from parcelhub.adapters.parameters import provider_config
    from parcelhub.carriers.base import Capability
    from parcelhub.domain.models import Provider
    from parcelhub.observability import logger

    issuers: dict[Provider, frozenset[Carrier]] = {}
    for provider in Provider:
        if not environment().provider_secret_arn(provider, SecretPart.API) or provider_config(provider, API) is None:
            continue
        try:
            built = plugin(provider)
        except (LookupError, ValueError):
            logger().exception("provider configuration unusable", extra={"provider": str(provider)})
            continue
        if Capability.ISSUE_WAYBILLS in built.capabilities:
            issuers[Provider(provider)] = built.supported_carriers()
    return issuers


# ---------------------------------------------------------------------------------------- use cases


@functools.cache
def shipment_service() -> ShipmentService:
    from parcelhub.app.shipments import ShipmentPorts, ShipmentService

    shipments = store()
    return ShipmentService(
        ShipmentPorts(
            shipments=shipments,
            timeline=shipments,
            tracking=shipments,
            stalls=shipments,
            polls=shipments,
            cipher=cipher(),
            waybill_requests=waybill_requests(),
            workflow=workflow(),
            labels=labels(),
            publisher=publisher(),
            plugin=plugin,
            config=hub_config,
            links=tracking_links,
            orders=shipments,
            recovery=shipments,
        )
    )


@functools.cache
def tracking_page_service() -> TrackingPageService:
    from parcelhub.app.tracking_page import TrackingPagePorts, TrackingPageService

    shipments = store()
    return TrackingPageService(
        TrackingPagePorts(pages=shipments, counters=shipments, links=tracking_links, config=hub_config)
    )


@functools.cache
def tracking_registry() -> TrackingRegistry:
    """Tracked numbers: registered by the API, resolved by the workflow, corrected by the ingest."""
    from parcelhub.app.trackings import TrackingPorts, TrackingRegistry
    from parcelhub.domain.detection import detect, normalise_number

    shipments = store()
    return TrackingRegistry(
        TrackingPorts(
            shipments=shipments,
            tracking=shipments,
            waybill_requests=waybill_requests,
            config=hub_config,
            plugin=plugin,
            links=tracking_links,
            detect=detect,
            normalise=normalise_number,
        )
    )


def waybill_service() -> WaybillService:
    from parcelhub.app.waybill import WaybillDeps, WaybillService

    environment().require("table_name", "pii_key_id", "data_bucket")
    return WaybillService(
        WaybillDeps(
            store=store(),
            publisher=outbox(),  # WaybillCreated/WaybillFailed/CarrierFailover: committed, then relayed
            decrypt_party=lambda envelope, shipment_id: cipher().decrypt_party(envelope, shipment_id),
            plugin=plugin,
            subscriber=subscribing_plugin,
            labels=labels(),
            config=hub_config,
            callback_url=callback_url,
            issuers=configured_issuers,
            apply_parked=lambda carrier, number: ingestor().apply_parked(carrier, number).replayed,
            tracking_url=tracking_url,
            lanes=store(),
            capacity=store(),
            trackings=tracking_registry,
            returns=return_service,
        )
    )


def recovery_sweeper() -> RecoverySweeper:
    from parcelhub.app.recovery import RecoverySweeper

    return RecoverySweeper(store=store(), waybills=waybill_service(), workflow=workflow(), config=hub_config)


def ingestor() -> Ingestor:
    from parcelhub.app.ingest import Ingestor

    env = environment()
    env.require("table_name", "data_bucket", "pii_key_id")
    return Ingestor(
        store=store(),
        archive=raw_archive(),
        plugins=push_plugin,
        config=hub_config(),
        lanes=store(),
        trackings=tracking_registry,
    )


def poller() -> Poller:
    from parcelhub.app.poller import Poller

    env = environment()
    env.require("table_name", "tracking_queue_url")
    return Poller(store=store(), plugins=plugin, sink=tracking_updates(), config=hub_config(), shards=env.stall_shards)


def stall_sweeper() -> StallSweeper:
    from parcelhub.app.stalls import StallSweeper

    return StallSweeper(stalls=store(), rules=hub_config().stall)


def outbox_relay() -> OutboxRelay:
    """The stream consumer: committed changes -> events -> EventBridge."""
    from parcelhub.adapters.dynamodb.stream import decode_record
    from parcelhub.app.outbox import OutboxRelay

    environment().require("event_bus_name", "event_relay_dlq_url")
    return OutboxRelay(publisher=publisher(), decode=decode_record, quarantine=relay_dead_letters(), config=hub_config)


@functools.cache
def scorecards() -> DynamoScorecards:
    """Delivery facts and their scorecard cells on the single table (``Scorecards`` port)."""
    from parcelhub.adapters.dynamodb.scorecards import DynamoScorecards

    return DynamoScorecards(_setting("table_name"))


@functools.cache
def fact_history() -> S3FactHistory:
    """The delivery-fact history: JSON lines per day in the history bucket (Athena / DuckDB)."""
    from parcelhub.adapters.s3_history import S3FactHistory

    return S3FactHistory(_setting("history_bucket"))


@functools.cache
def quoter() -> Quoter:
    """The smart strategy's ranking for ``POST /v1/quotes`` (lane cells, circuits, tariffs; stores nothing)."""
    from parcelhub.app.circuit import CircuitBreaker
    from parcelhub.app.quotes import Quoter

    def circuit_open(provider: Provider) -> bool:
        return CircuitBreaker(store(), hub_config().circuit).blocked(provider.value)

    return Quoter(store(), hub_config, circuit_open=circuit_open, issuers=configured_issuers, capacity=store())


@functools.cache
def capacity_planner() -> CapacityPlanner:
    """Balances, forecasts and capacity alerts (the scheduled planner and ``GET /v1/analytics/capacity``)."""
    from parcelhub.app.capacity import CapacityPlanner

    return CapacityPlanner(store(), hub_config, publisher=outbox(), provider_balance=provider_balance)


def provider_balance(carrier: Carrier, providers: Sequence[Provider]) -> int | None:
    """The carrier's e-waybill balance from the first of ``providers`` (those issuing its waybills) whose API
    has a balance query - known from its plugin class, so only that provider's API secret is read."""
    from parcelhub.adapters.parameters import provider_config
    from parcelhub.carriers.base import Capability
    from parcelhub.carriers.registry import plugin_class

    for provider in providers:
        if Capability.WAYBILL_BALANCE not in plugin_class(provider).capabilities:
            continue
        if not environment().provider_secret_arn(provider, SecretPart.API) or provider_config(provider, API) is None:
            continue
        answering = plugin(provider)
        if carrier in answering.supported_carriers():
            return answering.waybill_balance(carrier)
    return None


def receipt_copier() -> ReceiptCopier:
    from parcelhub.adapters.dynamodb.stream import decode_record
    from parcelhub.app.receipts import ReceiptCopier
    from parcelhub.observability import add_metric

    return ReceiptCopier(
        decode=decode_record,
        shipments=store(),
        receipts=receipt_store(),
        plugin=plugin,
        config=hub_config,
        metric=add_metric,
    )


@functools.cache
def receipt_store() -> S3ReceiptStore:
    from parcelhub.adapters.s3 import S3ReceiptStore

    return S3ReceiptStore(_setting("data_bucket"), kms_key_id=_setting("pii_key_id"))


@functools.cache
def scorecard_service() -> ScorecardService:
    from parcelhub.app.scorecards import ScorecardService

    return ScorecardService(scorecards())


def fact_recorder() -> FactRecorder:
    """The table's second stream consumer: ended shipments -> delivery facts -> S3 and the scorecards."""
    from parcelhub.adapters.dynamodb.stream import decode_record
    from parcelhub.app.facts import FactRecorder

    return FactRecorder(
        decode=decode_record, timeline=store(), scorecards=scorecards(), archive=fact_history(), config=hub_config
    )


@functools.cache
def return_service() -> ReturnService:
    """Returns with door pickup: asked and cancelled by the API, booked by the waybill workflow."""
    from parcelhub.app.returns import ReturnPorts, ReturnService

    shipments = store()
    return ReturnService(
        ReturnPorts(
            shipments=shipments,
            returns=shipments,
            recovery=shipments,
            cipher=cipher(),
            plugin=plugin,
            config=hub_config,
            waybill_requests=waybill_requests,
        )
    )


# -------------------------------------------------------------------------------------------- reset


def reset() -> None:
    """Forget every cached adapter and configuration (tests, and the local stack between runs)."""
    from parcelhub.adapters import aws, parameters

    for factory in (
        store,
        publisher,
        outbox,
        relay_dead_letters,
        cipher,
        waybill_requests,
        tracking_updates,
        workflow,
        labels,
        raw_archive,
        _plugin,
        _tracking_links,
        shipment_service,
        tracking_page_service,
        scorecards,
        scorecard_service,
        fact_history,
        quoter,
        capacity_planner,
        tracking_registry,
        receipt_store,
        return_service,
        aws.client,
    ):
        factory.cache_clear()
    parameters.reset_caches()
