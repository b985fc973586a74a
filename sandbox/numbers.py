"""Tracking numbers in the carriers' real formats, and the sandbox's own guess of a number's carrier.

This is the sandboxes' ground truth, written independently of ``parcelhub.domain.detection`` (the
sandbox plays the carriers; it must not learn their formats from the code under test):

* ``SHAPES`` — carrier code -> the number shapes it issues, each from a published source (the same
  public sources the detection table cites, read separately: published sample numbers under
  ``tests/fixtures/*/published/``, BF-zh/Courier-Validation's per-carrier patterns, the UPU S10 form);
* ``published_numbers(carrier, count, rng)`` — ``count`` distinct numbers of that carrier, cycling
  through its shapes (deterministic for a seeded ``rng``);
* ``guess_carriers(number)`` — what an aggregator's recognition answers for a number it has never seen:
  a small prefix/length table, ranked, possibly empty.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """``prefix`` (one of ``prefixes``) + random digits up to ``length`` characters, + ``suffix``."""

    prefixes: tuple[str, ...]
    length: int  # without the suffix
    suffix: str = ""
    #: a random capital after the prefix (the UPU S10 second letter)
    letter: bool = False
    source: str = ""

    def make(self, rng: random.Random) -> str:
        prefix = rng.choice(self.prefixes)
        if self.letter:
            prefix += rng.choice(string.ascii_uppercase)
        digits = "".join(rng.choice(string.digits) for _ in range(self.length - len(prefix)))
        return prefix + digits + self.suffix


_BF = "BF-zh/Courier-Validation src/pattern/{}.ts"

#: carrier code (Kdniao ShipperCode) -> its number shapes, most common first
SHAPES: dict[str, tuple[Shape, ...]] = {
    "SF": (
        Shape(("SF",), 15, source=_BF.format("SF") + "; published SF7444400031887"),
        Shape(("1", "5", "7"), 12, source="published 118461988807, 504075299146, 765698489802"),
    ),
    "ZTO": (
        Shape(("73", "75", "76", "78"), 14, source=_BF.format("ZTO") + "; 7[3-68] + 12 digits"),
        Shape(("75", "78"), 12, source="a tracking backend's prefix fallback (75|78) + 10-12 digits"),
    ),
    "YTO": (Shape(("YT",), 15, source=_BF.format("YTO") + "; published YT4318407829600"),),
    "STO": (
        Shape(("77",), 15, source=_BF.format("STO") + "; published 773014136444784"),
        Shape(("88",), 13, source="a tracking backend's prefix fallback (77|88) + 10-12 digits"),
        Shape(("268",), 12, source="older STO numbers [U]"),
    ),
    "YD": (
        Shape(("31", "43", "46"), 13, source="published 3999043346251, 4310508235533; 31/46 [U]"),
        Shape(("3", "4"), 15, source=_BF.format("YUNDA") + "; [34] + 14 digits"),
    ),
    "JTSD": (Shape(("JT",), 15, source=_BF.format("JT")),),
    "EMS": (
        Shape(("10", "11"), 13, source=_BF.format("EMS") + "; EMS domestic 10/11 [U]"),
        Shape(("E",), 11, suffix="CN", letter=True, source="UPU S10: E = EMS"),
    ),
    "YZPY": (
        Shape(("98", "99"), 13, source=_BF.format("EMS") + "; 邮政快递包裹 98/99 [U]"),
        Shape(("C", "R"), 11, suffix="CN", letter=True, source="UPU S10: C parcel / R registered"),
    ),
    "JD": (Shape(("JDVA", "JDVB", "JDVC", "JDAZ"), 15, source=_BF.format("JD") + "; JD + 2 + 11 digits"),),
    "DBL": (
        Shape(("DPK",), 15, source=_BF.format("DPK")),
        Shape(("5", "6", "7", "8"), 10, source="Deppon 8-10 digits [U]"),
    ),
    "CNSD": (
        Shape(("LP",), 16, source="REFERENCE §4 mailNo LP00000000000001"),
        Shape(("621",), 15, source=_BF.format("CN")),
    ),
    "HTKY": (Shape(("55",), 15, source="older 百世 numbers [U]"),),
    "ZJS": (Shape(("A",), 10, source="宅急送 [U]"),),
    "UC": (Shape(("5",), 12, source="优速 [U]"),),
}


def published_numbers(carrier: str, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct numbers in ``carrier``'s real formats (its shapes in turn)."""
    shapes = SHAPES[carrier]
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        number = shapes[len(out) % len(shapes)].make(rng)
        if number not in seen:
            seen.add(number)
            out.append(number)
    return out


#: the sandbox aggregator's own recognition for unknown numbers: (prefix, lengths, carriers best first)
_GUESSES: tuple[tuple[str, tuple[int, ...], tuple[str, ...]], ...] = (
    ("SF", (15,), ("SF",)),
    ("YT", (15,), ("YTO",)),
    ("JT", (15,), ("JTSD",)),
    ("JD", (15,), ("JD",)),
    ("DPK", (15,), ("DBL",)),
    ("LP", (16,), ("CNSD",)),
    ("621", (15,), ("CNSD",)),
    ("7", (14,), ("ZTO", "STO")),
    ("77", (15,), ("STO", "ZTO")),
    ("88", (13,), ("STO",)),
    ("3", (13, 15), ("YD",)),
    ("4", (13, 15), ("YD", "STO")),
    ("1", (13,), ("EMS", "YZPY")),
    ("9", (13,), ("YZPY", "EMS")),
    ("", (12,), ("SF", "ZTO")),
)


def guess_carriers(number: str) -> list[str]:
    """Carriers an aggregator would name for a number it has no record of, best first (may be empty).
    S10 numbers (``EA123456789CN``) are EMS when the service letter is E, else China Post."""
    if len(number) == 13 and number.endswith("CN") and number[:2].isalpha():
        return ["EMS"] if number.startswith("E") else ["YZPY"]
    found: list[str] = []
    for prefix, lengths, carriers in _GUESSES:
        if number.startswith(prefix) and len(number) in lengths:
            found += [carrier for carrier in carriers if carrier not in found]
    return found
