"""Return records: a return shipment with its link on the original (one transaction), its flow's moves."""

from __future__ import annotations

from datetime import datetime

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Expr, Table, TransactionCanceled
from parcelhub.domain.models import PickupBooking, Shipment
from parcelhub.domain.returns import ReturnState
from parcelhub.domain.status import Status, precedence_key
from parcelhub.ports.changes import WORKFLOW
from parcelhub.ports.errors import ShipmentAlreadyExists, ShipmentNotFound
from parcelhub.ports.returns import ReturnStateConflict

#: return states that end the shipment too
_ENDING = frozenset({ReturnState.CANCELLED, ReturnState.EXPIRED})


class ReturnRecords(Table):
    """The :class:`~parcelhub.ports.returns.ReturnRecords` port on the single table."""

    def create_return(self, shipment: Shipment) -> None:
        if not shipment.return_of:
            raise ValueError("a return names the shipment it returns (return_of)")
        link = Expr()
        returns = link.n("returns")
        link.set_raw(
            f"{returns} = list_append(if_not_exists({returns}, {link.v([])}), {link.v([shipment.shipment_id])})"
        )
        link.set_raw(f"{link.n('version')} = {link.n('version')} + {link.v(1)}")
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": ser.to_wire(ser.shipment_to_item(shipment)),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": ser.to_wire({"pk": ser.shipment_pk(shipment.return_of), "sk": ser.META}),
                            **link.params(f"attribute_exists({link.n('pk')})"),
                        }
                    },
                ],
            )
        except TransactionCanceled as canceled:
            reasons = canceled.reasons
            if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                raise ShipmentNotFound(shipment.return_of) from None
            raise ShipmentAlreadyExists(shipment.shipment_id) from None

    def update_return(
        self,
        shipment_id: str,
        state: ReturnState,
        *,
        expected: frozenset[ReturnState],
        now: datetime,
        pickup: PickupBooking | None = None,
    ) -> Shipment:
        if not expected:
            raise ValueError("expected must not be empty")
        expr = Expr()
        expr.set("return_state", state.value).set("updated_at", ser.iso(now))
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        if pickup is not None:
            expr.set("pickup", pickup.model_dump(mode="json", exclude_none=True))
            if pickup.tracking_number and state not in _ENDING:
                expr.set("carrier", pickup.carrier.value).set("provider", pickup.provider.value)
                expr.set("tracking_number", pickup.tracking_number).set("status", Status.WAYBILL_CREATED.value)
                expr.set("status_source", WORKFLOW)
        if state in _ENDING:
            expr.set("status", Status.CANCELLED.value).set("status_source", WORKFLOW)
            expr.set("status_key", precedence_key(Status.CANCELLED, now, "cancelled"))
            expr.remove(*ser.STALL_ATTRS, *ser.POLL_ATTRS)
        allowed = ", ".join(expr.v(s.value) for s in sorted(expected))
        condition = f"attribute_exists({expr.n('pk')}) AND {expr.n('return_state')} IN ({allowed})"
        try:
            item = self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition, return_values="ALL_NEW")
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            current = failed.old.get("return_state")
            raise ReturnStateConflict(shipment_id, ReturnState(current) if current else None) from None
        return ser.shipment_from_item(item)
