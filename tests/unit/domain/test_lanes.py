"""Lane statistics: fixed histograms add bucket by bucket, and a fact contributes what it passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from parcelhub.domain.lanes import (
    BUCKETS,
    HOUR_EDGES,
    DeliveryFact,
    Histogram,
    Lane,
    Milestone,
    Outcome,
    bucket_of,
    contribution,
    remaining_histogram_name,
)

HOURS = st.floats(min_value=0, max_value=2000, allow_nan=False)
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
LANE = Lane("广东省", "深圳市", "浙江省", "杭州市")


@given(st.lists(HOURS, max_size=60), st.lists(HOURS, max_size=60))
def test_adding_histograms_equals_the_histogram_of_both_samples(a: list[float], b: list[float]) -> None:
    assert Histogram.of(a) + Histogram.of(b) == Histogram.of(a + b)
    assert Histogram.of(a) + Histogram.of(b) == Histogram.of(b) + Histogram.of(a)


@given(st.lists(HOURS, min_size=1, max_size=80))
def test_quantiles_are_monotone_and_inside_the_data_buckets(values: list[float]) -> None:
    histogram = Histogram.of(values)
    quantiles = [histogram.quantile(q / 10) for q in range(11)]
    assert all(q is not None for q in quantiles)
    assert quantiles == sorted(quantiles)  # type: ignore[type-var]
    low = HOUR_EDGES[bucket_of(min(values)) - 1] if bucket_of(min(values)) else 0.0
    assert quantiles[0] is not None
    assert quantiles[0] >= low


def test_sparse_round_trip_keeps_only_non_empty_buckets() -> None:
    histogram = Histogram.of([1, 1, 30, 5000])
    assert histogram.sparse() == {0: 2, bucket_of(30): 1, BUCKETS - 1: 1}
    assert Histogram.from_sparse(histogram.sparse()) == histogram


def test_an_empty_histogram_has_no_quantile() -> None:
    assert Histogram().quantile(0.5) is None


def test_a_delivered_fact_contributes_its_milestones_promise_and_cost() -> None:
    fact = DeliveryFact(
        shipment_id="S1", carrier="SF", provider="sf", service="standard", lane=LANE, outcome=Outcome.DELIVERED,
        created_at=T0, picked_up_at=T0 + timedelta(hours=5), arrived_at=T0 + timedelta(hours=30),
        out_for_delivery_at=None, delivered_at=T0 + timedelta(hours=40), attempts=1,
        promised_latest=T0 + timedelta(hours=36), cost_fen=1200,
    )  # fmt: skip
    stats = contribution(fact)
    assert stats.count("parcels") == 1
    assert stats.count("delivered") == 1
    assert stats.count("promised") == 1
    assert stats.count("on_time") == 0
    assert stats.count("first_attempt") == 1
    assert stats.count("cost_fen") == 1200
    assert stats.histogram("pickup").quantile(0.5) is not None
    assert stats.histogram(remaining_histogram_name(Milestone.CREATED)).total == 1
    assert remaining_histogram_name(Milestone.OUT_FOR_DELIVERY) not in stats.histograms  # never passed


def test_a_returned_fact_counts_its_exceptions_but_no_transit() -> None:
    fact = DeliveryFact(
        shipment_id="S2", carrier="ZTO", provider="kdniao", service="standard", lane=LANE, outcome=Outcome.RETURNED,
        created_at=T0, exception_reasons=("REFUSED", "REFUSED"),
    )  # fmt: skip
    stats = contribution(fact)
    assert stats.count("returned") == 1
    assert stats.count("exception:REFUSED") == 1
    assert not any(name.startswith("remaining_") for name in stats.histograms)
    assert (stats + stats).count("parcels") == 2
