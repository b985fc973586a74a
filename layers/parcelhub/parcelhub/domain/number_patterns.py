"""The tracking-number pattern table as DATA: which carrier issues numbers of which shape, how much each
shape says about the carrier, and where the shape comes from.

Each row is one published (or inferred) number shape of one carrier. ``certain`` rows are letter-prefixed
shapes only one carrier issues; the all-digit shapes overlap between carriers, so a number matching them
yields several ranked candidates (``prior`` is the row's weight among the rows that match).

Sources, with a confidence mark like REFERENCE.md's:

* ``BF`` — repository ``BF-zh/Courier-Validation``, ``src/pattern/<NAME>.ts`` @ 97e7d48c: one regex per
  Chinese carrier (a number-validation library) [C];
* ``LOCAL`` — public code index, file id 56724721741 (an express-tracking backend's ``detectCarrierLocal``
  prefix fallback, used when Kuaidi100's autonumber is unavailable) [C];
* ``SAMPLE`` — real numbers in published carrier answers kept under ``tests/fixtures/*/published/`` (see
  the ``SOURCES.md`` there) [V for those numbers, the shape around them is our reading];
* ``UPU S10`` — the UPU S10 item identifier (2 letters, 8 digits and a check digit, 2-letter country),
  which China Post and EMS use for letter-form numbers; the service letter is common knowledge [U];
* ``[U]`` rows without a better source are common knowledge, kept at a low prior.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parcelhub.domain.models import Carrier


@dataclass(frozen=True)
class NumberPattern:
    #: stable id (``CarrierCandidate.pattern``)
    id: str
    carrier: Carrier
    #: matched in full against the normalised number (upper-case letters and digits)
    regex: re.Pattern[str]
    #: the row's weight among the rows that match one number (0..1)
    prior: float
    #: only this carrier issues numbers of this shape (letter-prefixed)
    certain: bool
    source: str


def _row(pid: str, carrier: Carrier, regex: str, prior: float, source: str, *, certain: bool = False) -> NumberPattern:
    return NumberPattern(pid, carrier, re.compile(regex), prior, certain, source)


_BF = "BF-zh/Courier-Validation src/pattern/{}.ts @97e7d48 [C]"
_LOCAL = "public code index file id 56724721741, detectCarrierLocal prefix fallback [C]"

#: Order matters only to break ties between equal scores (earlier rows first).
PATTERNS: tuple[NumberPattern, ...] = (
    # ---- letter-prefixed: one carrier each ---------------------------------------------------------
    _row("sf.letter", Carrier.SF, r"SF[0-9A-Z][0-9]{12}", 1.0, _BF.format("SF") + "; SAMPLE SF7444400031887",
         certain=True),
    _row("jd.letter", Carrier.JD, r"JD[0-9A-Z]{2}[0-9]{11}", 1.0, _BF.format("JD"), certain=True),
    _row("yto.letter", Carrier.YTO, r"YT[0-9]{13}", 1.0, _BF.format("YTO") + "; SAMPLE YT4318407829600", certain=True),
    _row("jtsd.letter", Carrier.JTSD, r"JT[0-9]{13}", 1.0, _BF.format("JT"), certain=True),
    _row("dbl.letter", Carrier.DBL, r"DPK[0-9]{12}", 1.0, _BF.format("DPK"), certain=True),
    _row(
        "cainiao.lp", Carrier.CAINIAO, r"LP[0-9]{14}", 1.0,
        "REFERENCE.md §4 Cainiao LINK example mailNo LP00000000000001 [U: the example is fake-shaped]", certain=True,
    ),
    _row("cainiao.cn", Carrier.CAINIAO, r"CN[0-9]{14}", 0.9, "common knowledge [U]: Cainiao CN + 14 digits",
         certain=True),
    _row("ems.s10", Carrier.EMS, r"E[A-Z][0-9]{9}CN", 1.0, "UPU S10, service letter E = EMS [U]", certain=True),
    _row(
        "yzpy.s10", Carrier.YZPY, r"[CKLRV][A-Z][0-9]{9}CN", 0.9,
        "UPU S10, service letters C parcels / R registered / L,V,K small packets = China Post [U]", certain=True,
    ),
    # ---- all digits: overlapping, ranked by prior --------------------------------------------------
    _row("zto.14", Carrier.ZTO, r"7[3-68][0-9]{12}", 0.9, _BF.format("ZTO")),
    _row("zto.local", Carrier.ZTO, r"(?:75|78)[0-9]{10,12}", 0.6, _LOCAL),
    _row("zto.15", Carrier.ZTO, r"7[0-9]{14}", 0.3, "common knowledge [U]: ZTO 15-digit numbers start 7"),
    _row("zto.12", Carrier.ZTO, r"[567][0-9]{11}", 0.2, "common knowledge [U]: older ZTO 12-digit numbers start 5/6/7"),
    _row("sto.bf", Carrier.STO, r"(?:77|43)[0-9]{12,15}", 0.8, _BF.format("STO") + "; SAMPLE 773014136444784"),
    _row("sto.local", Carrier.STO, r"(?:77|88)[0-9]{10,12}", 0.6, _LOCAL),
    _row("sto.268", Carrier.STO, r"268[0-9]{9}", 0.4, "common knowledge [U]: older STO 12-digit numbers start 268"),
    _row("yd.bf", Carrier.YD, r"[34][0-9]{14}|5[0-9]{12}", 0.7, _BF.format("YUNDA")),
    _row(
        "yd.local", Carrier.YD, r"(?:31|33|35|36|37|38|39|43|45|46|55)[0-9]{11,13}", 0.7,
        _LOCAL + "; SAMPLE 3999043346251, 4310508235533 (46 [U])",
    ),
    _row("yd.12", Carrier.YD, r"3[0-9]{11}", 0.3, "SAMPLE 390141793061 (Kdniao doc, YD) [U: shape from one number]"),
    _row("ems.10_11", Carrier.EMS, r"1[01][0-9]{11}", 0.8, "common knowledge [U]: EMS domestic 13 digits start 10/11"),
    _row("ems.bf", Carrier.EMS, r"[189][0-9]{12}", 0.5, _BF.format("EMS") + " (邮政: EMS and China Post)"),
    _row("yzpy.98_99", Carrier.YZPY, r"9[89][0-9]{11}", 0.8, "common knowledge [U]: 邮政快递包裹 13 digits"
         " start 98/99"),
    _row("yzpy.bf", Carrier.YZPY, r"[189][0-9]{12}", 0.4, _BF.format("EMS") + " (邮政: EMS and China Post)"),
    _row("cainiao.621", Carrier.CAINIAO, r"621[0-9]{12}", 0.8, _BF.format("CN")),
    _row(
        "sf.12", Carrier.SF, r"[0-9]{12}", 0.4,
        "SAMPLE 118461988807 (Kdniao doc), 504075299146 and 765698489802 (Kuaidi100 samples): SF 12 digits",
    ),
    _row("dbl.digits", Carrier.DBL, r"[0-9]{8,10}", 0.5, "common knowledge [U]: Deppon 8-10 digits"
         " (quoted from 德邦官网)"),
)  # fmt: skip
