"""The one boto3 client factory: a process-wide client per (service, profile), built on first use.

Profiles keep each path's timeouts in one table: ``default`` for use-case calls, ``ack`` for the webhook's
enqueue-before-ACK (tight, one retry, so a slow SQS still lets the provider get its answer in time).
"""

from __future__ import annotations

import functools
from typing import Any

#: botocore ``Config`` keyword arguments per profile
PROFILES: dict[str, dict[str, Any]] = {
    "default": {"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 2, "read_timeout": 5},
    "store": {"retries": {"mode": "standard", "max_attempts": 4}, "connect_timeout": 2, "read_timeout": 5},
    "ack": {"retries": {"mode": "standard", "max_attempts": 2}, "connect_timeout": 1, "read_timeout": 2},
}


@functools.cache
def client(service: str, profile: str = "default") -> Any:
    """The cached client (S3 signs with SigV4 so presigned links work with KMS-encrypted objects)."""
    import boto3
    from botocore.config import Config

    options = dict(PROFILES[profile])
    if service == "s3":
        options["signature_version"] = "s3v4"
    return boto3.client(service, config=Config(**options))  # type: ignore[call-overload]


def error_code(error: Any) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
