"""Tariffs as configuration: the price of a shipment from its parcels (table-driven)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from parcelhub.config import HubConfig
from parcelhub.domain.models import Carrier, Dimensions, Parcel, ServiceLevel
from parcelhub.domain.tariff import (
    DEFAULT_ZONE,
    LOCAL_ZONE,
    ServiceTariff,
    Tariffs,
    ZoneRate,
    chargeable_kg,
    price,
)

#: a small tariff with round numbers so every expected price can be worked out by hand
TARIFF = ServiceTariff(
    rates={
        LOCAL_ZONE: ZoneRate(first_fen=800, additional_fen=200),
        DEFAULT_ZONE: ZoneRate(first_fen=1000, additional_fen=600),
        "remote": ZoneRate(first_fen=1800, additional_fen=1500),
    },
    province_zones={"新疆维吾尔自治区": "remote"},
    volumetric_divisor=6000,
    rounding_kg=0.5,
    remote_provinces=frozenset({"新疆维吾尔自治区"}),
    remote_surcharge_fen=500,
    insured_rate=Decimal("0.005"),
    insure_from_fen=50_000,
    insured_minimum_fen=100,
)


def parcel(kg: float, dims: tuple[float, float, float] | None = None) -> Parcel:
    return Parcel(
        weight_kg=kg,
        dimensions=Dimensions(length_cm=dims[0], width_cm=dims[1], height_cm=dims[2]) if dims else None,
    )


@pytest.mark.parametrize(
    ("case", "parcels", "destination", "declared_fen", "expected_total", "expected_zone"),
    [
        ("local, under the first kg", [parcel(0.4)], "浙江省", 0, 800, LOCAL_ZONE),
        ("local, exactly the first kg", [parcel(1.0)], "浙江省", 0, 800, LOCAL_ZONE),
        # 2.3 kg rounds up to 2.5 kg: the first kg, then 1.5 kg = 2 started 1 kg steps
        ("national, 2.3 kg -> 2.5 kg chargeable", [parcel(2.3)], "广东省", 0, 1000 + 2 * 600, DEFAULT_ZONE),
        # 40x30x30 cm / 6000 = 6 kg volumetric beats 1 kg actual: 1000 + 5 x 600
        ("national, volumetric wins", [parcel(1.0, (40, 30, 30))], "广东省", 0, 1000 + 5 * 600, DEFAULT_ZONE),
        ("national, actual beats a small box", [parcel(3.0, (10, 10, 10))], "广东省", 0, 1000 + 2 * 600,
         DEFAULT_ZONE),
        ("remote: zone rate + surcharge per parcel", [parcel(1.0), parcel(1.0)], "新疆维吾尔自治区", 0,
         2 * (1800 + 500), "remote"),
        ("insured above the threshold: 0.5 % of 800 CNY", [parcel(1.0)], "浙江省", 80_000, 800 + 400, LOCAL_ZONE),
        ("insured at the threshold: 0.5 % of 500 CNY", [parcel(1.0)], "浙江省", 50_000, 800 + 250, LOCAL_ZONE),
        ("below the insurance threshold: no fee", [parcel(1.0)], "浙江省", 49_999, 800, LOCAL_ZONE),
        ("each parcel priced on its own", [parcel(1.5), parcel(0.5)], "广东省", 0, (1000 + 600) + 1000, DEFAULT_ZONE),
    ],
)  # fmt: skip
def test_price_of_a_shipment(  # noqa: PLR0917 - one row of the table
    case: str, parcels: list[Parcel], destination: str, declared_fen: int, expected_total: int, expected_zone: str
) -> None:
    # Given a tariff and a shipment's parcels from 浙江省
    # When it is priced
    quote = price(
        TARIFF, parcels, origin_province="浙江省", destination_province=destination, declared_fen=declared_fen
    )
    # Then the total and the zone are the table's
    assert (quote.total_fen, quote.zone) == (expected_total, expected_zone), case
    assert quote.total_fen == quote.freight_fen + quote.remote_fen + quote.insurance_fen


def test_insured_minimum() -> None:
    cheap = TARIFF.model_copy(update={"insured_rate": Decimal("0.001")})
    quote = price(cheap, [parcel(1.0)], origin_province="浙江省", destination_province="浙江省", declared_fen=60_000)
    assert quote.insurance_fen == 100  # 0.1 % of 600 CNY is 60 fen: the minimum is 1 CNY


@pytest.mark.parametrize(
    ("kg", "dims", "expected"),
    [(0.01, None, 0.5), (0.5, None, 0.5), (0.51, None, 1.0), (1.0, (50, 40, 30), 10.0), (12.0, (50, 40, 30), 12.0)],
)
def test_chargeable_weight(kg: float, dims: tuple[float, float, float] | None, expected: float) -> None:
    assert chargeable_kg(parcel(kg, dims), TARIFF) == expected


def test_a_tariff_needs_local_and_national_rates() -> None:
    with pytest.raises(ValueError, match="zones"):
        ServiceTariff(rates={LOCAL_ZONE: ZoneRate(first_fen=1, additional_fen=1)})
    with pytest.raises(ValueError, match="without a rate"):
        ServiceTariff(
            rates={
                LOCAL_ZONE: ZoneRate(first_fen=1, additional_fen=1),
                DEFAULT_ZONE: ZoneRate(first_fen=1, additional_fen=1),
            },
            province_zones={"西藏自治区": "remote"},
        )


@pytest.mark.parametrize("carrier", list(Carrier))
def test_every_carrier_has_a_default_standard_tariff(carrier: Carrier) -> None:
    # Given the default configuration
    tariff = HubConfig().tariffs.tariff(carrier, ServiceLevel.STANDARD)
    # Then every carrier prices a 1 kg local parcel, and a far one costs more
    assert tariff is not None
    near = price(tariff, [parcel(1.0)], origin_province="浙江省", destination_province="浙江省")
    far = price(tariff, [parcel(5.0)], origin_province="浙江省", destination_province="新疆维吾尔自治区")
    assert 0 < near.total_fen < far.total_fen


def test_default_sf_express_costs_more_than_standard_and_zto_least() -> None:
    tariffs = Tariffs()
    args = {"origin_province": "浙江省", "destination_province": "广东省"}
    sf_express = price(tariffs.tariff(Carrier.SF, ServiceLevel.EXPRESS), [parcel(2.0)], **args)  # type: ignore[arg-type]
    sf_standard = price(tariffs.tariff(Carrier.SF, ServiceLevel.STANDARD), [parcel(2.0)], **args)  # type: ignore[arg-type]
    zto = price(tariffs.tariff(Carrier.ZTO, ServiceLevel.STANDARD), [parcel(2.0)], **args)  # type: ignore[arg-type]
    assert zto.total_fen < sf_standard.total_fen < sf_express.total_fen
    # a service a carrier does not list falls back to its standard tariff
    assert tariffs.tariff(Carrier.ZTO, ServiceLevel.EXPRESS) == tariffs.tariff(Carrier.ZTO, ServiceLevel.STANDARD)


def test_tariffs_are_overridable_from_the_configuration_document() -> None:
    # Given an SSM document that overrides ZTO's tariff only
    document = {
        "tariffs": {
            "carriers": {
                "ZTO": {
                    "standard": {
                        "rates": {
                            "local": {"first_fen": 500, "additional_fen": 100},
                            "national": {"first_fen": 700, "additional_fen": 300},
                        },
                        "volumetric_divisor": 8000,
                    }
                }
            }
        }
    }
    # When it is parsed
    config = HubConfig.model_validate(document)
    # Then ZTO prices from it, and the override replaces the defaults (SF is then unpriced)
    tariff = config.tariffs.tariff("ZTO", "standard")
    assert tariff is not None
    quote = price(tariff, [parcel(2.0)], origin_province="浙江省", destination_province="广东省")
    assert quote.total_fen == 700 + 300
    assert config.tariffs.tariff("SF", "standard") is None
