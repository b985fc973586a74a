"""Configuration, loaded once per function and cached.

Three sources, each validated by a pydantic model:

* :class:`Environment` - the names the template gives a function (table, queues, bus, key...), read
  from ``os.environ`` on first use, never at import;
* :class:`HubConfig` - non-secret behaviour (warehouse, carrier-selection policy, stall rules, circuit
  breaker, poller), a JSON document in SSM Parameter Store (``CONFIG_PARAMETER``); absent keys take
  the defaults below, so ``{}`` is a working configuration;
* the secrets, each its own Secrets Manager secret so that a function's role can read only what it uses:
  :class:`OmsSecrets` (the OMS API key hashes and the tracking-link secret, ``OMS_SECRET_ARN``) and, per
  provider, its API credentials (``<PROVIDER>_API_SECRET_ARN``) and its push-verification material
  (``<PROVIDER>_PUSH_SECRET_ARN``), validated by the provider's own settings model. A function is given the
  ARNs of the secrets it may read, and nothing else.

The models live here; loading the two documents from AWS is the parameters adapter's job
(:mod:`parcelhub.adapters.parameters`, through Powertools parameters, cached for ``max_age`` seconds).
"""

from __future__ import annotations

import functools
import os
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network

from pydantic import BaseModel, ConfigDict, Field, Json, SecretStr

from parcelhub.domain.branding import TrackingPageSettings
from parcelhub.domain.estimate import EstimateSettings
from parcelhub.domain.models import Carrier, Party, Provider
from parcelhub.domain.policy import CapacityPolicy, SelectionPolicy, StallRules
from parcelhub.domain.status import Status, SubStatus
from parcelhub.domain.tariff import Tariffs


class SecretPart(StrEnum):
    """The separately readable parts of a provider's configuration (one Secrets Manager secret each)."""

    API = "api"  # the credentials of its API (waybills, subscriptions, queries)
    PUSH = "push"  # the material that verifies its pushes (signature key, salt, URL token)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------- environment


class Environment(_Config):
    """Resource names from the template (``Globals`` + per-function ``Environment``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    table_name: str = Field("", alias="TABLE_NAME")
    config_parameter: str = Field("", alias="CONFIG_PARAMETER")
    oms_secret_arn: str = Field("", alias="OMS_SECRET_ARN")
    sf_api_secret_arn: str = Field("", alias="SF_API_SECRET_ARN")
    sf_push_secret_arn: str = Field("", alias="SF_PUSH_SECRET_ARN")
    kdniao_api_secret_arn: str = Field("", alias="KDNIAO_API_SECRET_ARN")
    kdniao_push_secret_arn: str = Field("", alias="KDNIAO_PUSH_SECRET_ARN")
    kuaidi100_api_secret_arn: str = Field("", alias="KUAIDI100_API_SECRET_ARN")
    kuaidi100_push_secret_arn: str = Field("", alias="KUAIDI100_PUSH_SECRET_ARN")
    stall_shards: int = Field(8, alias="STALL_SHARDS", ge=1, le=64)
    waybill_queue_url: str = Field("", alias="WAYBILL_QUEUE_URL")
    tracking_queue_url: str = Field("", alias="TRACKING_QUEUE_URL")
    waybill_state_machine_arn: str = Field("", alias="WAYBILL_STATE_MACHINE_ARN")
    event_bus_name: str = Field("", alias="EVENT_BUS_NAME")
    pii_key_id: str = Field("", alias="PII_KEY_ID")
    data_bucket: str = Field("", alias="DATA_BUCKET")
    webhook_base_url: str = Field("", alias="WEBHOOK_BASE_URL")
    #: the public URL of the HTTP API (tracking links: ``<PUBLIC_BASE_URL>/t/<token>``)
    public_base_url: str = Field("", alias="PUBLIC_BASE_URL")
    event_relay_dlq_url: str = Field("", alias="EVENT_RELAY_DLQ_URL")
    #: provider -> the networks its pushes may come from (``WebhookSourceAllowlists``; absent: any address)
    webhook_source_allowlists: Json[dict[Provider, list[IPv4Network | IPv6Network]]] = Field(
        default_factory=dict, alias="WEBHOOK_SOURCE_ALLOWLISTS"
    )
    #: the delivery-fact history (JSON lines per day, ``adapters.s3_history``)
    history_bucket: str = Field("", alias="HISTORY_BUCKET")

    def provider_secret_arn(self, provider: Provider, part: SecretPart) -> str:
        """The ARN of one part of a provider's configuration (``""`` when this function is not given it)."""
        return str(getattr(self, f"{provider.value}_{part.value}_secret_arn"))

    def require(self, *names: str) -> None:
        missing = [name for name in names if not getattr(self, name)]
        if missing:
            aliases = [str(type(self).model_fields[name].alias) for name in missing]
            raise RuntimeError(f"missing environment variables: {', '.join(aliases)}")


@functools.cache
def environment() -> Environment:
    return Environment.model_validate(dict(os.environ))


# ------------------------------------------------------------------------------------- hub config


class CircuitBreakerConfig(_Config):
    failure_threshold: int = Field(5, ge=1)
    window_seconds: float = Field(60, gt=0)
    cool_down_seconds: float = Field(30, gt=0)


class RecoveryConfig(_Config):
    """The recovery sweep (``functions/waybill_recovery``): nothing stays PENDING or mid-workflow."""

    #: a shipment whose workflow has not settled it this long after it was accepted (or re-driven) is recovered
    pending_limit_seconds: float = Field(900, gt=0)
    #: re-driven executions before the shipment is failed (WAYBILL_FAILED, with its ops alert)
    max_redrives: int = Field(2, ge=0)
    #: cancel attempts (across sweeps) for an order not kept before an ops alert and ``cancel_failed``
    max_cancel_attempts: int = Field(5, ge=1)
    #: seconds before a sweep tries again to cancel an order whose provider could not be reached
    cancel_retry_seconds: float = Field(60, gt=0)
    #: tries of one cancel inside a task or a sweep (with a short backoff) before it is left to the next sweep
    cancel_tries: int = Field(3, ge=1)
    #: a tracking number claimed by a shipment not updated for this long may be re-issued to another (days)
    tracking_reuse_days: float = Field(30, gt=0)


class PollerConfig(_Config):
    #: poll a shipment when it has had no update for this long
    quiet_hours: float = 6
    batch_size: int = Field(50, ge=1, le=500)
    #: provider -> max queries per second
    rate_limits: dict[Provider, float] = Field(
        default_factory=lambda: {Provider.KDNIAO: 10.0, Provider.SF: 10.0, Provider.KUAIDI100: 5.0}
    )
    #: which provider answers tracking queries for a carrier when its waybill provider cannot
    tracking_provider: dict[Carrier, Provider] = Field(default_factory=dict)
    time_scale: float = 1.0


class ScanTimeConfig(_Config):
    """Scan-time sanity (``parcelhub.domain.scan_time``): how far a carrier's clock may be off."""

    #: a scan stamped more than this after its push was received is flagged ``future``
    future_tolerance_seconds: float = Field(900, ge=0)
    #: a scan stamped more than this before the shipment was created is flagged ``before_shipment``
    before_shipment_tolerance_seconds: float = Field(900, ge=0)


class CodeOverride(_Config):
    """A provider status code mapped by configuration (a mapping fix without a deployment)."""

    status: Status
    sub_status: SubStatus = SubStatus.NONE


class EstimateConfig(_Config):
    """Delivery-date estimates (``parcelhub.domain.estimate``; docs/estimates.md)."""

    #: a lane level needs this many deliveries to be used (else province, then carrier-national, then defaults)
    min_deliveries: int = Field(20, ge=1)
    #: orders created before this local (UTC+8) hour leave with the same day's carrier run
    pickup_cutoff_hour: int = Field(16, ge=0, le=24)
    #: when the warehouse's carrier run collects (local hours after midnight)
    pickup_hour: float = Field(17.5, ge=0, lt=24)
    #: the window runs from the date of the low quantile to the date of the high one
    low_quantile: float = Field(0.08, gt=0, lt=0.5)
    high_quantile: float = Field(0.92, gt=0.5, lt=1)
    #: carrier -> (low, most likely, high) delivery-clock hours from pickup to delivery without history
    carrier_defaults: dict[Carrier, tuple[float, float, float]] = Field(
        default_factory=lambda: {
            Carrier.SF: (18.0, 34.0, 60.0),
            Carrier.JD: (18.0, 36.0, 64.0),
            Carrier.EMS: (30.0, 72.0, 130.0),
        }
    )

    def settings(self) -> EstimateSettings:
        return EstimateSettings(
            min_deliveries=self.min_deliveries,
            pickup_cutoff_hour=self.pickup_cutoff_hour,
            pickup_hour=self.pickup_hour,
            low_quantile=self.low_quantile,
            high_quantile=self.high_quantile,
            carrier_defaults={carrier.value: hours for carrier, hours in self.carrier_defaults.items()},
        )


class ReturnsConfig(_Config):
    """Returns with door pickup (issue #19): which provider books a carrier's pickups, how far ahead."""

    #: a pickup window must start within this many days (the providers book a few days ahead)
    max_window_days: int = Field(default=7, ge=1, le=30)
    #: carrier -> the provider that books its door pickups (SF directly; the rest through Kdniao)
    pickup_providers: dict[Carrier, Provider] = Field(default_factory=lambda: {Carrier.SF: Provider.SF})
    default_pickup_provider: Provider = Provider.KDNIAO
    #: the original shipment's statuses a return may be booked from
    returnable: frozenset[Status] = frozenset({Status.DELIVERED})

    def provider_for(self, carrier: Carrier) -> Provider:
        return self.pickup_providers.get(carrier, self.default_pickup_provider)


class TrackingsConfig(_Config):
    """Tracking numbers parcelhub did not ship (``POST /v1/trackings``; issue 19)."""

    #: which provider subscribes a carrier's tracked numbers (else ``default_provider``)
    provider_for: dict[Carrier, Provider] = Field(default_factory=dict)
    default_provider: Provider = Provider.KUAIDI100
    #: whose number recognition confirms an ambiguous number (Kuaidi100 autonumber, Kdniao 2002), in order;
    #: a provider without the capability or not configured for the function is passed over
    recognisers: list[Provider] = Field(default_factory=lambda: [Provider.KUAIDI100, Provider.KDNIAO])
    #: subscribe an unconfirmed number with the provider's own company check (Kuaidi100 ``autoCom``), so a
    #: wrong guess is corrected by the first push
    auto_detect_unconfirmed: bool = True

    def provider(self, carrier: Carrier) -> Provider:
        return self.provider_for.get(carrier, self.default_provider)


class HubConfig(_Config):
    warehouse: Party = Party(
        name="示例品牌仓库",
        phone="4006789888",
        province="浙江省",
        city="杭州市",
        district="余杭区",
        address="仓前街道文一西路1号",
        postcode="311100",
        company="示例品牌",
    )
    selection: SelectionPolicy = Field(default_factory=SelectionPolicy)
    stall: StallRules = Field(default_factory=StallRules)
    circuit: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    poller: PollerConfig = Field(default_factory=PollerConfig)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)
    #: how long a push for an unknown tracking number stays parked before it expires (with a metric)
    parked_push_ttl_hours: float = 72
    #: label links expire after this many seconds
    label_link_seconds: int = 900
    #: the customer tracking page: branding, returns link, cache, lookup rate limits
    tracking_page: TrackingPageSettings = Field(default_factory=TrackingPageSettings)
    scan_time: ScanTimeConfig = Field(default_factory=ScanTimeConfig)
    #: provider -> raw status code -> the status it means; wins over the provider's code table. After a
    #: fix, replay the archive (``python -m tools.recover replay``) to correct the parcels already seen.
    code_overrides: dict[Provider, dict[str, CodeOverride]] = Field(default_factory=dict)
    #: delivery-date estimates: lane fallback minimum, pickup cutoff, window quantiles, defaults
    estimates: EstimateConfig = Field(default_factory=EstimateConfig)
    #: carrier -> service -> tariff (first/additional weight per zone, volumetric divisor, surcharges): the
    #: cost of a delivery fact when the provider bills none (defaults: illustrative list-price-shaped tables)
    tariffs: Tariffs = Field(default_factory=Tariffs)
    #: capacity planning: daily intake caps and e-waybill balances per carrier, forecasts, promotions
    capacity: CapacityPolicy = Field(default_factory=CapacityPolicy)
    #: returns with door pickup: the provider per carrier, the pickup window's horizon
    returns: ReturnsConfig = Field(default_factory=ReturnsConfig)
    #: tracked numbers: who subscribes them, who confirms an ambiguous carrier
    trackings: TrackingsConfig = Field(default_factory=TrackingsConfig)
    #: whose receipt API (the signed slip or photo) a delivered parcel's receipt is copied from (Kuaidi100
    #: 运单附件查询); None = no receipts. Its links, like label links, expire after ``label_link_seconds``
    receipt_provider: Provider | None = Provider.KUAIDI100
    #: the receipt provider is asked about the parcels it tracks, and about these carriers' parcels whoever
    #: tracks them (the carriers whose e-waybill account it holds: ``partner_id``/``partner_key``)
    receipt_carriers: frozenset[Carrier] = frozenset()


# ------------------------------------------------------------------------------------- secrets


class ApiKey(_Config):
    name: str
    #: sha256 hex of the key; the key itself is never stored
    sha256: str


class OmsSecrets(_Config):
    """The OMS secret: what the API authenticates callers with and signs tracking links with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: list[ApiKey] = Field(default_factory=list)
    #: signs tracking-page links and the lookup digests (HMAC-SHA256); the page is off while it is unset
    tracking_link_secret: SecretStr | None = Field(default=None, min_length=32)
