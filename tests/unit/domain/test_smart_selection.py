"""The ``smart`` strategy, table-driven: each case gives the candidates' price, estimated latest delivery,
lane record and circuit, and expects the choice, its reason, the flag and the plan the workflow tries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from parcelhub.domain.capacity import CapacityBlock
from parcelhub.domain.lanes import LaneLevel, LaneStats
from parcelhub.domain.models import Carrier, CustomerTier, DeliveryWindow, Provider, ServiceLevel
from parcelhub.domain.policy import CarrierCandidate, LaneThresholds, PromiseRule, SmartPolicy
from parcelhub.domain.smart import LaneRecord, Offer, Promise, choose, lane_record, promise_for

POLICY = SmartPolicy(
    promises=[
        PromiseRule(name="vip-in-province", customer_tier=CustomerTier.VIP, within_province=True, days=1),
        PromiseRule(name="vip", customer_tier=CustomerTier.VIP, days=2),
    ],
    default_days=4,
    lane=LaneThresholds(min_deliveries=30, min_on_time_rate=0.8, max_exception_rate=0.1),
)
CREATED = datetime.fromisoformat("2026-12-01T10:00:00+08:00")  # a Tuesday morning
PROMISE = Promise("vip", datetime.fromisoformat("2026-12-03T23:59:59+08:00"))

SF = CarrierCandidate(provider=Provider.SF, carrier=Carrier.SF)
ZTO = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO)
YTO = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.YTO)
JD = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.JD)

HEALTHY = LaneRecord(deliveries=200, on_time_rate=0.95, exception_rate=0.02, judged=True)
LATE = LaneRecord(deliveries=200, on_time_rate=0.6, exception_rate=0.02, judged=True)
LOSSY = LaneRecord(deliveries=200, on_time_rate=0.9, exception_rate=0.25, judged=True)
THIN_AND_LATE = LaneRecord(deliveries=5, on_time_rate=0.2, exception_rate=0.4, judged=False)


def offer(
    candidate: CarrierCandidate,
    yuan: int,
    latest_day: int,
    lane: LaneRecord = HEALTHY,
    *,
    circuit_open: bool = False,
    capacity: CapacityBlock | None = None,
) -> Offer:
    """``latest_day``: the latest estimated delivery is that many days after creation, 18:00."""
    latest = CREATED.replace(hour=18) + timedelta(days=latest_day)
    window = DeliveryWindow(earliest=CREATED, latest=latest, most_likely=latest - timedelta(hours=6), basis="t")
    return Offer(candidate, ServiceLevel.STANDARD, yuan * 100, window, lane, circuit_open, capacity)


@dataclass(frozen=True)
class Case:
    name: str
    offers: list[Offer]
    chosen: CarrierCandidate
    reason: str
    promise_met: bool
    plan: list[CarrierCandidate]
    blocked: dict[Carrier, str] = field(default_factory=dict)


CASES = [
    Case(
        "cheapest meeting the promise wins over a cheaper late one and a dearer fast one",
        [offer(SF, 18, 1), offer(ZTO, 8, 2), offer(YTO, 7, 4)],
        chosen=ZTO,
        reason="cheapest_meeting_promise",
        promise_met=True,
        plan=[ZTO, SF, YTO],
    ),
    Case(
        "a carrier failing its on-time threshold on the lane is passed over",
        [offer(ZTO, 8, 1, LATE), offer(SF, 18, 1)],
        chosen=SF,
        reason="cheapest_meeting_promise",
        promise_met=True,
        plan=[SF, ZTO],  # the only other provider stays as the backup
        blocked={Carrier.ZTO: "lane_on_time"},
    ),
    Case(
        "a carrier over the exception threshold is passed over, a thin lane is not judged",
        [offer(ZTO, 8, 1, LOSSY), offer(YTO, 9, 2, THIN_AND_LATE), offer(SF, 18, 1)],
        chosen=YTO,
        reason="cheapest_meeting_promise",
        promise_met=True,
        plan=[YTO, SF],
        blocked={Carrier.ZTO: "lane_exceptions"},
    ),
    Case(
        "an open circuit is honoured: the next cheapest meeting the promise",
        [offer(ZTO, 8, 1, circuit_open=True), offer(YTO, 9, 2, circuit_open=True), offer(SF, 18, 1)],
        chosen=SF,
        reason="cheapest_meeting_promise",
        promise_met=True,
        plan=[SF, ZTO],  # a backup through another provider is kept (the workflow skips it while open)
        blocked={Carrier.ZTO: "circuit_open", Carrier.YTO: "circuit_open"},
    ),
    Case(
        "a reached daily cap is honoured: the next cheapest meeting the promise",
        [offer(ZTO, 8, 1, capacity=CapacityBlock.CAP_REACHED), offer(YTO, 9, 2), offer(SF, 18, 1)],
        chosen=YTO,
        reason="cheapest_meeting_promise",
        promise_met=True,
        plan=[YTO, SF],  # a full carrier is not planned at all while another provider backs the choice
        blocked={Carrier.ZTO: "cap_reached"},
    ),
    Case(
        "a used-up e-waybill balance is honoured like a reached cap",
        [offer(ZTO, 8, 1, capacity=CapacityBlock.BALANCE_EXHAUSTED), offer(SF, 18, 1)],
        chosen=SF,
        reason="cheapest_meeting_promise",
        promise_met=True,
        plan=[SF, ZTO],  # the only other provider stays as the backup (its create step refuses while full)
        blocked={Carrier.ZTO: "balance_exhausted"},
    ),
    Case(
        "no candidate meets the promise: the fastest, flagged",
        [offer(ZTO, 8, 5), offer(SF, 18, 3), offer(JD, 16, 4)],
        chosen=SF,
        reason="fastest_promise_not_met",
        promise_met=False,
        plan=[SF, JD, ZTO],
    ),
    Case(
        "every candidate blocked: the fastest whose circuit is closed, flagged",
        [offer(ZTO, 8, 1, LATE), offer(SF, 18, 2, circuit_open=True)],
        chosen=ZTO,
        reason="all_blocked_fastest",
        promise_met=True,
        plan=[ZTO, SF],
        blocked={Carrier.ZTO: "lane_on_time", Carrier.SF: "circuit_open"},
    ),
    Case(
        "every candidate blocked: one only late on the lane goes before a faster full one",
        [offer(SF, 18, 1, capacity=CapacityBlock.CAP_REACHED), offer(ZTO, 8, 2, LATE)],
        chosen=ZTO,
        reason="all_blocked_fastest",
        promise_met=True,
        plan=[ZTO, SF],
        blocked={Carrier.SF: "cap_reached", Carrier.ZTO: "lane_on_time"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_smart_strategy_chooses_as_specified_and_records_why(case: Case) -> None:
    # Given the candidates' offers and the promise; When the strategy chooses
    choice = choose(case.offers, PROMISE, POLICY)
    record = choice.record

    # Then the choice, its reason and the flag are recorded, with every candidate as an option
    assert (record.provider, record.carrier) == (case.chosen.provider, case.chosen.carrier)
    assert record.reason == case.reason
    assert record.promise_met is case.promise_met
    assert (record.promise, record.promise_by) == ("vip", PROMISE.by)
    first = case.offers[0].candidate  # the offers come in the rules' order
    assert (record.rules_provider, record.rules_carrier) == (first.provider, first.carrier)
    assert {(o.provider, o.carrier) for o in record.options} == {(o.candidate.provider, o.candidate.carrier)
                                                                  for o in case.offers}  # fmt: skip
    assert (record.options[0].provider, record.options[0].carrier) == (record.provider, record.carrier)
    assert {o.carrier: o.blocked for o in record.options if o.blocked} == case.blocked
    priced = {o.carrier: o.price_fen for o in record.options}
    assert priced == {o.candidate.carrier: o.price_fen for o in case.offers}
    # and the workflow tries the choice first, always with a backup through a different provider
    assert list(choice.plan) == case.plan
    assert len({c.provider for c in choice.plan}) >= 2


def test_promises_by_tier_and_destination_end_at_the_local_day() -> None:
    # Given a VIP inside the warehouse's province, a VIP elsewhere, and a regular customer
    in_province = promise_for(POLICY, CustomerTier.VIP, "浙江省", "浙江", CREATED)
    elsewhere = promise_for(POLICY, CustomerTier.VIP, "浙江省", "北京市", CREATED)
    regular = promise_for(POLICY, CustomerTier.REGULAR, "浙江省", "浙江省", CREATED)
    # Then next day, two days, and the default days, each to the end of the local day
    assert (in_province.name, in_province.by.isoformat()) == ("vip-in-province", "2026-12-02T23:59:59+08:00")
    assert (elsewhere.name, elsewhere.by.isoformat()) == ("vip", "2026-12-03T23:59:59+08:00")
    assert (regular.name, regular.by.isoformat()) == ("default", "2026-12-05T23:59:59+08:00")


def test_the_lane_record_is_judged_at_the_most_precise_level_with_enough_deliveries() -> None:
    # Given a thin city lane and a province lane with history
    stats = {
        ("ZTO", LaneLevel.CITY): LaneStats({"delivered": 4, "promised": 4, "on_time": 0, "parcels": 4}),
        ("ZTO", LaneLevel.PROVINCE): LaneStats(
            {"delivered": 100, "promised": 80, "on_time": 60, "parcels": 110, "exceptions": 11}
        ),
    }
    # Then the province lane is judged; with a higher minimum the city lane is shown, not judged
    assert lane_record(stats, "ZTO", 30) == LaneRecord(100, 0.75, 0.1, judged=True)
    assert lane_record(stats, "ZTO", 500) == LaneRecord(4, 0.0, 0.0, judged=False)
    assert lane_record(stats, "SF", 30) == LaneRecord()
