"""The :class:`~parcelhub.ports.capacity.CapacityLedger` on the single table.

A carrier's items share the partition ``CAPACITY#<carrier>``:

* ``DAY#<yyyy-mm-dd>`` (local day): ``intake`` (atomic ``ADD``), expiring after :data:`DAY_TTL`;
* ``DAY#balance``: the balance as stated (``level``, ``source``, ``as_of``) and the waybills counted
  since (``used``). The sort key sorts after every date, so one ``Query`` reads a carrier's recent days and
  its balance together;
* ``SHIPMENT#<shipment id>``: the marker that makes counting a waybill idempotent.

``reserve`` (before a create) is one ``TransactWriteItems``: the marker ``Put`` conditional on
``attribute_not_exists``, the day's ``ADD intake 1`` conditional on ``intake < cap``, the balance's ``ADD used
1`` conditional on ``level > used``. Each transaction is atomic and its conditions are checked against the
committed items, so concurrent creates cannot take a carrier past its cap, and a retried step counts once.
DynamoDB cancels a transaction that collides with a concurrent one on the same item (``TransactionConflict``)
rather than queueing it: it is sent again with jitter (``_transact``). ``release`` (the create failed)
takes the three back, for the day the count was made; ``record_intake`` (a waybill recorded without a
reservation, e.g. found after an unclear outcome) counts without the conditions. The standing of the
candidates is one eventually consistent ``BatchGetItem`` (two keys a carrier), which the smart choice
shares with the lane cells' read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.lanes import BATCH_GET_MAX_KEYS, LaneHistoryRecords, lane_keys, lane_stats_of
from parcelhub.adapters.dynamodb.table import TransactionCanceled
from parcelhub.domain.capacity import CapacityBlock, Reservation, Standing
from parcelhub.domain.lanes import Lane, LaneLevel, LaneStats
from parcelhub.ports.errors import StoreUnavailable

BALANCE_SK = "DAY#balance"  # 'b' sorts after every digit: the last item of a carrier's DAY# range
DAY_TTL = timedelta(days=120)
MARKER_TTL = timedelta(days=45)
#: a transaction cancelled by a concurrent one on the same item is sent again this many times in all
CONFLICT_ATTEMPTS = 5
#: the first retry waits up to twice this many seconds (full jitter), doubling each time
CONFLICT_BACKOFF = 0.02


def capacity_pk(carrier: str) -> str:
    return f"CAPACITY#{carrier}"


def day_sk(day: date) -> str:
    return f"DAY#{day.isoformat()}"


def _standing(day_item: Mapping[str, Any] | None, balance_item: Mapping[str, Any] | None) -> Standing:
    intake = int(day_item.get("intake", 0)) if day_item else 0
    if not balance_item or "level" not in balance_item:
        return Standing(intake_today=intake)
    left = int(balance_item["level"]) - int(balance_item.get("used", 0))
    as_of = datetime.fromisoformat(str(balance_item["as_of"])) if "as_of" in balance_item else None
    return Standing(intake, left, str(balance_item.get("source")), as_of)


class CapacityRecords(LaneHistoryRecords):
    def standing(self, carriers: Sequence[str], day: date) -> Mapping[str, Standing]:
        return self.lanes_and_standing(carriers, "", None, day)[1]

    def lanes_and_standing(
        self, carriers: Sequence[str], service: str, lane: Lane | None, day: date
    ) -> tuple[Mapping[tuple[str, LaneLevel], LaneStats], Mapping[str, Standing]]:
        wanted = list(dict.fromkeys(carriers))
        cells = lane_keys(wanted, service, lane) if lane is not None else []
        counters = [(capacity_pk(c), sk) for c in wanted for sk in (day_sk(day), BALANCE_SK)]
        if len(cells) + len(counters) > BATCH_GET_MAX_KEYS:
            raise ValueError(f"one read holds {BATCH_GET_MAX_KEYS} keys: {len(wanted)} carriers is too many")
        items = self._batch_get([*cells, *counters], what="lane cells and capacity")
        lanes = lane_stats_of([i for i in items if not str(i["pk"]).startswith("CAPACITY#")])
        found = {(str(i["pk"]), str(i["sk"])): i for i in items if str(i["pk"]).startswith("CAPACITY#")}
        standing = {
            c: _standing(found.get((capacity_pk(c), day_sk(day))), found.get((capacity_pk(c), BALANCE_SK)))
            for c in wanted
        }
        return lanes, standing

    def reserve(self, carrier: str, shipment_id: str, day: date, cap: int | None) -> Reservation | CapacityBlock:
        try:
            self._transact(self._count_items(carrier, shipment_id, day, cap, True))
        except TransactionCanceled as cancelled:
            codes = [reason.get("Code") for reason in cancelled.reasons]
            if len(codes) != 3 or "ConditionalCheckFailed" not in codes:
                raise
            if codes[0] == "ConditionalCheckFailed":
                return Reservation.HELD  # counted before (a retried step, another run): still counted
            return (
                CapacityBlock.CAP_REACHED if codes[1] == "ConditionalCheckFailed" else CapacityBlock.BALANCE_EXHAUSTED
            )
        return Reservation.NEW

    def record_intake(self, carrier: str, shipment_id: str, day: date) -> bool:
        try:
            self._transact(self._count_items(carrier, shipment_id, day, None, False))
        except TransactionCanceled as cancelled:
            first = cancelled.reasons[0] if cancelled.reasons else {}
            if first.get("Code") == "ConditionalCheckFailed":
                return False  # counted before (at its reservation, or a retried step)
            raise
        return True

    def release(self, carrier: str, shipment_id: str, day: date) -> bool:
        pk, sk = capacity_pk(carrier), f"SHIPMENT#{shipment_id}"
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": ser.to_wire({"pk": pk, "sk": sk}),
                    "ConditionExpression": "#day = :day",  # counted on that day (absent: nothing to give back)
                    "ExpressionAttributeNames": {"#day": "day"},
                    "ExpressionAttributeValues": ser.to_wire({":day": day.isoformat()}),
                }
            },
            self._add(pk, day_sk(day), "intake", -1),
            self._add(pk, BALANCE_SK, "used", -1),
        ]
        try:
            self._transact(items)
        except TransactionCanceled as cancelled:
            first = cancelled.reasons[0] if cancelled.reasons else {}
            if first.get("Code") == "ConditionalCheckFailed":
                return False  # released meanwhile, or never counted that day
            raise
        return True

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """One ``TransactWriteItems``, asked again (jittered backoff) when DynamoDB cancels it for a
        conflict with a concurrent transaction on the same item - every create of a carrier's day writes
        that day's item, so under a burst they collide (a cancelled transaction wrote nothing). Still
        conflicting after :data:`CONFLICT_ATTEMPTS`: ``StoreUnavailable``, which the workflow retries."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                self._call("transact_write_items", TransactItems=items)
                return
            except StoreUnavailable as busy:
                if busy.code != "TransactionCanceledException" or attempt == CONFLICT_ATTEMPTS:
                    raise
                pause = random.uniform(0, CONFLICT_BACKOFF * 2**attempt)  # noqa: S311 - jitter, not a secret  # nosec B311
                time.sleep(pause)

    def _count_items(
        self, carrier: str, shipment_id: str, day: date, cap: int | None, guard_balance: bool
    ) -> list[dict[str, Any]]:
        """The marker (new), the day's intake +1 (under the cap) and the balance's used +1 (while some is
        left: ``level > used``, two attributes compared in one condition)."""
        pk, now = capacity_pk(carrier), datetime.now(UTC)
        marker = {"pk": pk, "sk": f"SHIPMENT#{shipment_id}", "day": day.isoformat(),
                  "expires_at": ser.epoch(now + MARKER_TTL)}  # fmt: skip
        intake = self._add(pk, day_sk(day), "intake", 1)
        intake["Update"]["UpdateExpression"] += " SET expires_at = if_not_exists(expires_at, :ttl)"
        intake["Update"]["ExpressionAttributeValues"] |= ser.to_wire({":ttl": ser.epoch(now + DAY_TTL)})
        if cap is not None:
            intake["Update"]["ConditionExpression"] = "attribute_not_exists(#n) OR #n < :cap"
            intake["Update"]["ExpressionAttributeValues"] |= ser.to_wire({":cap": cap})
        used = self._add(pk, BALANCE_SK, "used", 1)
        if guard_balance:
            used["Update"]["ConditionExpression"] = "attribute_not_exists(#level) OR #level > #n"
            used["Update"]["ExpressionAttributeNames"]["#level"] = "level"
        return [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": ser.to_wire(marker),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            intake,
            used,
        ]

    def _add(self, pk: str, sk: str, name: str, amount: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": ser.to_wire({"pk": pk, "sk": sk}),
                "UpdateExpression": "ADD #n :amount",
                "ExpressionAttributeNames": {"#n": name},
                "ExpressionAttributeValues": ser.to_wire({":amount": amount}),
            }
        }

    def intake_history(self, carrier: str, since: date, until: date) -> tuple[Mapping[date, int], Standing]:
        items = self._query_range(capacity_pk(carrier), day_sk(since), BALANCE_SK)
        history: dict[date, int] = {}
        balance: dict[str, Any] | None = None
        for item in items:
            sk = str(item["sk"])
            if sk == BALANCE_SK:
                balance = item
            elif sk <= day_sk(until):
                history[date.fromisoformat(sk.removeprefix("DAY#"))] = int(item.get("intake", 0))
        return history, _standing({"intake": history.get(until, 0)}, balance)

    def set_balance(self, carrier: str, balance: int, source: str, as_of: datetime) -> None:
        self._call(
            "update_item",
            TableName=self.table_name,
            Key=ser.to_wire({"pk": capacity_pk(carrier), "sk": BALANCE_SK}),
            UpdateExpression="SET #level = :level, #used = :zero, #source = :source, as_of = :as_of",
            ExpressionAttributeNames={"#level": "level", "#used": "used", "#source": "source"},
            ExpressionAttributeValues=ser.to_wire(
                {":level": balance, ":zero": 0, ":source": source, ":as_of": ser.iso(as_of)}
            ),
        )

    def _query_range(self, pk: str, low: str, high: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": ser.to_wire({":pk": pk, ":low": low, ":high": high}),
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self._call("query", **params)
            items.extend(ser.from_wire(wire) for wire in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
