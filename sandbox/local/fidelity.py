"""Where moto is less faithful than AWS in a way our code can observe, and the local stack's fix.

DynamoDB applies each request atomically; moto's in-memory backend does not when the threaded server
serves several requests at once (a condition can be checked by two writers before either writes, and
``TransactWriteItems`` deep-copies tables while other threads change them: "dictionary changed size
during iteration"). The local stack therefore serves one DynamoDB request at a time, which is what
the real service guarantees per item. Handlers still interleave between requests, where a lost update
in our own code would show.

``TransactWriteItems`` in moto backs up each table it touches with a deep copy of the whole table (its
stream records included) before every transaction, and on a cancelled transaction puts the copy in place
of the table. That costs time and memory in proportion to everything stored, on every transaction: a
demo day of 200 orders and a thousand pushes drove the emulator to 7 GB and a full core. The local stack
backs up only what a transaction can change instead (the partitions of its keys, the stream's length)
and restores exactly that; the table object stays the same, so stream iterators stay valid.

SQS hides a received message from every other receiver for its visibility timeout; moto's
``receive_message`` checks visibility and marks a message received without a lock, so two pollers
receiving at once can both get the same message (a duplicate delivery AWS does not make on that
path). The local stack therefore claims messages one receive at a time; a long poll releases the
claim while it waits, so other queues and receivers are not held up.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_ORIGINALS: dict[str, Callable[..., Any]] = {}
_SQS_LOCK = threading.RLock()
_SQS_PATCHED: list[bool] = []


def serialize_dynamodb() -> None:
    """Make every public operation of moto's DynamoDB backend atomic (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    if _ORIGINALS:
        return
    DynamoDBBackend.transact_write_items = _undo_logged(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    for name, member in list(vars(DynamoDBBackend).items()):
        if name.startswith("_") or not callable(member):
            continue
        _ORIGINALS[name] = member
        setattr(DynamoDBBackend, name, _atomic(member))


def serialize_sqs_receives() -> None:
    """One SQS receive (or delete / visibility change) at a time; a long poll waits without the lock."""
    from moto.sqs.models import Queue, SQSBackend

    if _SQS_PATCHED:
        return
    _SQS_PATCHED.append(True)
    for name in ("receive_message", "delete_message", "delete_message_batch", "change_message_visibility"):
        setattr(SQSBackend, name, _atomic(getattr(SQSBackend, name), _SQS_LOCK))
    wait = Queue.wait_for_messages

    @functools.wraps(wait)
    def wait_unlocked(self: Any, timeout: int) -> None:
        _SQS_LOCK.release()
        try:
            wait(self, timeout)
        finally:
            _SQS_LOCK.acquire()

    setattr(Queue, "wait_for_messages", wait_unlocked)  # noqa: B010 - patching moto's class


_ABSENT = object()


def _undo_logged(transact: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``transact_write_items`` with an undo log of the partitions it touches instead of whole-table
    deep copies (see the module docstring). Runs under the DynamoDB lock: nothing else changes the tables
    meanwhile."""
    import copy
    import types

    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    def table_as_is(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    shim = types.SimpleNamespace(deepcopy=table_as_is)

    @functools.wraps(transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved: list[tuple[Any, Any, Any, int | None]] = []
        for entry in transact_items:
            op = next(iter(entry.values()), None)
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            keys = (op.get("Item") or op.get("Key") or {}) if isinstance(op, dict) else {}
            if table is None or table.hash_key_attr not in keys:
                continue
            partition = DynamoType(keys[table.hash_key_attr])
            stored = table.items.get(partition, _ABSENT)
            shard = table.stream_shard
            saved.append(
                (table, partition, _ABSENT if stored is _ABSENT else copy.deepcopy(stored), shard and len(shard.items))
            )
        setattr(backend_module, "copy", shim)  # noqa: B010 - patching moto's module for this call
        try:
            return transact(self, transact_items)
        except Exception:
            for table, partition, stored, stream_length in reversed(saved):
                if stored is _ABSENT:
                    table.items.pop(partition, None)
                else:
                    table.items[partition] = stored
                if stream_length is not None and table.stream_shard is not None:
                    del table.stream_shard.items[stream_length:]
            raise
        finally:
            setattr(backend_module, "copy", copy)  # noqa: B010

    return transact_write_items


def _atomic(operation: Callable[..., Any], lock: Any = _LOCK) -> Callable[..., Any]:
    @functools.wraps(operation)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return operation(*args, **kwargs)

    return atomic
