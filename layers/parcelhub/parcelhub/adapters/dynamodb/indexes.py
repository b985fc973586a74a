"""The sparse, write-sharded stall and poll indexes: a sweep reads what is due, never the table."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Expr, Table
from parcelhub.domain.status import Status
from parcelhub.ports.errors import (
    ShipmentNotFound,
)
from parcelhub.ports.store import DuePoll, DueStall, QueryStats, StallMark


class StallIndexRecords(Table):
    """The :class:`~parcelhub.ports.store.StallIndex` port."""

    def set_stall(self, shipment_id: str, mark: StallMark) -> None:
        """Put the shipment in the stall index; a no-op when this episode was already alerted (a retried
        step re-setting the same mark must neither re-alert nor bring the entry back for every sweep)."""
        expr = Expr()
        self._set_stall_attrs(expr, shipment_id, mark)
        alerted = expr.n("stall_alerted")
        condition = (
            f"attribute_exists({expr.n('pk')})"
            f" AND (attribute_not_exists({alerted}) OR {alerted} <> {expr.v(mark.episode)})"
        )
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition)
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None

    def clear_stall(self, shipment_id: str) -> None:
        self._must_exist(shipment_id, Expr().remove(*ser.STALL_ATTRS))

    def query_due_stalls(
        self, now: datetime, shards: int | None = None, stats: QueryStats | None = None
    ) -> Iterator[DueStall]:
        for shard in range(shards or self.shards):
            start: dict[str, Any] | None = None
            while True:
                items, start = self._query_page(
                    ser.STALL_INDEX,
                    ("stall_pk", "stall_sk"),
                    ser.stall_pk(shard),
                    now,
                    start=start,
                    page_limit=None,
                    stats=stats,
                    shard=shard,
                )
                yield from (_due_stall(item) for item in items)
                if not start:
                    break

    def mark_stall_alerted(self, shipment_id: str, episode: str, now: datetime) -> bool:
        """Claim the alert of this episode. The entry leaves the index (its due time is kept in
        ``stall_alerted_due``), so the next sweeps don't read it again."""
        expr = Expr()
        expr.set("stall_alerted", episode).set("stall_alerted_at", ser.iso(now))
        expr.set_raw(f"{expr.n('stall_alerted_due')} = {expr.n('stall_sk')}")
        expr.remove("stall_pk", "stall_sk")
        alerted = expr.n("stall_alerted")
        value = expr.v(episode)
        condition = (
            f"{expr.n('stall_episode')} = {value} AND attribute_exists({expr.n('stall_sk')})"
            f" AND (attribute_not_exists({alerted}) OR {alerted} <> {value})"
        )
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition)
        except ConditionFailed:
            return False
        return True

    # ------------------------------------------------------------------------------------------ polls


class PollIndexRecords(Table):
    """The :class:`~parcelhub.ports.store.PollIndex` port."""

    def set_poll_due(self, shipment_id: str, due_at: datetime) -> None:
        expr = Expr()
        expr.set("poll_pk", ser.poll_pk(ser.shard_of(shipment_id, self.shards))).set("poll_sk", ser.iso(due_at))
        self._must_exist(shipment_id, expr)

    def clear_poll(self, shipment_id: str) -> None:
        self._must_exist(shipment_id, Expr().remove(*ser.POLL_ATTRS))

    def query_due_polls(
        self, now: datetime, shards: int | None = None, limit: int = 100, stats: QueryStats | None = None
    ) -> list[DuePoll]:
        """Due polls, oldest due first within a shard and fair across shards: each shard first gets one
        page of ``ceil(limit / shards)``; shards with more fill what is left, in shard order."""
        count = shards or self.shards
        share = max(1, math.ceil(limit / count))
        found: list[DuePoll] = []
        more: dict[int, dict[str, Any]] = {}
        for shard in range(count):
            items, start = self._query_page(
                ser.POLL_INDEX,
                ("poll_pk", "poll_sk"),
                ser.poll_pk(shard),
                now,
                start=None,
                page_limit=share,
                stats=stats,
                shard=shard,
            )
            found.extend(_due_poll(item) for item in items)
            if start:
                more[shard] = start
        for shard, first in more.items():
            start = first
            while start and len(found) < limit:
                items, start = self._query_page(
                    ser.POLL_INDEX,
                    ("poll_pk", "poll_sk"),
                    ser.poll_pk(shard),
                    now,
                    start=start,
                    page_limit=limit - len(found),
                    stats=stats,
                    shard=shard,
                )
                found.extend(_due_poll(item) for item in items)
        return found[:limit]

    # ------------------------------------------------------------------------------------ parked pushes


def _opt_time(value: Any) -> datetime | None:
    return ser.parse_iso(str(value)) if value else None


def _due_stall(item: Mapping[str, Any]) -> DueStall:
    return DueStall(
        shipment_id=str(item["shipment_id"]),
        due_at=ser.parse_iso(str(item["stall_sk"])),
        rule=str(item.get("stall_rule", "")),
        episode=str(item.get("stall_episode", "")),
        order_id=str(item.get("order_id", "")),
        status=Status(item.get("status", Status.PENDING)),
        carrier=item.get("carrier"),
        provider=item.get("provider"),
        tracking_number=item.get("tracking_number"),
        last_event_at=_opt_time(item.get("last_event_at")),
        last_event_text=item.get("last_event_text"),
    )


def _due_poll(item: Mapping[str, Any]) -> DuePoll:
    return DuePoll(
        shipment_id=str(item["shipment_id"]),
        due_at=ser.parse_iso(str(item["poll_sk"])),
        carrier=item.get("carrier"),
        provider=item.get("provider"),
        tracking_number=item.get("tracking_number"),
    )
