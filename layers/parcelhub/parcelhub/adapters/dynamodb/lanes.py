"""The :class:`~parcelhub.ports.analytics.LaneHistory` port: the all-time lane cells an estimate reads.

One ``BatchGetItem`` for every (carrier, level) cell of the lane — city lane, province lane and
carrier-national, sk ``all`` (layout in :mod:`parcelhub.adapters.dynamodb.lane_cells`; the scorecard
writer maintains them) — whatever the history's size. Eventually consistent (half the read cost; a delivery
recorded a second ago changes no estimate). Keys DynamoDB leaves unprocessed (throttling) are asked again,
a few times, before the port says the store is unavailable (``Table._batch_get``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from parcelhub.adapters.dynamodb.lane_cells import ALL_TIME, cell_pk, parse_cell_pk, stats_from_item
from parcelhub.adapters.dynamodb.table import BATCH_GET_MAX_KEYS, Table
from parcelhub.domain.lanes import Lane, LaneLevel, LaneStats, lane_key

#: the levels an estimate falls back through (the scorecards' destination-province roll-up is not one)
_LEVELS = (LaneLevel.CITY, LaneLevel.PROVINCE, LaneLevel.NATIONAL)


def lane_keys(carriers: Sequence[str], service: str, lane: Lane) -> list[tuple[str, str]]:
    """The (pk, sk) of every all-time cell an estimate of these carriers on the lane may read."""
    pks = dict.fromkeys(cell_pk(c, service, level, lane_key(lane, level)) for c in carriers for level in _LEVELS)
    return [(pk, ALL_TIME) for pk in pks]


def lane_stats_of(items: Sequence[Mapping[str, Any]]) -> dict[tuple[str, LaneLevel], LaneStats]:
    found: dict[tuple[str, LaneLevel], LaneStats] = {}
    for item in items:
        carrier, _, level, _ = parse_cell_pk(str(item["pk"]))
        found[(carrier, level)] = stats_from_item(item)
    return found


class LaneHistoryRecords(Table):
    def lane_stats(
        self, carriers: Sequence[str], service: str, lane: Lane
    ) -> Mapping[tuple[str, LaneLevel], LaneStats]:
        keys = lane_keys(carriers, service, lane)
        if len(keys) > BATCH_GET_MAX_KEYS:
            raise ValueError(f"one read holds {BATCH_GET_MAX_KEYS} cells: {len(carriers)} carriers is too many")
        return lane_stats_of(self._batch_get(keys, what="lane cells"))


__all__ = ["BATCH_GET_MAX_KEYS", "LaneHistoryRecords", "lane_keys", "lane_stats_of"]
