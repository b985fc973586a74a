"""Parked pushes: pushes that arrived before their tracking claim, taken exactly once when it appears."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import Table
from parcelhub.ports.store import ParkedPush


class ParkedRecords(Table):
    """The :class:`~parcelhub.ports.store.ParkedPushes` port."""

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


def _parked(item: Mapping[str, Any]) -> ParkedPush:
    return ParkedPush(
        carrier=str(item["carrier"]),
        tracking_number=str(item["tracking_number"]),
        payload_ref=str(item["payload_ref"]),
        received_at=ser.parse_iso(str(item["received_at"])),
        expires_at=datetime.fromtimestamp(int(item["expires_at"]), tz=UTC),
    )
