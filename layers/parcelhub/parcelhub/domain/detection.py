"""Which carrier issued a tracking number, from its shape alone (pure; the table is
``parcelhub.domain.number_patterns``).

* ``normalise_number`` — what a person pasted -> the number as carriers print it (or ``ValueError``);
* ``detect`` — the carriers whose published number shapes match, best first. A letter-prefixed number
  matches a ``certain`` row of one carrier; an all-digit number usually matches several carriers' rows,
  so the answer is a ranked list for an aggregator's recognition API to confirm.

A carrier's score is the prior of its best matching row over the sum of those priors (so the scores of
one answer add up to 1); ties keep the table's order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parcelhub.domain.models import Carrier
from parcelhub.domain.number_patterns import PATTERNS, NumberPattern

#: longest number accepted (Kuaidi100 refuses numbers over 32 characters: subscribe returnCode 700)
MAX_LENGTH = 32
_SEPARATORS = re.compile(r"[\s\-]+")
_VALID = re.compile(r"[A-Z0-9]+")


@dataclass(frozen=True)
class CarrierCandidate:
    carrier: Carrier
    #: 0..1; the scores of one ``detect`` answer add up to 1
    score: float
    #: the number has a shape only this carrier issues
    certain: bool
    #: id of the table row that matched (``number_patterns.PATTERNS``)
    pattern: str


def normalise_number(text: str) -> str:
    """Strip, drop inner spaces and dashes, upper-case. ``ValueError`` says what is wrong with the text."""
    number = _SEPARATORS.sub("", text.strip()).upper()
    if not number:
        raise ValueError("tracking number is empty")
    if len(number) > MAX_LENGTH:
        raise ValueError(f"tracking number is {len(number)} characters long; at most {MAX_LENGTH}")
    if not _VALID.fullmatch(number) or not number.isascii():
        bad = sorted({ch for ch in number if not ("A" <= ch <= "Z" or "0" <= ch <= "9")})
        raise ValueError(f"tracking number may hold only letters A-Z and digits 0-9, not {''.join(bad)!r}")
    return number


def detect(number: str) -> list[CarrierCandidate]:
    """The carriers that may have issued ``number`` (normalised first), best first; empty when no
    published shape matches."""
    normalised = normalise_number(number)
    best: dict[Carrier, tuple[int, NumberPattern]] = {}
    for index, row in enumerate(PATTERNS):
        if not row.regex.fullmatch(normalised):
            continue
        held = best.get(row.carrier)
        if held is None or row.prior > held[1].prior:
            best[row.carrier] = (index, row)
    total = sum(row.prior for _, row in best.values())
    ranked = sorted(best.values(), key=lambda found: (-found[1].prior, found[0]))
    return [
        CarrierCandidate(carrier=row.carrier, score=row.prior / total, certain=row.certain, pattern=row.id)
        for _, row in ranked
    ]
