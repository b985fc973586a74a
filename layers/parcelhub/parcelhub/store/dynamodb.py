"""The DynamoDB single-table adapter of :class:`parcelhub.store.ports.ShipmentStore`.

Low-level ``boto3.client("dynamodb")`` with ``TypeSerializer``/``TypeDeserializer`` (no resource layer:
faster cold start). Nothing happens at import: the client is built on first use by a cached factory,
and :func:`shipment_store` caches one adapter per table name.

Every ``ClientError`` leaves this module as a domain error (:mod:`parcelhub.store.errors`).
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from parcelhub.domain.models import Shipment, TrackingEvent, Waybill, WaybillAttempt
from parcelhub.domain.status import Status, SubStatus, TrackingState, is_terminal, precedence_key
from parcelhub.store import serialization as ser
from parcelhub.store.errors import (
    OrderAlreadyExists,
    ShipmentAlreadyExists,
    ShipmentNotFound,
    StatusConflict,
    StoreConflict,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
    TrackingClaimConflict,
    WaybillAlreadyRecorded,
)
from parcelhub.store.ports import (
    DEFAULT_SHARDS,
    DuePoll,
    DueStall,
    ParkedPush,
    QueryStats,
    StallMark,
    StatusChange,
    TrackingClaim,
)

#: DynamoDB error codes that mean "try again later".
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
#: DynamoDB error codes that mean the deployment is wrong (missing table/index, bad request, no permission).
MISCONFIGURED_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "ValidationException",
        "AccessDeniedException",
        "UnrecognizedClientException",
    }
)
BATCH_WRITE_MAX = 25
BATCH_WRITE_ATTEMPTS = 8


@functools.cache
def dynamodb_client() -> Any:
    """The process-wide low-level client (standard retry mode: backoff with jitter on throttling)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5),
    )


@functools.cache
def shipment_store(table_name: str) -> DynamoShipmentStore:
    """The cached adapter for ``table_name`` (read the name from the function's settings, not here)."""
    return DynamoShipmentStore(table_name)


class _ConditionFailed(Exception):
    """Internal: a conditional write lost; ``old`` is the stored item (ALL_OLD) or ``None`` if absent."""

    def __init__(self, old: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.old = old


class _TransactionCanceled(Exception):
    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction canceled")
        self.reasons = reasons


class _Expr:
    """Builds an update/condition expression with a placeholder for every name (no reserved-word traps)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.adds: list[str] = []

    def n(self, name: str) -> str:
        placeholder = f"#{name}"
        self.names[placeholder] = name
        return placeholder

    def v(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = ser.wire_value(value)
        return placeholder

    def set(self, name: str, value: Any) -> _Expr:
        self.sets.append(f"{self.n(name)} = {self.v(value)}")
        return self

    def set_raw(self, clause: str) -> _Expr:
        self.sets.append(clause)
        return self

    def remove(self, *names: str) -> _Expr:
        self.removes.extend(self.n(name) for name in names)
        return self

    def update_expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        if self.adds:
            parts.append("ADD " + ", ".join(self.adds))
        return " ".join(parts)

    def params(self, condition: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        update = self.update_expression()
        if update:
            params["UpdateExpression"] = update
        if condition:
            params["ConditionExpression"] = condition
        if self.names:
            params["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            params["ExpressionAttributeValues"] = dict(self.values)
        return params


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


class DynamoShipmentStore:
    """:class:`~parcelhub.store.ports.ShipmentStore` on one DynamoDB table."""

    def __init__(self, table_name: str, client: Any | None = None, shards: int = DEFAULT_SHARDS) -> None:
        self.table_name = table_name
        self.shards = shards
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = dynamodb_client()
        return self._client

    # ----------------------------------------------------------------------------------------- plumbing

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = getattr(self.client, operation)(**params)
        except ClientError as error:
            raise self._translate(error) from error
        except BotoCoreError as error:  # connection reset, read timeout …
            raise StoreUnavailable(f"{operation}: {error}", code=type(error).__name__) from error
        return response

    def _translate(self, error: Any) -> Exception:
        response = error.response
        code = str(response.get("Error", {}).get("Code", ""))
        message = str(response.get("Error", {}).get("Message", ""))
        if code == "ConditionalCheckFailedException":
            item = response.get("Item")
            return _ConditionFailed(ser.from_wire(item) if item else None)
        if code == "TransactionCanceledException":
            reasons = list(response.get("CancellationReasons") or [])
            if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
                return _TransactionCanceled(reasons)
            return StoreUnavailable(f"transaction canceled: {message}", code=code)
        if code in RETRYABLE_CODES:
            return StoreUnavailable(f"{code}: {message}", code=code)
        if code in MISCONFIGURED_CODES:
            return StoreMisconfigured(f"{code}: {message} (table {self.table_name})", code=code)
        return StoreError(f"{code}: {message}")

    def _get_item(self, pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        response = self._call("get_item", TableName=self.table_name, Key=_key(pk, sk), ConsistentRead=consistent)
        item = response.get("Item")
        return ser.from_wire(item) if item else None

    def _update(
        self,
        pk: str,
        sk: str,
        expr: _Expr,
        condition: str | None,
        return_values: str = "NONE",
    ) -> dict[str, Any]:
        params = expr.params(condition)
        if condition:
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response = self._call(
            "update_item",
            TableName=self.table_name,
            Key=_key(pk, sk),
            ReturnValues=return_values,
            **params,
        )
        attributes = response.get("Attributes")
        return ser.from_wire(attributes) if attributes else {}

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem in chunks of 25, retrying UnprocessedItems with exponential backoff."""
        for start in range(0, len(requests), BATCH_WRITE_MAX):
            pending: list[dict[str, Any]] = requests[start : start + BATCH_WRITE_MAX]
            for attempt in range(BATCH_WRITE_ATTEMPTS):
                response = self._call("batch_write_item", RequestItems={self.table_name: pending})
                pending = list(response.get("UnprocessedItems", {}).get(self.table_name, []))
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StoreUnavailable(f"{len(pending)} items still unprocessed after {BATCH_WRITE_ATTEMPTS} attempts")

    # -------------------------------------------------------------------------------------- shipments

    def create(self, shipment: Shipment) -> None:
        order_item = {
            "pk": ser.order_pk(shipment.order_id),
            "sk": ser.ORDER,
            "order_id": shipment.order_id,
            "shipment_id": shipment.shipment_id,
            "fingerprint": shipment.request_fingerprint,
            "created_at": ser.iso(shipment.created_at),
        }
        put = {"ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {"Put": {"TableName": self.table_name, "Item": ser.to_wire(ser.shipment_to_item(shipment)), **put}},
                    {"Put": {"TableName": self.table_name, "Item": ser.to_wire(order_item), **put}},
                ],
            )
        except _TransactionCanceled as canceled:
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
        self, shipment_id: str, waybill: Waybill, attempts: list[WaybillAttempt], now: datetime
    ) -> Shipment:
        pk = ser.shipment_pk(shipment_id)
        for set_status in (True, False):
            expr = _Expr()
            expr.set("waybill", waybill.model_dump(mode="json", exclude_none=True))
            expr.set("carrier", waybill.carrier.value).set("provider", waybill.provider.value)
            expr.set("tracking_number", waybill.tracking_number).set("updated_at", ser.iso(now))
            expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
            if attempts:
                expr.set_raw(
                    f"{expr.n('waybill_attempts')} = list_append(if_not_exists({expr.n('waybill_attempts')}, "
                    f"{expr.v([])}), {expr.v([a.model_dump(mode='json') for a in attempts])})"
                )
            condition = f"attribute_exists({expr.n('pk')}) AND attribute_not_exists({expr.n('waybill')})"
            if set_status:
                expr.set("status", Status.WAYBILL_CREATED.value).set("sub_status", SubStatus.NONE.value)
                condition += (
                    f" AND attribute_not_exists({expr.n('status_key')})"
                    f" AND {expr.n('status')} IN"
                    f" ({expr.v(Status.PENDING.value)}, {expr.v(Status.WAYBILL_FAILED.value)})"
                )
            try:
                return ser.shipment_from_item(self._update(pk, ser.META, expr, condition, return_values="ALL_NEW"))
            except _ConditionFailed as failed:
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
                # no waybill yet: the status must not change (a tracking status won, or CANCELLED …)
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
        expr = _Expr()
        expr.set("status", status.value).set("sub_status", sub_status.value).set("updated_at", ser.iso(now))
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
        except _ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            raise StatusConflict(shipment_id, Status(failed.old["status"])) from None
        return ser.shipment_from_item(item)

    def add_waybill_attempt(self, shipment_id: str, attempt: WaybillAttempt) -> None:
        expr = _Expr()
        attempts = expr.n("waybill_attempts")
        expr.set_raw(
            f"{attempts} = list_append(if_not_exists({attempts}, {expr.v([])}),"
            f" {expr.v([attempt.model_dump(mode='json')])})"
        )
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, f"attribute_exists({expr.n('pk')})")
        except _ConditionFailed:
            raise ShipmentNotFound(shipment_id) from None

    # -------------------------------------------------------------------------------------- tracking

    def claim_tracking(self, carrier: str, tracking_number: str, shipment_id: str, order_id: str) -> None:
        expr = _Expr()
        expr.set("shipment_id", shipment_id).set("order_id", order_id)
        expr.set("carrier", carrier).set("tracking_number", tracking_number)
        condition = f"attribute_not_exists({expr.n('pk')}) OR {expr.n('shipment_id')} = {expr.v(shipment_id)}"
        try:
            self._update(ser.tracking_pk(carrier, tracking_number), ser.TRK, expr, condition)
        except _ConditionFailed as failed:
            owner = str((failed.old or {}).get("shipment_id", ""))
            raise TrackingClaimConflict(carrier, tracking_number, owner) from None

    def find_by_tracking(self, carrier: str, tracking_number: str) -> TrackingClaim | None:
        item = self._get_item(ser.tracking_pk(carrier, tracking_number), ser.TRK)
        if item is None:
            return None
        return TrackingClaim(
            shipment_id=str(item["shipment_id"]),
            order_id=str(item["order_id"]),
            carrier=str(item["carrier"]),
            tracking_number=str(item["tracking_number"]),
            known_hashes=frozenset(str(h) for h in item.get("known_hashes", ())),
        )

    def append_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        seen = set(claim.known_hashes)
        fresh: list[TrackingEvent] = []
        for event in events:
            if event.content_hash not in seen:
                seen.add(event.content_hash)
                fresh.append(event)
        if not fresh:
            return []
        # 1) the event items first: a crash before step 2 leaves them re-writable (same key, same content)
        self._batch_write(
            [{"PutRequest": {"Item": ser.to_wire(ser.event_to_item(claim.shipment_id, e))}} for e in fresh]
        )
        # 2) one atomic ADD to the claim's hash set; the set as it was before (ALL_OLD: UPDATED_OLD may omit
        #    an attribute the ADD did not change) tells which hashes a concurrent writer added first, so each
        #    event is reported new exactly once
        expr = _Expr()
        expr.adds.append(f"{expr.n('known_hashes')} {expr.v({e.content_hash for e in fresh})}")
        try:
            old = self._update(
                ser.tracking_pk(claim.carrier, claim.tracking_number),
                ser.TRK,
                expr,
                f"attribute_exists({expr.n('pk')})",
                return_values="ALL_OLD",
            )
        except _ConditionFailed:
            raise ShipmentNotFound(f"tracking claim {claim.carrier}/{claim.tracking_number}") from None
        already = {str(h) for h in old.get("known_hashes", ())}
        return [e for e in fresh if e.content_hash not in already]

    def apply_tracking_state(
        self,
        shipment_id: str,
        state: TrackingState,
        *,
        last_event_text: str | None,
        stall: StallMark | None,
        now: datetime,
        poll_due: datetime | None = None,
    ) -> StatusChange | None:
        expr = _Expr()
        expr.set("status", state.status.value).set("sub_status", state.sub_status.value)
        expr.set("status_key", state.key).set("last_event_at", ser.iso(state.occurred_at))
        expr.set("updated_at", ser.iso(now))
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        if last_event_text is None:
            expr.remove("last_event_text")
        else:
            expr.set("last_event_text", last_event_text)
        if stall is None:
            expr.remove(*ser.STALL_ATTRS)
        else:
            self._set_stall_attrs(expr, shipment_id, stall)
        expr.remove(*ser.STALL_ALERT_ATTRS)  # a new winning state ends the current stall episode
        if is_terminal(state.status):
            expr.remove(*ser.POLL_ATTRS)
        elif poll_due is not None:
            expr.set("poll_pk", ser.poll_pk(ser.shard_of(shipment_id, self.shards))).set("poll_sk", ser.iso(poll_due))
        key = expr.n("status_key")
        condition = f"attribute_exists({expr.n('pk')}) AND (attribute_not_exists({key}) OR {key} < {expr.v(state.key)})"
        try:
            # ALL_OLD (not UPDATED_OLD): the change report needs order_id/carrier/tracking_number too, and
            # returned values cost no read capacity
            old = self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition, return_values="ALL_OLD")
        except _ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            return None
        alerted = old.get("stall_alerted") if old.get("stall_alerted") == old.get("stall_episode") else None
        return StatusChange(
            shipment_id=shipment_id,
            order_id=str(old["order_id"]),
            carrier=old.get("carrier"),
            tracking_number=old.get("tracking_number"),
            old_status=Status(old["status"]),
            new_status=state.status,
            new_sub_status=state.sub_status,
            occurred_at=state.occurred_at,
            old_sub_status=SubStatus(old.get("sub_status") or SubStatus.NONE),
            stall_alerted_episode=alerted,
            stall_rule=old.get("stall_rule") if alerted else None,
            stall_due_at=ser.parse_iso(old["stall_alerted_due"]) if alerted and old.get("stall_alerted_due") else None,
        )

    def list_events(self, shipment_id: str, limit: int = 200) -> list[TrackingEvent]:
        events: list[TrackingEvent] = []
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": ser.shipment_pk(shipment_id)},
                ":prefix": {"S": ser.EVENT_PREFIX},
            },
            "ScanIndexForward": False,
        }
        while len(events) < limit:
            response = self._call("query", Limit=limit - len(events), **params)
            events.extend(ser.event_from_item(ser.from_wire(item)) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return events

    # ----------------------------------------------------------------------------------------- stalls

    def _set_stall_attrs(self, expr: _Expr, shipment_id: str, mark: StallMark) -> None:
        for name, value in ser.stall_attributes(shipment_id, mark.due_at, mark.rule, mark.episode, self.shards).items():
            expr.set(name, value)

    def set_stall(self, shipment_id: str, mark: StallMark) -> None:
        """Put the shipment in the stall index; a no-op when this episode was already alerted (a retried
        step re-setting the same mark must neither re-alert nor bring the entry back for every sweep)."""
        expr = _Expr()
        self._set_stall_attrs(expr, shipment_id, mark)
        alerted = expr.n("stall_alerted")
        condition = (
            f"attribute_exists({expr.n('pk')})"
            f" AND (attribute_not_exists({alerted}) OR {alerted} <> {expr.v(mark.episode)})"
        )
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition)
        except _ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None

    def clear_stall(self, shipment_id: str) -> None:
        self._must_exist(shipment_id, _Expr().remove(*ser.STALL_ATTRS))

    def _must_exist(self, shipment_id: str, expr: _Expr) -> None:
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, f"attribute_exists({expr.n('pk')})")
        except _ConditionFailed:
            raise ShipmentNotFound(shipment_id) from None

    def _query_page(
        self,
        index: str,
        names: tuple[str, str],
        pk: str,
        now: datetime,
        *,
        start: dict[str, Any] | None,
        page_limit: int | None,
        stats: QueryStats | None,
        shard: int,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of one shard of a sparse index, ``sk <= now``, accounted in ``stats``."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p AND #s <= :now",
            "ExpressionAttributeNames": {"#p": names[0], "#s": names[1]},
            "ExpressionAttributeValues": {":p": {"S": pk}, ":now": {"S": ser.iso(now)}},
            "ReturnConsumedCapacity": "TOTAL",
        }
        if start:
            params["ExclusiveStartKey"] = start
        if page_limit:
            params["Limit"] = page_limit
        response = self._call("query", **params)
        items = [ser.from_wire(item) for item in response.get("Items", [])]
        if stats is not None:
            stats.pages += 1
            stats.per_shard_pages[shard] = stats.per_shard_pages.get(shard, 0) + 1
            stats.items_read += int(response.get("ScannedCount", len(items)))
            stats.items_returned += len(items)
            stats.capacity_units += float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        return items, response.get("LastEvaluatedKey")

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
        expr = _Expr()
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
        except _ConditionFailed:
            return False
        return True

    def release_stall_alert(self, shipment_id: str, episode: str) -> None:
        expr = _Expr()
        expr.set("stall_pk", ser.stall_pk(ser.shard_of(shipment_id, self.shards)))
        expr.set_raw(f"{expr.n('stall_sk')} = {expr.n('stall_alerted_due')}")
        expr.remove(*ser.STALL_ALERT_ATTRS)
        value = expr.v(episode)
        condition = (
            f"{expr.n('stall_alerted')} = {value} AND {expr.n('stall_episode')} = {value}"
            f" AND attribute_exists({expr.n('stall_alerted_due')})"
        )
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition)
        except _ConditionFailed:
            return  # not claimed by that episode (any more): nothing to undo

    # ------------------------------------------------------------------------------------------ polls

    def set_poll_due(self, shipment_id: str, due_at: datetime) -> None:
        expr = _Expr()
        expr.set("poll_pk", ser.poll_pk(ser.shard_of(shipment_id, self.shards))).set("poll_sk", ser.iso(due_at))
        self._must_exist(shipment_id, expr)

    def clear_poll(self, shipment_id: str) -> None:
        self._must_exist(shipment_id, _Expr().remove(*ser.POLL_ATTRS))

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

    def park_push(
        self, carrier: str, tracking_number: str, payload_ref: str, received_at: datetime, expires_at: datetime
    ) -> None:
        item = {
            "pk": ser.park_pk(carrier, tracking_number),
            "sk": ser.park_sk(received_at, payload_ref),
            "carrier": carrier,
            "tracking_number": tracking_number,
            "payload_ref": payload_ref,
            "received_at": ser.iso(received_at),
            "expires_at": ser.epoch(expires_at),
        }
        self._call("put_item", TableName=self.table_name, Item=ser.to_wire(item))

    def take_parked(self, carrier: str, tracking_number: str, now: datetime | None = None) -> list[ParkedPush]:
        moment = ser.epoch(now or datetime.now(UTC))
        pk = ser.park_pk(carrier, tracking_number)
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        taken: list[ParkedPush] = []
        while True:
            response = self._call("query", **params)
            for wire in response.get("Items", []):
                # DeleteItem with ALL_OLD: of two concurrent takers only one gets the item back
                deleted = self._call(
                    "delete_item",
                    TableName=self.table_name,
                    Key={"pk": wire["pk"], "sk": wire["sk"]},
                    ReturnValues="ALL_OLD",
                ).get("Attributes")
                if not deleted:
                    continue
                item = ser.from_wire(deleted)
                if int(item["expires_at"]) <= moment:  # TTL deletes lazily; an expired push is dropped
                    continue
                taken.append(_parked(item))
            if "LastEvaluatedKey" not in response:
                return taken
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # ------------------------------------------------------------------------------------ carrier health

    def get_health(self, provider: str) -> tuple[dict[str, Any], int]:
        item = self._get_item(ser.health_pk(provider), ser.HEALTH)
        if item is None:
            return {}, 0
        state: dict[str, Any] = json.loads(str(item["state"]))
        return state, int(item["version"])

    def put_health(self, provider: str, state: dict[str, Any], expected_version: int) -> bool:
        item = {
            "pk": ser.health_pk(provider),
            "sk": ser.HEALTH,
            "provider": provider,
            "state": json.dumps(state, sort_keys=True, ensure_ascii=False),
            "version": expected_version + 1,
        }
        if expected_version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        try:
            self._call("put_item", TableName=self.table_name, Item=ser.to_wire(item), **condition)
        except _ConditionFailed:
            return False
        return True


# ------------------------------------------------------------------------------------------ projections


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


def _parked(item: Mapping[str, Any]) -> ParkedPush:
    return ParkedPush(
        carrier=str(item["carrier"]),
        tracking_number=str(item["tracking_number"]),
        payload_ref=str(item["payload_ref"]),
        received_at=ser.parse_iso(str(item["received_at"])),
        expires_at=datetime.fromtimestamp(int(item["expires_at"]), tz=UTC),
    )


if TYPE_CHECKING:  # static proof that the adapter implements the port
    from parcelhub.store.ports import ShipmentStore

    _conforms: ShipmentStore = DynamoShipmentStore("table")
