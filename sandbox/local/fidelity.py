"""Where moto is less faithful than AWS in a way our code can observe, and the local stack's fix.

DynamoDB applies each request atomically; moto's in-memory backend does not when the threaded server
serves several requests at once (a condition can be checked by two writers before either writes, and
``TransactWriteItems`` deep-copies tables while other threads change them: "dictionary changed size
during iteration"). The local stack therefore serves one DynamoDB request at a time, which is what
the real service guarantees per item. Handlers still interleave between requests, where a lost update
in our own code would show.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_ORIGINALS: dict[str, Callable[..., Any]] = {}


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


def _atomic(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    return atomic
