"""Carrier tariffs as configuration, and the price of a shipment from its parcels.

A tariff is per carrier and service: a first-weight price and an additional-weight price per destination
*zone* (provinces are mapped to zones; the origin's own province is the ``local`` zone), a volumetric
divisor (chargeable weight = max(actual, L x W x H / divisor)), a remote-area surcharge per parcel and an
insured-value rate on the declared value above a threshold. Each parcel is priced on its own (a
multi-parcel shipment is billed per piece, as Chinese carriers bill 子母件) and the prices add up.

Amounts are integers in fen (0.01 CNY). :func:`default_tariffs` are **illustrative list-price-shaped
defaults** for a warehouse in 江浙沪 (the shape of the public 首重/续重 tables, not any brand's contract
rates); a brand overrides them in the hub configuration (``tariffs`` in the SSM document).

Pure domain: no AWS, no configuration loading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, Field

from parcelhub.domain.models import Carrier, Parcel, ServiceLevel

#: the zone of a destination in the origin's own province
LOCAL_ZONE = "local"
#: the zone of a destination province no table names
DEFAULT_ZONE = "national"


class _Tariff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneRate(_Tariff):
    """首重 / 续重: ``first_fen`` up to ``first_kg``; each started ``step_kg`` beyond costs ``additional_fen``."""

    first_kg: float = Field(1.0, gt=0)
    first_fen: int = Field(ge=0)
    step_kg: float = Field(1.0, gt=0)
    additional_fen: int = Field(ge=0)


class ServiceTariff(_Tariff):
    """One carrier's service: zone prices, volumetric divisor and surcharges."""

    #: zone name -> its rate; must have :data:`LOCAL_ZONE` and :data:`DEFAULT_ZONE`
    rates: dict[str, ZoneRate]
    #: destination province -> zone (absent: :data:`DEFAULT_ZONE`; the origin's province: :data:`LOCAL_ZONE`)
    province_zones: dict[str, str] = Field(default_factory=dict)
    #: cm³ per chargeable kg (SF 标快 uses 12000 for light parcels in many areas, most others 6000-8000)
    volumetric_divisor: int = Field(6000, gt=0)
    #: the smallest chargeable weight step (weights round up to it before the zone rate applies)
    rounding_kg: float = Field(0.1, gt=0)
    #: destination provinces that carry :attr:`remote_surcharge_fen` per parcel (偏远地区附加费)
    remote_provinces: frozenset[str] = frozenset()
    remote_surcharge_fen: int = Field(0, ge=0)
    #: 保价: ``insured_rate`` of the declared value when it is at least ``insure_from_fen``, but at least
    #: ``insured_minimum_fen``
    insured_rate: Decimal = Field(Decimal("0"), ge=0, le=1)
    insure_from_fen: int = Field(50_000, ge=0)
    insured_minimum_fen: int = Field(0, ge=0)

    def model_post_init(self, __context: object) -> None:
        missing = {LOCAL_ZONE, DEFAULT_ZONE} - set(self.rates)
        if missing:
            raise ValueError(f"a tariff needs rates for the zones {sorted(missing)}")
        unknown = set(self.province_zones.values()) - set(self.rates)
        if unknown:
            raise ValueError(f"provinces mapped to zones without a rate: {sorted(unknown)}")


@dataclass(frozen=True, slots=True)
class Price:
    """A shipment's price and how it is made up (all fen)."""

    total_fen: int
    freight_fen: int
    remote_fen: int
    insurance_fen: int
    chargeable_kg: float
    zone: str


def zone_of(tariff: ServiceTariff, origin_province: str, destination_province: str) -> str:
    if destination_province == origin_province:
        return LOCAL_ZONE
    return tariff.province_zones.get(destination_province, DEFAULT_ZONE)


def chargeable_kg(parcel: Parcel, tariff: ServiceTariff) -> float:
    """max(actual, volumetric) weight rounded up to the tariff's weight step."""
    weight = parcel.weight_kg
    if parcel.dimensions is not None:
        d = parcel.dimensions
        weight = max(weight, d.length_cm * d.width_cm * d.height_cm / tariff.volumetric_divisor)
    steps = math.ceil(round(weight / tariff.rounding_kg, 6))
    return round(max(1, steps) * tariff.rounding_kg, 3)


def freight_fen(weight_kg: float, rate: ZoneRate) -> int:
    if weight_kg <= rate.first_kg:
        return rate.first_fen
    extra_steps = math.ceil(round((weight_kg - rate.first_kg) / rate.step_kg, 6))
    return rate.first_fen + extra_steps * rate.additional_fen


def insurance_fen(tariff: ServiceTariff, declared_fen: int) -> int:
    if tariff.insured_rate <= 0 or declared_fen < tariff.insure_from_fen:
        return 0
    fee = (Decimal(declared_fen) * tariff.insured_rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(int(fee), tariff.insured_minimum_fen)


def price(
    tariff: ServiceTariff,
    parcels: Iterable[Parcel],
    *,
    origin_province: str,
    destination_province: str,
    declared_fen: int = 0,
) -> Price:
    """The price of a shipment: each parcel's freight (+ remote surcharge), plus insurance once."""
    zone = zone_of(tariff, origin_province, destination_province)
    rate = tariff.rates[zone]
    remote = destination_province in tariff.remote_provinces
    freight = remote_total = 0
    weight = 0.0
    for parcel in parcels:
        kg = chargeable_kg(parcel, tariff)
        weight += kg
        freight += freight_fen(kg, rate)
        remote_total += tariff.remote_surcharge_fen if remote else 0
    insured = insurance_fen(tariff, declared_fen)
    return Price(freight + remote_total + insured, freight, remote_total, insured, round(weight, 3), zone)


# ------------------------------------------------------------------------------------ default tables

#: provinces near a 江浙沪 warehouse (华东) and the remote ones (偏远: 新疆, 西藏, 青海, 内蒙古, 甘肃, 宁夏)
_EAST = ("上海市", "江苏省", "浙江省", "安徽省")
_REMOTE = ("新疆维吾尔自治区", "西藏自治区", "青海省", "内蒙古自治区", "甘肃省", "宁夏回族自治区")
_FAR = ("黑龙江省", "吉林省", "辽宁省", "云南省", "贵州省", "海南省", "广西壮族自治区")


def _zones() -> dict[str, str]:
    zones = dict.fromkeys(_EAST, "east")
    zones |= dict.fromkeys(_FAR, "far")
    zones |= dict.fromkeys(_REMOTE, "remote")
    return zones


def _tariff(
    table: Mapping[str, tuple[int, int]],
    *,
    divisor: int,
    remote_fen: int = 0,
    insured_rate: str = "0",
    insured_minimum_fen: int = 0,
    first_kg: float = 1.0,
) -> ServiceTariff:
    """From ``zone -> (first yuan, additional yuan per kg)``."""
    return ServiceTariff(
        rates={
            zone: ZoneRate(first_kg=first_kg, first_fen=first * 100, additional_fen=extra * 100)
            for zone, (first, extra) in table.items()
        },
        province_zones=_zones(),
        volumetric_divisor=divisor,
        remote_provinces=frozenset(_REMOTE),
        remote_surcharge_fen=remote_fen,
        insured_rate=Decimal(insured_rate),
        insured_minimum_fen=insured_minimum_fen,
    )


def default_tariffs() -> dict[Carrier, dict[ServiceLevel, ServiceTariff]]:
    """Illustrative list-price-shaped tables (yuan, first kg / each further kg) from a 江浙沪 warehouse."""
    tongda = {"local": (8, 2), "east": (8, 3), "national": (10, 6), "far": (12, 8), "remote": (18, 15)}
    sf_standard = {"local": (12, 2), "east": (13, 4), "national": (18, 7), "far": (20, 9), "remote": (23, 13)}
    sf_express = {"local": (13, 3), "east": (15, 5), "national": (23, 13), "far": (25, 15), "remote": (28, 18)}
    jd = {"local": (11, 2), "east": (12, 4), "national": (16, 7), "far": (18, 9), "remote": (22, 13)}
    ems = {"local": (10, 3), "east": (12, 5), "national": (15, 8), "far": (18, 10), "remote": (20, 12)}
    freight = {"local": (30, 2), "east": (35, 3), "national": (45, 4), "far": (55, 5), "remote": (70, 7)}
    tongda_tariff = _tariff(tongda, divisor=8000, remote_fen=500, insured_rate="0.005", insured_minimum_fen=100)
    tables: dict[Carrier, dict[ServiceLevel, ServiceTariff]] = {
        Carrier.SF: {
            ServiceLevel.STANDARD: _tariff(sf_standard, divisor=12000, insured_rate="0.005", insured_minimum_fen=100),
            ServiceLevel.EXPRESS: _tariff(sf_express, divisor=6000, insured_rate="0.005", insured_minimum_fen=100),
        },
        Carrier.JD: {ServiceLevel.STANDARD: _tariff(jd, divisor=8000, insured_rate="0.005", insured_minimum_fen=100)},
        Carrier.EMS: {ServiceLevel.STANDARD: _tariff(ems, divisor=6000, insured_rate="0.005")},
        Carrier.YZPY: {ServiceLevel.STANDARD: _tariff(ems, divisor=6000, insured_rate="0.005")},
        Carrier.DBL: {ServiceLevel.STANDARD: _tariff(freight, divisor=6000, insured_rate="0.003", first_kg=3.0)},
        Carrier.UC: {ServiceLevel.STANDARD: _tariff(freight, divisor=6000, insured_rate="0.003", first_kg=3.0)},
        Carrier.ZJS: {ServiceLevel.STANDARD: _tariff(jd, divisor=6000, insured_rate="0.005")},
    }
    for carrier in (Carrier.ZTO, Carrier.YTO, Carrier.STO, Carrier.YD, Carrier.JTSD, Carrier.HTKY, Carrier.CAINIAO):
        tables[carrier] = {ServiceLevel.STANDARD: tongda_tariff}
    return tables


class Tariffs(_Tariff):
    """Carrier -> service -> tariff (a carrier without an entry has no price: its facts carry no cost)."""

    carriers: dict[Carrier, dict[ServiceLevel, ServiceTariff]] = Field(default_factory=default_tariffs)

    def tariff(self, carrier: Carrier | str, service: ServiceLevel | str) -> ServiceTariff | None:
        by_service = self.carriers.get(Carrier(carrier)) or {}
        return by_service.get(ServiceLevel(service)) or by_service.get(ServiceLevel.STANDARD)
