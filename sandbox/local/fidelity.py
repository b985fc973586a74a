"""Where moto is less faithful than AWS in a way our code can observe, and the local stack's fix.

DynamoDB applies each request atomically; moto's in-memory backend does not when the threaded server
serves several requests at once (a condition can be checked by two writers before either writes, and
``TransactWriteItems`` deep-copies tables while other threads change them: "dictionary changed size
during iteration"). The local stack therefore serves one DynamoDB request at a time, which is what
the real service guarantees per item. Handlers still interleave between requests, where a lost update
in our own code would show.

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


def _atomic(operation: Callable[..., Any], lock: Any = _LOCK) -> Callable[..., Any]:
    @functools.wraps(operation)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return operation(*args, **kwargs)

    return atomic
