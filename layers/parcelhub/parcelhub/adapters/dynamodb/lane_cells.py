"""The item layout of lane statistics (scorecard cells and the estimates' lane history), shared by the
writer (``scorecards.py``) and the reader (``lanes.py``).

| item       | pk                                               | sk                          |
|------------|--------------------------------------------------|-----------------------------|
| lane cell  | ``LANE#<carrier>#<service>#<level>#<lane key>``  | ``all`` or ``<ISO week>``   |

A cell's counters are numbers named ``c_<counter>`` and its histograms are sparse numbers named
``h_<histogram>_<bucket>``; both only ever grow with ``ADD``, so a fact's contribution is one
``UpdateItem`` per cell whatever the history's size, and cells merge by adding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from parcelhub.domain.lanes import Histogram, LaneLevel, LaneStats

CELL_PREFIX = "LANE#"
ALL_TIME = "all"
COUNTER_PREFIX = "c_"
HISTOGRAM_PREFIX = "h_"
_HISTOGRAM_ATTRIBUTE = re.compile(r"^h_(?P<name>.+)_(?P<bucket>\d+)$")


def cell_pk(carrier: str, service: str, level: LaneLevel, lane_key: str) -> str:
    return f"{CELL_PREFIX}{carrier}#{service}#{level.value}#{lane_key}"


def parse_cell_pk(pk: str) -> tuple[str, str, LaneLevel, str]:
    """``(carrier, service, level, lane key)`` of a cell's partition key."""
    carrier, service, level, lane_key = pk.removeprefix(CELL_PREFIX).split("#", 3)
    return carrier, service, LaneLevel(level), lane_key


def attribute_values(stats: LaneStats) -> dict[str, int]:
    """Attribute name -> increment for every non-zero counter and histogram bucket of ``stats``."""
    values = {COUNTER_PREFIX + name: int(value) for name, value in stats.counters.items() if value}
    for name, histogram in stats.histograms.items():
        for bucket, count in histogram.sparse().items():
            values[f"{HISTOGRAM_PREFIX}{name}_{bucket}"] = count
    return values


def add_expression(stats: LaneStats) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``UpdateExpression``, names and (low-level, typed) values adding ``stats`` to a cell."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    clauses: list[str] = []
    for index, (attribute, increment) in enumerate(sorted(attribute_values(stats).items())):
        names[f"#a{index}"] = attribute
        values[f":a{index}"] = {"N": str(increment)}
        clauses.append(f"#a{index} :a{index}")
    return "ADD " + ", ".join(clauses), names, values


def stats_from_item(item: Mapping[str, Any]) -> LaneStats:
    """A cell item (plain Python values, as ``serialization.from_wire`` gives them) as :class:`LaneStats`."""
    counters: dict[str, int] = {}
    sparse: dict[str, dict[int, int]] = {}
    for attribute, value in item.items():
        if attribute.startswith(COUNTER_PREFIX):
            counters[attribute.removeprefix(COUNTER_PREFIX)] = int(value)
        elif match := _HISTOGRAM_ATTRIBUTE.match(attribute):
            sparse.setdefault(match["name"], {})[int(match["bucket"])] = int(value)
    return LaneStats(counters, {name: Histogram.from_sparse(buckets) for name, buckets in sparse.items()})
