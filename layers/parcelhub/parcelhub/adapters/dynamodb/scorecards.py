"""The ``Scorecards`` port on the single table: a delivery fact and its scorecard cells in one transaction.

``record_fact`` is one ``TransactWriteItems``: a ``Put`` of the fact item (``FACT#<shipment id>`` /
``FACT``, conditional on ``attribute_not_exists``) and one ``ADD`` ``UpdateItem`` per cell the fact
belongs to (carrier x service x {city lane, origin province -> destination province, destination
province, national} x {ISO week, all}: 8 cells, see :mod:`lane_cells`). A fact recorded twice cancels
the transaction on its first condition and adds nothing, so a retried or replayed stream record counts
once; the write's size never depends on the history's (9 items, 1 request, whatever was recorded before).

Each cell also carries the sparse ``scorecard`` index's keys (``card_pk`` = ``CARD#<level>#<period>``,
``card_sk`` = ``<carrier>#<service>#<lane key>``): a scorecard query is one ``Query`` per period and level,
never a scan. Fact items expire after :data:`FACT_TTL` (they only guard against double counting, which the
stream's 24 h retention bounds; the history is in S3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from parcelhub.adapters import fact_records
from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.lane_cells import ALL_TIME, add_expression, cell_pk, parse_cell_pk, stats_from_item
from parcelhub.adapters.dynamodb.table import Table, TransactionCanceled
from parcelhub.domain.lanes import DeliveryFact, LaneLevel, LaneStats, contribution, lane_key
from parcelhub.ports.analytics import ScorecardCell

FACT_SK = "FACT"
FACT_TTL = timedelta(days=90)
CARD_INDEX = "scorecard"
#: the levels a fact is added to (city lane, province lane, destination province, carrier-national)
LEVELS = (LaneLevel.CITY, LaneLevel.PROVINCE, LaneLevel.DESTINATION, LaneLevel.NATIONAL)


def fact_pk(shipment_id: str) -> str:
    return f"FACT#{shipment_id}"


def card_pk(level: LaneLevel, period: str) -> str:
    return f"CARD#{level.value}#{period}"


class DynamoScorecards(Table):
    """Records delivery facts into scorecard cells and answers scorecard queries."""

    def fact_write(self, fact: DeliveryFact, now: datetime | None = None) -> list[dict[str, Any]]:
        """The transaction's items (the bench counts them)."""
        record = fact_records.to_record(fact)
        item = {
            "pk": fact_pk(fact.shipment_id),
            "sk": FACT_SK,
            "fact": json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
            "expires_at": ser.epoch((now or datetime.now(UTC)) + FACT_TTL),
        }
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": ser.to_wire(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        stats = contribution(fact)
        expression, names, values = add_expression(stats)
        names |= {"#cp": "card_pk", "#cs": "card_sk"}
        for level in LEVELS:
            key = lane_key(fact.lane, level)
            for period in (record["week"], ALL_TIME):
                writes.append(
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"pk": {"S": cell_pk(fact.carrier, fact.service, level, key)}, "sk": {"S": period}},
                            "UpdateExpression": f"{expression} SET #cp = :cp, #cs = :cs",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values
                            | {
                                ":cp": {"S": card_pk(level, period)},
                                ":cs": {"S": f"{fact.carrier}#{fact.service}#{key}"},
                            },
                        }
                    }
                )
        return writes

    def record_fact(self, fact: DeliveryFact) -> bool:
        try:
            self._call("transact_write_items", TransactItems=self.fact_write(fact))
        except TransactionCanceled as cancelled:
            first = cancelled.reasons[0] if cancelled.reasons else {}
            if first.get("Code") == "ConditionalCheckFailed":
                return False  # recorded before: its cells have it already
            raise
        return True

    def recorded_fact(self, shipment_id: str) -> DeliveryFact | None:
        item = self._get_item(fact_pk(shipment_id), FACT_SK)
        return fact_records.from_record(json.loads(str(item["fact"]))) if item else None

    def scorecards(
        self, *, carrier: str | None, level: LaneLevel, lane: str | None, periods: Sequence[str]
    ) -> list[ScorecardCell]:
        merged: dict[tuple[str, str, str], LaneStats] = {}
        for period in dict.fromkeys(periods):
            for item in self._cells(level, period, carrier):
                cell_carrier, _service, _level, key = parse_cell_pk(str(item["pk"]))
                if lane is not None and key != lane:
                    continue
                slot = (cell_carrier, key, period)
                stats = stats_from_item(item)
                merged[slot] = merged[slot] + stats if slot in merged else stats
        return [
            ScorecardCell(carrier=c, level=level, lane=key, period=period, stats=stats)
            for (c, key, period), stats in sorted(merged.items())
        ]

    def _cells(self, level: LaneLevel, period: str, carrier: str | None) -> list[dict[str, Any]]:
        condition = "#cp = :cp"
        values: dict[str, Any] = {":cp": {"S": card_pk(level, period)}}
        if carrier:
            condition += " AND begins_with(#cs, :cs)"
            values[":cs"] = {"S": f"{carrier}#"}
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": CARD_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#cp": "card_pk", **({"#cs": "card_sk"} if carrier else {})},
            "ExpressionAttributeValues": values,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self._call("query", **params)
            items += [ser.from_wire(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
