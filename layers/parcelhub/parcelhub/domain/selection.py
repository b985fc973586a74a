"""Carrier selection: which (provider, carrier) pairs to try for a shipment, in order (pure; ARCHITECTURE §6).

The policy is configuration (:class:`parcelhub.config.SelectionPolicy`), this module only applies it:

1. **A pinned carrier** (the OMS sent ``carrier``): every provider that issues waybills for it, in the
   order of ``pinned_carrier_providers`` (default: the aggregator ``kdniao``).
2. **Otherwise the first matching rule** (customer tier, minimum declared value in CNY, destination
   provinces, service level; a rule whose candidates all fail coverage is skipped) gives the primary
   candidates, in the rule's order. The defaults send VIPs and parcels declared at 500 CNY or more to
   SF through ``sf`` first and everything else to ZTO through ``kdniao`` first.
3. **Coverage**: a candidate whose carrier excludes the destination province (``exclusions``) is dropped.
4. **Always a backup through a different provider**: when the candidates so far all go through one
   provider, the cheapest covering candidate (``cost_table``) through another provider from the other
   rules is appended. A pin is a preference, not a cage: when no other provider issues the pinned
   carrier, the backup may be another carrier (``strict_pin=True`` keeps only the pinned carrier).

Providers that do not issue waybills (Kuaidi100 is tracking-only) never appear. Province names are
compared without their administrative suffix, so ``浙江`` matches ``浙江省``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from parcelhub.domain.models import Carrier, CustomerTier, Money, Provider, ServiceLevel
from parcelhub.domain.policy import CarrierCandidate, SelectionPolicy, SelectionRule

#: Providers that never issue waybills (tracking aggregators).
TRACKING_ONLY: frozenset[Provider] = frozenset({Provider.KUAIDI100})
#: Who issues waybills for a pinned carrier the policy does not list: the aggregator.
DEFAULT_PIN_PROVIDERS: tuple[Provider, ...] = (Provider.KDNIAO,)
#: Currency the policy's value thresholds are written in.
POLICY_CURRENCY = "CNY"
#: An unknown carrier cost sorts last among backups.
UNKNOWN_COST = Decimal("1e9")

_PROVINCE_SUFFIXES = (
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "特别行政区",
    "自治区",
    "省",
    "市",
)


def normalize_province(name: str) -> str:
    """``浙江省 -> 浙江``, ``新疆维吾尔自治区 -> 新疆``, ``上海市 -> 上海`` (comparison key only)."""
    text = name.strip()
    for suffix in _PROVINCE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)]
    return text


@dataclass(frozen=True, slots=True)
class SelectionRequest:
    """What selection looks at: no personal data, only routing and commercial facts."""

    customer_tier: CustomerTier
    declared_value: Money
    destination_province: str
    service: ServiceLevel = ServiceLevel.STANDARD
    pinned_carrier: Carrier | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """The ordered candidates and why (the rule name, ``pinned`` or ``none``)."""

    rule: str
    candidates: tuple[CarrierCandidate, ...]


def _covers(policy: SelectionPolicy, carrier: Carrier, province: str) -> bool:
    excluded = policy.exclusions.get(carrier, [])
    key = normalize_province(province)
    return all(normalize_province(p) != key for p in excluded)


def _value_in_policy_currency(value: Money) -> Decimal | None:
    # No FX rates in a pure function: a value in another currency matches no value threshold.
    return value.amount if value.currency == POLICY_CURRENCY else None


def rule_matches(rule: SelectionRule, request: SelectionRequest) -> bool:
    if rule.customer_tier is not None and rule.customer_tier != request.customer_tier:
        return False
    if rule.min_declared_value is not None:
        amount = _value_in_policy_currency(request.declared_value)
        if amount is None or amount < rule.min_declared_value:
            return False
    if rule.destination_provinces is not None:
        wanted = {normalize_province(p) for p in rule.destination_provinces}
        if normalize_province(request.destination_province) not in wanted:
            return False
    return rule.service is None or rule.service == request.service.value


class _Picker:
    """Collects candidates in order, dropping duplicates, non-issuers and uncovered carriers."""

    def __init__(
        self,
        policy: SelectionPolicy,
        province: str,
        issuers: Mapping[Provider, frozenset[Carrier]] | None,
    ) -> None:
        self.policy = policy
        self.province = province
        self.issuers = issuers
        self.chosen: list[CarrierCandidate] = []

    def eligible(self, candidate: CarrierCandidate) -> bool:
        if candidate.provider in TRACKING_ONLY:
            return False
        if self.issuers is not None and candidate.carrier not in self.issuers.get(candidate.provider, frozenset()):
            return False
        return _covers(self.policy, candidate.carrier, self.province)

    def add(self, candidates: Iterable[CarrierCandidate]) -> int:
        added = 0
        for candidate in candidates:
            if candidate not in self.chosen and self.eligible(candidate):
                self.chosen.append(candidate)
                added += 1
        return added

    def providers(self) -> set[Provider]:
        return {c.provider for c in self.chosen}

    def cost(self, candidate: CarrierCandidate) -> Decimal:
        return self.policy.cost_table.get(candidate.carrier, UNKNOWN_COST)


def select_carriers(
    policy: SelectionPolicy,
    request: SelectionRequest,
    *,
    issuers: Mapping[Provider, frozenset[Carrier]] | None = None,
    strict_pin: bool = False,
) -> Selection:
    """Apply the policy. ``issuers`` (provider -> carriers it can issue waybills for), when given,
    drops candidates a configured provider cannot serve (e.g. a provider without credentials)."""
    picker = _Picker(policy, request.destination_province, issuers)
    rule_name = "none"
    matching = [rule for rule in policy.rules if rule_matches(rule, request)]

    if request.pinned_carrier is not None:
        carrier = request.pinned_carrier
        providers = policy.pinned_carrier_providers.get(carrier) or list(DEFAULT_PIN_PROVIDERS)
        picker.add(CarrierCandidate(provider=p, carrier=carrier) for p in providers)
        rule_name = "pinned"
        if strict_pin:
            return Selection(rule=rule_name, candidates=tuple(picker.chosen))
    else:
        for rule in matching:
            if picker.add(rule.candidates):
                rule_name = rule.name
                break

    if len(picker.providers()) < 2:
        # The backup pool: every candidate of every rule (matching rules first), cheapest first.
        pool = [c for rule in matching for c in rule.candidates]
        pool += [c for rule in policy.rules if rule not in matching for c in rule.candidates]
        order = {id(c): i for i, c in enumerate(pool)}
        if not picker.chosen:
            rule_name = "fallback"
        for candidate in sorted(pool, key=lambda c: (picker.cost(c), order[id(c)])):
            if len(picker.providers()) >= 2:
                break
            if candidate.provider not in picker.providers():
                picker.add([candidate])
    return Selection(rule=rule_name, candidates=tuple(picker.chosen))


def allowed_candidates(
    policy: SelectionPolicy,
    request: SelectionRequest,
    *,
    issuers: Mapping[Provider, frozenset[Carrier]] | None = None,
) -> Selection:
    """Every candidate the rules allow (the ``smart`` strategy's pool): the rule-based selection with its
    backup, then the other covered candidates of every matching rule. A pin stays a pin."""
    base = select_carriers(policy, request, issuers=issuers)
    if request.pinned_carrier is not None:
        return base
    picker = _Picker(policy, request.destination_province, issuers)
    picker.add(base.candidates)
    picker.add(c for rule in policy.rules if rule_matches(rule, request) for c in rule.candidates)
    return Selection(rule=base.rule, candidates=tuple(picker.chosen))
