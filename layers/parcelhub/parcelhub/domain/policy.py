"""Policies as data: which carriers to try for an order, and when a parcel counts as stalled.

Pure pydantic models (validated, frozen). The hub configuration (``parcelhub.config.HubConfig``) carries
them; the pure functions of ``domain.selection`` and ``domain.stall`` apply them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parcelhub.domain.models import Carrier, CustomerTier, Provider


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CarrierCandidate(_Policy):
    provider: Provider
    carrier: Carrier


class SelectionRule(_Policy):
    """When every given condition holds, try ``candidates`` in order. The first matching rule wins."""

    name: str
    customer_tier: CustomerTier | None = None
    min_declared_value: Decimal | None = None
    destination_provinces: list[str] | None = None  # None = any
    service: str | None = None
    candidates: list[CarrierCandidate] = Field(min_length=1)


class PromiseRule(_Policy):
    """A delivery promise: when every given condition holds, the parcel is due by the end of the local day
    ``days`` after the order's local day (``days=1``: next day). The first matching rule applies."""

    name: str
    customer_tier: CustomerTier | None = None
    #: True: only destinations in the origin's own province; False: only other provinces; None: any
    within_province: bool | None = None
    destination_provinces: list[str] | None = None  # None = any
    days: int = Field(ge=0, le=30)


class LaneThresholds(_Policy):
    """A carrier is not chosen on a lane where it is failing, once the lane has enough history."""

    #: deliveries the lane (city lane, else province lane) needs before its rates count
    min_deliveries: int = Field(30, ge=1)
    #: on time against the promise, of the promised deliveries
    min_on_time_rate: float = Field(0.8, ge=0, le=1)
    #: parcels with an exception, of all parcels on the lane
    max_exception_rate: float = Field(0.1, ge=0, le=1)


class SmartPolicy(_Policy):
    """The ``smart`` strategy (``domain.smart``): cheapest candidate meeting the promise."""

    promises: list[PromiseRule] = Field(
        default_factory=lambda: [
            PromiseRule(name="vip-in-province", customer_tier=CustomerTier.VIP, within_province=True, days=1),
            PromiseRule(name="vip", customer_tier=CustomerTier.VIP, days=2),
            PromiseRule(name="in-province", within_province=True, days=3),
        ]
    )
    #: the promise when no rule matches
    default_days: int = Field(5, ge=0, le=30)
    lane: LaneThresholds = Field(default_factory=LaneThresholds)


class SelectionPolicy(_Policy):
    #: ``rules``: the first matching rule's order; ``smart``: among the candidates the rules allow, the
    #: cheapest whose estimated delivery meets the promise (``smart``)
    strategy: Literal["rules", "smart"] = "rules"
    smart: SmartPolicy = Field(default_factory=SmartPolicy)
    rules: list[SelectionRule] = Field(
        default_factory=lambda: [
            SelectionRule(
                name="vip",
                customer_tier=CustomerTier.VIP,
                candidates=[
                    CarrierCandidate(provider=Provider.SF, carrier=Carrier.SF),
                    CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO),
                ],
            ),
            SelectionRule(
                name="high-value",
                min_declared_value=Decimal("500"),
                candidates=[
                    CarrierCandidate(provider=Provider.SF, carrier=Carrier.SF),
                    CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO),
                ],
            ),
            SelectionRule(
                name="default",
                candidates=[
                    CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO),
                    CarrierCandidate(provider=Provider.SF, carrier=Carrier.SF),
                ],
            ),
        ]
    )
    #: which provider issues waybills for a carrier the OMS pins
    pinned_carrier_providers: dict[Carrier, list[Provider]] = Field(
        default_factory=lambda: {
            Carrier.SF: [Provider.SF, Provider.KDNIAO],
        }
    )
    #: carrier -> provinces it does not serve (coverage); empty = everywhere
    exclusions: dict[Carrier, list[str]] = Field(default_factory=dict)
    #: per-carrier cost of a first-weight parcel (CNY), used to order candidates within a rule's ties
    cost_table: dict[Carrier, Decimal] = Field(
        default_factory=lambda: {
            Carrier.ZTO: Decimal("4.5"),
            Carrier.YTO: Decimal("4.3"),
            Carrier.STO: Decimal("4.2"),
            Carrier.YD: Decimal("4.0"),
            Carrier.JTSD: Decimal("3.8"),
            Carrier.EMS: Decimal("9.0"),
            Carrier.JD: Decimal("10.0"),
            Carrier.SF: Decimal("13.0"),
        }
    )


class StallRules(_Policy):
    """Hours before a parcel counts as stalled, per situation (ARCHITECTURE §3, issue 7)."""

    no_pickup_hours: float = 24
    in_transit_hours: float = 48
    in_transit_hours_by_province: dict[str, float] = Field(
        default_factory=lambda: {"新疆维吾尔自治区": 96.0, "西藏自治区": 120.0, "青海省": 72.0}
    )
    out_for_delivery_hours: float = 24
    at_pickup_point_hours: float = 72
    #: scale every threshold (the local stack and e2e tests use seconds: 1/3600)
    time_scale: float = 1.0


class Promotion(_Policy):
    """A sales event (双11, 618): the forecast of every listed carrier (None = all) is multiplied on these
    local days (``start`` to ``end`` inclusive); overlapping promotions: the largest multiplier."""

    name: str
    start: date
    end: date
    multiplier: float = Field(gt=0, le=100)
    carriers: list[Carrier] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Promotion:
        if self.end < self.start:
            raise ValueError(f"promotion {self.name!r}: end {self.end} is before start {self.start}")
        return self


class CarrierLimits(_Policy):
    """What one carrier can take: a daily intake cap and the e-waybill balance (numbers left to print).

    ``balance`` is the configured balance as of ``balance_as_of`` (for a provider whose API has no balance
    query; where it has one, the capacity planner's query replaces it); parcelhub counts the waybills
    issued since."""

    #: parcels a local day the carrier's outlet takes; once reached, orders go to the next candidate
    daily_cap: int | None = Field(None, ge=1)
    balance: int | None = Field(None, ge=0)
    balance_as_of: datetime | None = None

    @model_validator(mode="after")
    def _balance_dated(self) -> CarrierLimits:
        if (self.balance is None) != (self.balance_as_of is None):
            raise ValueError("balance and balance_as_of go together")
        if self.balance_as_of is not None and self.balance_as_of.tzinfo is None:
            raise ValueError("balance_as_of must carry a timezone")
        return self


class CapacityPolicy(_Policy):
    """Capacity planning (``domain.capacity``): caps and balances as constraints on the choice, a daily
    forecast per carrier, and the ops alerts before a carrier runs out."""

    #: count each carrier's intake per local day (one transaction per waybill); caps, balances, forecasts
    #: and alerts need it
    enabled: bool = False
    carriers: dict[Carrier, CarrierLimits] = Field(default_factory=dict)
    #: the forecast's baseline: mean daily intake over this many past days (promotion days scaled back)
    history_days: int = Field(14, ge=1, le=60)
    #: days forecast ahead (today included)
    horizon_days: int = Field(7, ge=1, le=31)
    #: alert when a balance covers fewer days of forecast than this
    min_cover_days: float = Field(3.0, gt=0, le=31)
    promotions: list[Promotion] = Field(default_factory=list)
    #: ask the provider for the balance where its API offers a query (Kdniao 1127), else the configuration
    query_provider_balance: bool = True
