"""The single table's plumbing shared by every record type (shipments, tracking, indexes, parked pushes,
carrier health, leases).

Low-level ``boto3.client("dynamodb")`` with ``TypeSerializer``/``TypeDeserializer`` (no resource layer:
faster cold start). Nothing happens at import: the client is built on first use by a cached factory.
Every ``ClientError`` leaves this package as a port error (:mod:`parcelhub.ports.errors`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from parcelhub.adapters import aws
from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.ports.errors import ShipmentNotFound, StoreError, StoreMisconfigured, StoreUnavailable
from parcelhub.ports.store import DEFAULT_SHARDS, QueryStats, StallMark

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
BATCH_GET_MAX_KEYS = 100
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")
BATCH_WRITE_ATTEMPTS = 8


def dynamodb_client() -> Any:
    """The process-wide low-level client (standard retry mode: backoff with jitter on throttling)."""
    return aws.client("dynamodb", "store")


class ConditionFailed(Exception):
    """Internal: a conditional write lost; ``old`` is the stored item (ALL_OLD) or ``None`` if absent."""

    def __init__(self, old: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.old = old


class TransactionCanceled(Exception):
    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction canceled")
        self.reasons = reasons


class Expr:
    """Builds an update/condition expression with a placeholder for every name (no reserved-word traps)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.adds: list[str] = []

    def n(self, name: str) -> str:
        """The placeholder of an attribute name (names that are not ``[A-Za-z0-9_]+``, such as map keys
        like ``sf#shp_…``, get a numbered placeholder)."""
        placeholder = f"#{name}" if _PLAIN_NAME.fullmatch(name) else self._numbered(name)
        self.names[placeholder] = name
        return placeholder

    def _numbered(self, name: str) -> str:
        for placeholder, known in self.names.items():
            if known == name:
                return placeholder
        return f"#k{len(self.names)}"

    def v(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = ser.wire_value(value)
        return placeholder

    def set(self, name: str, value: Any) -> Expr:
        self.sets.append(f"{self.n(name)} = {self.v(value)}")
        return self

    def set_raw(self, clause: str) -> Expr:
        self.sets.append(clause)
        return self

    def remove(self, *names: str) -> Expr:
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


class Table:
    """One DynamoDB table: the client, error translation and the request helpers every record type uses."""

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
            return ConditionFailed(ser.from_wire(item) if item else None)
        if code == "TransactionCanceledException":
            reasons = list(response.get("CancellationReasons") or [])
            if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
                return TransactionCanceled(reasons)
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
        expr: Expr,
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

    def _update_request(self, pk: str, sk: str, expr: Expr, condition: str | None) -> dict[str, Any]:
        """One ``Update`` of a TransactWriteItems: the update ``_update`` makes, the stored item returned in
        the cancellation reason when its condition fails (ALL_OLD)."""
        params = expr.params(condition)
        if condition:
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": {"TableName": self.table_name, "Key": _key(pk, sk), **params}}

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

    def _batch_get(
        self, keys: Sequence[tuple[str, str]], *, what: str, consistent: bool = False, attempts: int = 3
    ) -> list[dict[str, Any]]:
        """BatchGetItem in chunks of 100 keys (eventually consistent unless ``consistent``), asking again for
        UnprocessedKeys with exponential backoff; ``StoreUnavailable`` when keys are still unprocessed after
        ``attempts`` requests."""
        items: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [_key(pk, sk) for pk, sk in unique[start : start + BATCH_GET_MAX_KEYS]],
                    "ConsistentRead": consistent,
                }
            }
            for attempt in range(attempts):
                response = self._call("batch_get_item", RequestItems=request)
                items += [ser.from_wire(wire) for wire in response.get("Responses", {}).get(self.table_name, [])]
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StoreUnavailable(f"{what}: keys left unprocessed after retries", code="UnprocessedKeys")
        return items

    # ------------------------------------------------------------------------------- shared helpers
    def _set_stall_attrs(self, expr: Expr, shipment_id: str, mark: StallMark) -> None:
        for name, value in ser.stall_attributes(shipment_id, mark.due_at, mark.rule, mark.episode, self.shards).items():
            expr.set(name, value)

    def _must_exist(self, shipment_id: str, expr: Expr) -> None:
        try:
            self._update(ser.shipment_pk(shipment_id), ser.META, expr, f"attribute_exists({expr.n('pk')})")
        except ConditionFailed:
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
