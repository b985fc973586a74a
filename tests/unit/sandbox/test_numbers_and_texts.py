"""The sandboxes' carrier ground truth: published number shapes, the recognition guess, scan wording."""

from __future__ import annotations

import random

import pytest

from parcelhub.carriers.codes import classify_text
from parcelhub.domain.status import Status
from sandbox.carriers.base import Stage
from sandbox.carriers.texts import scan_text
from sandbox.numbers import SHAPES, guess_carriers, published_numbers

CARRIERS = sorted(SHAPES)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_published_numbers_are_distinct_deterministic_and_use_every_shape(carrier: str) -> None:
    numbers = published_numbers(carrier, 12, random.Random(5))
    assert len(set(numbers)) == 12
    assert numbers == published_numbers(carrier, 12, random.Random(5))
    assert all(n.isascii() and n.isalnum() and n.upper() == n for n in numbers)
    for shape in SHAPES[carrier]:  # shapes are taken in turn
        assert any(n.startswith(shape.prefixes) and n.endswith(shape.suffix) for n in numbers)


def test_the_guess_for_an_unknown_number_is_ranked_and_may_be_empty() -> None:
    assert guess_carriers("EA123456789CN") == ["EMS"]
    assert guess_carriers("RR123456789CN") == ["YZPY"]
    assert guess_carriers("1123456789012") == ["EMS", "YZPY"]
    assert guess_carriers("77123456789012") == ["ZTO", "STO"]
    assert guess_carriers("Z1") == []


@pytest.mark.parametrize("carrier", [*CARRIERS, "UNKNOWN"])
def test_each_carriers_wording_still_reads_as_its_stage_without_a_code(carrier: str) -> None:
    # Given a pickup and a delivery scan worded as the carrier words them / Then the keyword classifier
    # (what a codeless scan falls back to) reads the right stage
    picked = classify_text(scan_text(carrier, Stage.PICKED_UP, "杭州市", "杭州西湖网点"))
    delivered = classify_text(scan_text(carrier, Stage.DELIVERED, "上海市", "上海闵行营业部"))
    assert picked is not None
    assert picked.status is Status.PICKED_UP
    assert delivered is not None
    assert delivered.status is Status.DELIVERED
