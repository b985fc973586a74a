"""Carrier health: the circuit breaker's state per provider, written under an optimistic lock."""

from __future__ import annotations

import json
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Table


class HealthRecords(Table):
    """The :class:`~parcelhub.ports.store.CircuitHealth` port."""

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
        except ConditionFailed:
            return False
        return True
