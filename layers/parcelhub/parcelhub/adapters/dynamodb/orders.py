"""Carrier orders and the recovery index, on the shipment item.

* ``carrier_orders``: a map ``<provider>#<order id>`` -> the order (state, tracking number, cancel count);
  ``open_order``: the key of the one attempt in flight. Opening an order is one conditional write (the
  shipment still wants a waybill, nothing else in flight), so two attempts can never be in flight at once.
* the sparse ``recovery`` index: ``recovery_pk = RECOVER#<shard>``, ``recovery_sk = <due UTC ISO>`` while
  the shipment's workflow has not settled it; the recovery sweep reads what is due.
* a workflow run (``/retry`` or a re-drive) is counted in the same write that makes it possible, so its
  execution name ``<id>-r<n>`` / ``<id>-d<n>`` is never used twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Expr, Table
from parcelhub.domain.models import CarrierOrder, OrderState, Shipment, WaybillAttempt
from parcelhub.domain.status import Status
from parcelhub.ports.errors import OrderInFlight, ShipmentNotFound, StatusConflict
from parcelhub.ports.store import DueRecovery

#: statuses in which a shipment still wants a waybill
WANTS_WAYBILL = (Status.PENDING, Status.WAYBILL_FAILED)
RUN_COUNTERS = {"retry": ("retries", "r"), "redrive": ("redrives", "d")}


class OrderRecords(Table):
    """The :class:`~parcelhub.ports.store.CarrierOrders` port."""

    def open_order(self, shipment_id: str, order: CarrierOrder, now: datetime) -> Shipment:
        expr = Expr()
        orders, key = expr.n("carrier_orders"), expr.n(order.key)
        expr.set_raw(f"{orders}.{key} = {expr.v(order.model_dump(mode='json'))}")
        expr.set("open_order", order.key).set("updated_at", ser.iso(now))
        wanted = ", ".join(expr.v(status.value) for status in WANTS_WAYBILL)
        condition = (
            f"attribute_exists({expr.n('pk')}) AND attribute_not_exists({expr.n('open_order')})"
            f" AND attribute_not_exists({expr.n('waybill')}) AND attribute_not_exists({expr.n('status_key')})"
            f" AND {expr.n('status')} IN ({wanted})"
        )
        try:
            item = self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition, return_values="ALL_NEW")
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            current = ser.shipment_from_item(failed.old)
            if current.open_order == order.key:
                return current  # a retried step: already in flight
            if current.open_order is not None:
                raise OrderInFlight(shipment_id, current.open_order) from None
            raise StatusConflict(shipment_id, current.status) from None
        return ser.shipment_from_item(item)

    def settle_order(
        self,
        shipment_id: str,
        key: str,
        state: OrderState,
        now: datetime,
        *,
        tracking_number: str | None = None,
        attempt: WaybillAttempt | None = None,
        cancel_attempts: int | None = None,
        recovery_due: datetime | None = None,
    ) -> None:
        def build(clear_flight: bool) -> tuple[Expr, str]:
            expr = Expr()
            path = f"{expr.n('carrier_orders')}.{expr.n(key)}"
            expr.set_raw(f"{path}.{expr.n('state')} = {expr.v(state)}")
            expr.set("updated_at", ser.iso(now))
            if tracking_number:
                expr.set_raw(f"{path}.{expr.n('tracking_number')} = {expr.v(tracking_number)}")
            if cancel_attempts is not None:
                expr.set_raw(f"{path}.{expr.n('cancel_attempts')} = {expr.v(cancel_attempts)}")
            if attempt is not None:
                attempts = expr.n("waybill_attempts")
                expr.set_raw(
                    f"{attempts} = list_append(if_not_exists({attempts}, {expr.v([])}),"
                    f" {expr.v([attempt.model_dump(mode='json')])})"
                )
            if recovery_due is not None:
                self._set_recovery_attrs(expr, shipment_id, recovery_due)
            condition = f"attribute_exists({path})"
            if clear_flight:
                expr.remove("open_order")
                condition += f" AND {expr.n('open_order')} = {expr.v(key)}"
            return expr, condition

        pk = ser.shipment_pk(shipment_id)
        if state != "open":
            # no longer in flight: clear the marker when it names this order (a marker of another order is
            # never removed by mistake; when it names another, the plain write below runs)
            expr, condition = build(clear_flight=True)
            try:
                self._update(pk, ser.META, expr, condition)
                return
            except ConditionFailed as failed:
                if failed.old is None:
                    raise ShipmentNotFound(shipment_id) from None
        expr, condition = build(clear_flight=False)
        try:
            self._update(pk, ser.META, expr, condition)
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            raise StatusConflict(shipment_id, Status(failed.old["status"])) from None

    def _set_recovery_attrs(self, expr: Expr, shipment_id: str, due_at: datetime) -> None:
        for name, value in ser.recovery_attributes(shipment_id, due_at, self.shards).items():
            expr.set(name, value)


class RecoveryRecords(Table):
    """The :class:`~parcelhub.ports.store.RecoveryIndex` port."""

    def postpone_recovery(self, shipment_id: str, due_at: datetime) -> None:
        expr = Expr()
        for name, value in ser.recovery_attributes(shipment_id, due_at, self.shards).items():
            expr.set(name, value)
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, f"attribute_exists({expr.n('recovery_pk')})")
        except ConditionFailed:
            return  # settled meanwhile: out of the index, and it stays out

    def clear_recovery(self, shipment_id: str) -> None:
        self._must_exist(shipment_id, Expr().remove(*ser.RECOVERY_ATTRS))

    def finish_run(self, shipment_id: str, due_at: datetime | None) -> None:
        expr = Expr().set("workflow_done", True)
        if due_at is None:
            expr.remove(*ser.RECOVERY_ATTRS)
        else:
            for name, value in ser.recovery_attributes(shipment_id, due_at, self.shards).items():
                expr.set(name, value)
        self._must_exist(shipment_id, expr)

    def query_due_recoveries(self, now: datetime, limit: int = 100) -> list[DueRecovery]:
        share = max(1, math.ceil(limit / self.shards))
        found: list[DueRecovery] = []
        for shard in range(self.shards):
            items, _ = self._query_page(
                ser.RECOVERY_INDEX,
                ("recovery_pk", "recovery_sk"),
                ser.recovery_pk(shard),
                now,
                start=None,
                page_limit=share,
                stats=None,
                shard=shard,
            )
            found.extend(_due_recovery(item) for item in items)
        return sorted(found, key=lambda due: due.due_at)[:limit]

    def begin_run(
        self,
        shipment_id: str,
        kind: str,
        *,
        expected: set[Status],
        recovery_due: datetime,
        now: datetime,
        if_due: datetime | None = None,
    ) -> tuple[Shipment, str]:
        counter, letter = RUN_COUNTERS[kind]
        current = self._get_item(ser.shipment_pk(shipment_id), ser.META)
        if current is None:
            raise ShipmentNotFound(shipment_id)
        count = int(current.get(counter, 0)) + 1
        name = f"{shipment_id}-{letter}{count}"
        expr = Expr()
        expr.set(counter, count).set("updated_at", ser.iso(now)).set("workflow_done", False)
        for attribute, value in ser.recovery_attributes(shipment_id, recovery_due, self.shards).items():
            expr.set(attribute, value)
        if kind == "retry":
            expr.set("status", Status.PENDING.value).set("retry_execution", name)
        allowed = ", ".join(expr.v(status.value) for status in sorted(expected))
        counted = expr.n(counter)
        previous = f"({counted} = {expr.v(count - 1)}" + (
            f" OR attribute_not_exists({counted}))" if count == 1 else ")"
        )
        condition = f"attribute_exists({expr.n('pk')}) AND {expr.n('status')} IN ({allowed}) AND {previous}"
        if if_due is not None:
            condition += f" AND {expr.n('recovery_due')} = {expr.v(ser.iso(if_due))}"
        try:
            item = self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition, return_values="ALL_NEW")
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            raise StatusConflict(shipment_id, Status(failed.old["status"])) from None
        return ser.shipment_from_item(item), name


def _due_recovery(item: Mapping[str, Any]) -> DueRecovery:
    return DueRecovery(shipment_id=str(item["shipment_id"]), due_at=ser.parse_iso(str(item["recovery_sk"])))
