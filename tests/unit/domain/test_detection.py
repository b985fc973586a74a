"""Carrier detection from the number alone (``domain.detection`` over ``domain.number_patterns``), against
200 numbers of the carriers' published formats (``tests/fixtures/detection/numbers.json``)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcelhub.domain.detection import CarrierCandidate, detect, normalise_number
from parcelhub.domain.models import Carrier
from parcelhub.domain.number_patterns import PATTERNS
from sandbox.numbers import published_numbers

FIXTURE = Path(__file__).parents[2] / "fixtures" / "detection" / "numbers.json"


def _groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = json.loads(FIXTURE.read_text("utf-8"))["groups"]
    return groups


def _numbers(*, letters: bool) -> list[tuple[str, str]]:
    return [
        (group["carrier"], number)
        for group in _groups()
        for number in group["numbers"]
        if (not number.isdigit()) == letters
    ]


def test_the_fixture_holds_200_numbers_of_every_carrier_with_their_sources() -> None:
    groups = _groups()
    assert sum(len(group["numbers"]) for group in groups) == 200
    wanted = {"SF", "ZTO", "YTO", "STO", "YD", "JTSD", "EMS", "YZPY", "JD", "DBL", Carrier.CAINIAO.value}
    assert {group["carrier"] for group in groups} == wanted
    assert all(group["source"] for group in groups)
    assert any(group["kind"] == "published" for group in groups)


@pytest.mark.parametrize("group", [g for g in _groups() if g["kind"] == "generated"], ids=lambda g: g["carrier"])
def test_the_generated_groups_are_what_the_sandbox_generator_gives(group: dict[str, Any]) -> None:
    # Given the seed recorded in the fixture, the sandbox's generator reproduces the group exactly
    assert published_numbers(group["carrier"], len(group["numbers"]), random.Random(group["seed"])) == group["numbers"]


@pytest.mark.parametrize(("carrier", "number"), _numbers(letters=True))
def test_a_letter_prefixed_number_ranks_its_carrier_first_and_certain(carrier: str, number: str) -> None:
    # When a letter-prefixed number is detected
    found = detect(number)
    # Then its carrier is first, certain, and alone
    assert found[0].carrier == Carrier(carrier)
    assert found[0].certain
    assert [c.carrier for c in found] == [Carrier(carrier)]


@pytest.mark.parametrize(("carrier", "number"), _numbers(letters=False))
def test_an_all_digit_number_has_its_carrier_among_the_candidates_never_certain(carrier: str, number: str) -> None:
    # When an all-digit number is detected
    found = detect(number)
    # Then its carrier is one of the ranked candidates, and no candidate claims certainty
    assert Carrier(carrier) in [c.carrier for c in found]
    assert not any(c.certain for c in found)


def test_overlapping_digits_yield_several_candidates_ranked_by_score() -> None:
    # Given a 13-digit number starting 11 (EMS's and China Post's shapes overlap there)
    found = detect("1151234567890")
    # Then both are candidates, EMS first, scores adding up to one
    assert {Carrier.EMS, Carrier.YZPY} <= {c.carrier for c in found}
    assert found[0].carrier is Carrier.EMS
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    assert sum(c.score for c in found) == pytest.approx(1.0)


def test_a_number_of_no_published_shape_has_no_candidate() -> None:
    assert detect("ABC123") == []


def test_detect_reads_the_number_as_a_person_pastes_it() -> None:
    assert detect(" yt 4318-4078-29600 ")[0].carrier is Carrier.YTO


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("  - ", "empty"),
        ("A" * 33, "at most 32"),
        ("YT123/456", "only letters A-Z and digits"),
        ("顺丰123456", "only letters A-Z and digits"),
    ],
)
def test_normalise_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalise_number(text)


def test_every_pattern_row_is_data_with_a_source_and_a_prior() -> None:
    ids = [row.id for row in PATTERNS]
    assert len(ids) == len(set(ids))
    assert all(row.source and 0 < row.prior <= 1 for row in PATTERNS)
    assert {row.carrier for row in PATTERNS} >= {
        Carrier.SF, Carrier.ZTO, Carrier.YTO, Carrier.STO, Carrier.YD, Carrier.JTSD,
        Carrier.EMS, Carrier.YZPY, Carrier.JD, Carrier.DBL, Carrier.CAINIAO,
    }  # fmt: skip
    # certain rows are letter-prefixed: no all-digit string can match one
    assert all(re.match(r"\[?[A-Z]", row.regex.pattern) for row in PATTERNS if row.certain)


_PASTED = st.text(alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789 -"), min_size=1, max_size=40)


@given(_PASTED)
def test_normalising_is_idempotent(text: str) -> None:
    try:
        once = normalise_number(text)
    except ValueError:
        return
    assert normalise_number(once) == once
    assert re.fullmatch(r"[A-Z0-9]{1,32}", once)


@given(st.from_regex(r"[A-Z0-9]{6,30}", fullmatch=True))
def test_detect_never_raises_on_a_valid_number_and_answers_well_formed_candidates(number: str) -> None:
    found = detect(number)
    assert all(isinstance(c, CarrierCandidate) and 0 < c.score <= 1 for c in found)
    assert len({c.carrier for c in found}) == len(found)
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    assert {c.pattern for c in found} <= {row.id for row in PATTERNS}
    if found:
        assert sum(c.score for c in found) == pytest.approx(1.0)
