"""Shipment records: the shipment item and its order claim (one transaction), waybill, workflow status."""

from __future__ import annotations

from datetime import datetime

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Expr, Table, TransactionCanceled
from parcelhub.domain.models import (
    Carrier,
    CarrierDetection,
    DeliveryReceipt,
    DeliveryWindow,
    SelectionRecord,
    Shipment,
    Waybill,
    WaybillAttempt,
)
from parcelhub.domain.status import Status, SubStatus, is_terminal, precedence_key
from parcelhub.ports.changes import WORKFLOW
from parcelhub.ports.errors import (
    OrderAlreadyExists,
    ShipmentAlreadyExists,
    ShipmentNotFound,
    StatusConflict,
    StoreConflict,
    WaybillAlreadyRecorded,
)


class ShipmentRecords(Table):
    """The :class:`~parcelhub.ports.store.Shipments` port on the single table."""

    def create(self, shipment: Shipment) -> None:
        order_item = {
            "pk": ser.order_pk(shipment.order_id),
            "sk": ser.ORDER,
            "order_id": shipment.order_id,
            "shipment_id": shipment.shipment_id,
            "fingerprint": shipment.request_fingerprint,
            "created_at": ser.iso(shipment.created_at),
        }
        if shipment.lookup_digest:  # the tracking lookup form reads the claim alone (one GetItem)
            order_item["lookup_digest"] = shipment.lookup_digest
        put = {"ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        item = ser.shipment_to_item(shipment)
        if shipment.recovery_due is not None:
            item.update(ser.recovery_attributes(shipment.shipment_id, shipment.recovery_due, self.shards))
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {"Put": {"TableName": self.table_name, "Item": ser.to_wire(item), **put}},
                    {"Put": {"TableName": self.table_name, "Item": ser.to_wire(order_item), **put}},
                ],
            )
        except TransactionCanceled as canceled:
            order_reason = canceled.reasons[1] if len(canceled.reasons) > 1 else {}
            if order_reason.get("Code") == "ConditionalCheckFailed":
                wire = order_reason.get("Item")
                existing = ser.from_wire(wire) if wire else self._get_item(ser.order_pk(shipment.order_id), ser.ORDER)
                existing = existing or {}
                raise OrderAlreadyExists(
                    shipment.order_id,
                    shipment_id=str(existing.get("shipment_id", "")),
                    fingerprint=str(existing.get("fingerprint", "")),
                ) from None
            raise ShipmentAlreadyExists(shipment.shipment_id) from None

    def get(self, shipment_id: str) -> Shipment:
        item = self._get_item(ser.shipment_pk(shipment_id), ser.META)
        if item is None:
            raise ShipmentNotFound(shipment_id)
        return ser.shipment_from_item(item)

    def get_by_order(self, order_id: str) -> Shipment:
        claim = self._get_item(ser.order_pk(order_id), ser.ORDER)
        if claim is None:
            raise ShipmentNotFound(f"order {order_id}")
        return self.get(str(claim["shipment_id"]))

    def save_waybill(
        self,
        shipment_id: str,
        waybill: Waybill,
        attempts: list[WaybillAttempt],
        now: datetime,
        *,
        order_key: str | None = None,
        estimate: DeliveryWindow | None = None,
    ) -> Shipment:
        pk = ser.shipment_pk(shipment_id)
        passes = [True, False]  # first with the status change, then (a tracking status won) without
        while passes:
            set_status = passes[0]
            expr = Expr()
            if order_key is not None:
                # the order it came from is kept, and no longer in flight (a map entry only when it exists)
                expr.set_raw(f"{expr.n('carrier_orders')}.{expr.n(order_key)}.{expr.n('state')} = {expr.v('kept')}")
                expr.remove("open_order")
            expr.set("waybill", waybill.model_dump(mode="json", exclude_none=True))
            expr.set("carrier", waybill.carrier.value).set("provider", waybill.provider.value)
            expr.set("tracking_number", waybill.tracking_number).set("updated_at", ser.iso(now))
            expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
            if estimate is not None:  # the estimate at creation, and the promise the first time
                window = ser.window_value(estimate)
                expr.set("estimated_delivery", window)
                promised = expr.n("promised_delivery")
                expr.set_raw(f"{promised} = if_not_exists({promised}, {expr.v(window)})")
            if attempts:
                expr.set_raw(
                    f"{expr.n('waybill_attempts')} = list_append(if_not_exists({expr.n('waybill_attempts')}, "
                    f"{expr.v([])}), {expr.v([a.model_dump(mode='json') for a in attempts])})"
                )
            condition = f"attribute_exists({expr.n('pk')}) AND attribute_not_exists({expr.n('waybill')})"
            # a cancelled shipment never gets a waybill: cancel wins, whichever arrives first
            condition += f" AND {expr.n('status')} <> {expr.v(Status.CANCELLED.value)}"
            if order_key is not None:
                condition += f" AND attribute_exists({expr.n('carrier_orders')}.{expr.n(order_key)})"
            if set_status:
                expr.set("status", Status.WAYBILL_CREATED.value).set("sub_status", SubStatus.NONE.value)
                expr.set("status_source", WORKFLOW)
                condition += (
                    f" AND attribute_not_exists({expr.n('status_key')})"
                    f" AND {expr.n('status')} IN"
                    f" ({expr.v(Status.PENDING.value)}, {expr.v(Status.WAYBILL_FAILED.value)})"
                )
            try:
                return ser.shipment_from_item(self._update(pk, ser.META, expr, condition, return_values="ALL_NEW"))
            except ConditionFailed as failed:
                if failed.old is None:
                    raise ShipmentNotFound(shipment_id) from None
                current = ser.shipment_from_item(failed.old)
                if current.waybill is not None:
                    if (current.waybill.carrier, current.waybill.tracking_number) == (
                        waybill.carrier,
                        waybill.tracking_number,
                    ):
                        return current
                    raise WaybillAlreadyRecorded(shipment_id, current.waybill) from None
                if current.status is Status.CANCELLED:
                    raise StatusConflict(shipment_id, current.status) from None
                if order_key is not None and order_key not in current.carrier_orders:
                    order_key = None  # an order from before carrier orders were recorded: same pass again
                    continue
                # no waybill yet: the status must not change (a tracking status won …)
                passes.pop(0)
        raise StoreConflict(f"shipment {shipment_id}: waybill could not be recorded")  # pragma: no cover

    def set_status(
        self,
        shipment_id: str,
        status: Status,
        sub_status: SubStatus = SubStatus.NONE,
        *,
        expected: set[Status] | None,
        now: datetime,
    ) -> Shipment:
        if expected is not None and not expected:
            raise ValueError("expected must be None or a non-empty set")
        expr = Expr()
        expr.set("status", status.value).set("sub_status", sub_status.value).set("updated_at", ser.iso(now))
        expr.set("status_source", WORKFLOW)
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        if is_terminal(status):
            expr.remove(*ser.STALL_ATTRS, *ser.POLL_ATTRS)
        if status is Status.CANCELLED:
            # a cancellation wins the order-independent fold: no later carrier scan can undo it
            expr.set("status_key", precedence_key(status, now, "cancelled"))
        condition = f"attribute_exists({expr.n('pk')})"
        if expected is not None:
            allowed = ", ".join(expr.v(s.value) for s in sorted(expected))
            condition += f" AND {expr.n('status')} IN ({allowed})"
        try:
            item = self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition, return_values="ALL_NEW")
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            raise StatusConflict(shipment_id, Status(failed.old["status"])) from None
        return ser.shipment_from_item(item)

    def add_waybill_attempt(self, shipment_id: str, attempt: WaybillAttempt) -> None:
        expr = Expr()
        attempts = expr.n("waybill_attempts")
        expr.set_raw(
            f"{attempts} = list_append(if_not_exists({attempts}, {expr.v([])}),"
            f" {expr.v([attempt.model_dump(mode='json')])})"
        )
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, f"attribute_exists({expr.n('pk')})")
        except ConditionFailed:
            raise ShipmentNotFound(shipment_id) from None

    def set_selection(self, shipment_id: str, selection: SelectionRecord) -> None:
        expr = Expr()
        expr.set("selection", ser.selection_value(selection))
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, f"attribute_exists({expr.n('pk')})")
        except ConditionFailed:
            raise ShipmentNotFound(shipment_id) from None

    def set_detection(self, shipment_id: str, detection: CarrierDetection, *, carrier: Carrier | None = None) -> None:
        expr = Expr()
        expr.set("detection", detection.model_dump(mode="json", exclude_none=True))
        condition = f"attribute_exists({expr.n('pk')})"
        if carrier is not None:  # a correction: the recorded waybill now names the carrier the provider reported
            expr.set("carrier", carrier.value)
            expr.set_raw(f"{expr.n('waybill')}.{expr.n('carrier')} = {expr.v(carrier.value)}")
            condition += f" AND attribute_exists({expr.n('waybill')})"
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition)
        except ConditionFailed:
            raise ShipmentNotFound(shipment_id) from None

    def set_receipt(self, shipment_id: str, receipt: DeliveryReceipt) -> bool:
        expr = Expr()
        expr.set("receipt", ser.model_value(receipt))
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        condition = f"attribute_exists({expr.n('pk')}) AND attribute_not_exists({expr.n('receipt')})"
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition)
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            return False
        return True

    # -------------------------------------------------------------------------------------- tracking
