"""Carrier selection: the default policy, coverage, pins, cost-ordered backups and the invariants
(hypothesis): always a backup through a different provider when one exists, never a tracking-only
provider, never the same candidate twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.domain.models import Carrier, CustomerTier, Money, Provider, ServiceLevel
from parcelhub.domain.policy import CarrierCandidate, SelectionPolicy, SelectionRule
from parcelhub.domain.selection import (
    SelectionRequest,
    normalize_province,
    rule_matches,
    select_carriers,
)

pytestmark = pytest.mark.unit

SF_SF = CarrierCandidate(provider=Provider.SF, carrier=Carrier.SF)
KD_ZTO = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO)
KD_SF = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.SF)


def request(
    *,
    tier: CustomerTier = CustomerTier.REGULAR,
    value: str = "120.00",
    province: str = "上海市",
    carrier: Carrier | None = None,
    currency: str = "CNY",
    service: ServiceLevel = ServiceLevel.STANDARD,
) -> SelectionRequest:
    return SelectionRequest(
        customer_tier=tier,
        declared_value=Money(amount=Decimal(value), currency=currency),
        destination_province=province,
        service=service,
        pinned_carrier=carrier,
    )


@pytest.mark.parametrize(
    ("req", "rule", "expected"),
    [
        (request(tier=CustomerTier.VIP), "vip", [SF_SF, KD_ZTO]),
        (request(value="500.00"), "high-value", [SF_SF, KD_ZTO]),
        (request(value="499.99"), "default", [KD_ZTO, SF_SF]),
        (request(value="9999", currency="USD"), "default", [KD_ZTO, SF_SF]),
    ],
)
def test_default_policy(req: SelectionRequest, rule: str, expected: list[CarrierCandidate]) -> None:
    # Given the default policy, When a shipment is selected, Then VIP / >= 500 CNY go SF-first
    selection = select_carriers(SelectionPolicy(), req)
    assert selection.rule == rule
    assert list(selection.candidates) == expected


def test_pinned_carrier_uses_every_issuing_provider_of_that_carrier() -> None:
    # Given an order pinned to SF: SF direct first, SF through Kdniao as the backup
    selection = select_carriers(SelectionPolicy(), request(carrier=Carrier.SF))
    assert selection.rule == "pinned"
    assert list(selection.candidates) == [SF_SF, KD_SF]


def test_pin_with_a_single_provider_still_gets_a_backup_unless_strict() -> None:
    # Given ZTO pinned (only Kdniao issues ZTO): the backup is the cheapest candidate via another provider
    loose = select_carriers(SelectionPolicy(), request(carrier=Carrier.ZTO))
    assert list(loose.candidates) == [KD_ZTO, SF_SF]
    strict = select_carriers(SelectionPolicy(), request(carrier=Carrier.ZTO), strict_pin=True)
    assert list(strict.candidates) == [KD_ZTO]


def test_coverage_exclusion_drops_a_carrier_and_a_backup_takes_its_place() -> None:
    # Given ZTO does not serve Tibet (province written without its suffix in the policy)
    policy = SelectionPolicy(exclusions={Carrier.ZTO: ["西藏"]})
    selection = select_carriers(policy, request(province="西藏自治区"))
    # Then ZTO is gone and the default rule's remaining candidate leads
    assert Carrier.ZTO not in {c.carrier for c in selection.candidates}
    assert selection.candidates[0] == SF_SF


def test_backup_pool_is_ordered_by_the_cost_table() -> None:
    # Given a rule with one Kdniao candidate and other rules offering several carriers through SF and Kdniao
    policy = SelectionPolicy(
        rules=[
            SelectionRule(
                name="only-yto", candidates=[CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.YTO)]
            ),
            SelectionRule(
                name="others",
                customer_tier=CustomerTier.VIP,
                candidates=[
                    SF_SF,
                    CarrierCandidate(provider=Provider.SF, carrier=Carrier.JD),
                    KD_ZTO,
                ],
            ),
        ],
        cost_table={Carrier.YTO: Decimal(4), Carrier.SF: Decimal(13), Carrier.JD: Decimal(10), Carrier.ZTO: Decimal(5)},
    )
    selection = select_carriers(policy, request())
    # Then the backup through a DIFFERENT provider is the cheapest one (JD 10 < SF 13); ZTO (same provider) isn't
    assert [(c.provider, c.carrier) for c in selection.candidates] == [
        (Provider.KDNIAO, Carrier.YTO),
        (Provider.SF, Carrier.JD),
    ]


def test_tracking_only_and_unconfigured_providers_never_issue() -> None:
    # Given a rule naming Kuaidi100 and issuers where SF has no credentials
    policy = SelectionPolicy(
        rules=[
            SelectionRule(
                name="bad",
                candidates=[CarrierCandidate(provider=Provider.KUAIDI100, carrier=Carrier.SF), SF_SF, KD_ZTO],
            )
        ]
    )
    selection = select_carriers(policy, request(), issuers={Provider.KDNIAO: frozenset(Carrier)})
    assert list(selection.candidates) == [KD_ZTO]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("浙江省", "浙江"),
        ("新疆维吾尔自治区", "新疆"),
        ("广西壮族自治区", "广西"),
        ("上海市", "上海"),
        ("香港特别行政区", "香港"),
    ],
)
def test_province_names_compare_without_their_suffix(name: str, key: str) -> None:
    assert normalize_province(name) == key


def test_rule_conditions() -> None:
    rule = SelectionRule(
        name="express-north",
        service="express",
        destination_provinces=["北京"],
        min_declared_value=Decimal(100),
        candidates=[SF_SF],
    )
    assert rule_matches(rule, request(province="北京市", value="100", service=ServiceLevel.EXPRESS))
    assert not rule_matches(rule, request(province="北京市", value="99.99", service=ServiceLevel.EXPRESS))
    assert not rule_matches(rule, request(province="天津市", value="100", service=ServiceLevel.EXPRESS))
    assert not rule_matches(rule, request(province="北京市", value="100", service=ServiceLevel.STANDARD))


PROVINCES = ["上海市", "浙江省", "西藏自治区", "新疆维吾尔自治区", "广东省"]
candidates = st.builds(
    CarrierCandidate,
    provider=st.sampled_from(list(Provider)),
    carrier=st.sampled_from([Carrier.SF, Carrier.ZTO, Carrier.YTO, Carrier.JD, Carrier.EMS]),
)
rules = st.lists(
    st.builds(
        SelectionRule,
        name=st.sampled_from(["a", "b", "c"]),
        customer_tier=st.none() | st.sampled_from(list(CustomerTier)),
        min_declared_value=st.none() | st.sampled_from([Decimal(0), Decimal(500)]),
        destination_provinces=st.none() | st.lists(st.sampled_from(PROVINCES), max_size=2),
        candidates=st.lists(candidates, min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=4,
)
exclusions = st.dictionaries(
    st.sampled_from([Carrier.SF, Carrier.ZTO, Carrier.YTO]),
    st.lists(st.sampled_from(PROVINCES), max_size=2),
    max_size=2,
)


@settings(max_examples=300, deadline=None)
@given(
    rules=rules,
    exclusions=exclusions,
    tier=st.sampled_from(list(CustomerTier)),
    value=st.sampled_from(["0", "499.99", "500", "2000"]),
    province=st.sampled_from(PROVINCES),
    pinned=st.none() | st.sampled_from([Carrier.SF, Carrier.ZTO]),
)
def test_selection_invariants(  # noqa: PLR0917 - hypothesis passes the strategies by keyword
    rules: list[SelectionRule],
    exclusions: dict[Carrier, list[str]],
    tier: CustomerTier,
    value: str,
    province: str,
    pinned: Carrier | None,
) -> None:
    policy = SelectionPolicy(rules=rules, exclusions=exclusions)
    req = request(tier=tier, value=value, province=province, carrier=pinned)
    selection = select_carriers(policy, req)
    chosen = list(selection.candidates)
    # never a tracking-only provider, never a duplicate, never an uncovered carrier
    assert all(c.provider is not Provider.KUAIDI100 for c in chosen)
    assert len(chosen) == len(set(chosen))
    for c in chosen:
        assert normalize_province(province) not in {normalize_province(p) for p in exclusions.get(c.carrier, [])}
    # always a backup through a different provider whenever the policy offers one that covers the province
    offered = {
        c.provider
        for rule in rules
        for c in rule.candidates
        if c.provider is not Provider.KUAIDI100
        and normalize_province(province) not in {normalize_province(p) for p in exclusions.get(c.carrier, [])}
    }
    pin_covered = pinned is not None and normalize_province(province) not in {
        normalize_province(p) for p in exclusions.get(pinned, [])
    }
    if pinned is not None and pin_covered:
        offered |= set(policy.pinned_carrier_providers.get(pinned, [Provider.KDNIAO]))
    if len(offered) >= 2 and chosen:
        assert len({c.provider for c in chosen}) >= 2
    # a pin leads
    if pin_covered and chosen:
        assert chosen[0].carrier is pinned
