"""DynamoDB's answer to a transaction that collided with a concurrent one on the same items, for tests on moto.

AWS cancels such a ``TransactWriteItems`` (``TransactionCanceledException``, reason ``TransactionConflict`` for
the item in contention) instead of queueing it; moto serialises transactions and never does. This hook on a
botocore client's (or session's) events answers the calls it picks that way, before they reach moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

EVENT = "before-call.dynamodb.TransactWriteItems"


class TransactionConflicts:
    """Cancels the TransactWriteItems calls ``cancels(n)`` picks (``n`` counts the calls from 1)."""

    def __init__(self, cancels: Callable[[int], bool]) -> None:
        self.cancels = cancels
        self.sent = 0
        self.cancelled = 0

    @classmethod
    def first(cls, times: int) -> TransactionConflicts:
        return cls(lambda n: n <= times)

    @classmethod
    def every(cls, nth: int) -> TransactionConflicts:
        return cls(lambda n: n % nth == 0)

    def register(self, events: Any) -> TransactionConflicts:
        events.register(EVENT, self)
        return self

    def unregister(self, events: Any) -> None:
        events.unregister(EVENT, self)

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        self.sent += 1
        if not self.cancels(self.sent):
            return None  # sent to moto
        self.cancelled += 1
        items = json.loads(params["body"])["TransactItems"]
        reasons: list[dict[str, str]] = [{"Code": "None"} for _ in items]
        reasons[-1] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing"}
        codes = ", ".join(r["Code"] for r in reasons)
        error = {"Code": "TransactionCanceledException", "Message": f"Transaction cancelled [{codes}]"}
        body = {"Error": error, "CancellationReasons": reasons}
        return SimpleNamespace(status_code=400, headers={}, text="", content=b""), body
