"""Waybill labels in S3 and time-limited links to them (issue 5 item 6).

A provider returns the label data with the waybill (Kdniao: the print template HTML; SF: the
``routeLabelData`` JSON). It holds the receiver's name, phone and address, so it goes straight to S3
(bucket encryption, no public access) under ``labels/<shipment_id>/<tracking_number>.{html,json}`` and
never travels through Step Functions state or logs. Readers get a presigned GET link that expires
after ``HubConfig.label_link_seconds``. The S3 client is built on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

LABEL_PREFIX = "labels"
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


@functools.cache
def s3_client() -> Any:
    """The process-wide S3 client (SigV4, so presigned links work with KMS-encrypted objects too)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        config=Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 3}),
    )


def label_format(label: str) -> tuple[str, str]:
    """``(extension, content type)`` of label data: HTML print templates vs JSON label data."""
    head = label.lstrip()[:1]
    if head in ("{", "["):
        return "json", "application/json; charset=utf-8"
    return "html", "text/html; charset=utf-8"


def label_key(shipment_id: str, tracking_number: str, extension: str) -> str:
    return f"{LABEL_PREFIX}/{_SAFE.sub('_', shipment_id)}/{_SAFE.sub('_', tracking_number)}.{extension}"


class LabelStore:
    """Puts labels into the data bucket and presigns links to them."""

    def __init__(self, bucket: str, *, client_factory: Callable[[], Any] = s3_client) -> None:
        if not bucket:
            raise ValueError("a bucket name is required")
        self.bucket = bucket
        self._client_factory = client_factory

    @property
    def client(self) -> Any:
        return self._client_factory()

    def put(self, shipment_id: str, tracking_number: str, label: str) -> str:
        """Store the label (idempotent: the same key is overwritten with the same bytes); returns the key."""
        extension, content_type = label_format(label)
        key = label_key(shipment_id, tracking_number, extension)
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=label.encode("utf-8"),
            ContentType=content_type,
            Metadata={"shipment-id": shipment_id, "tracking-number": tracking_number},
        )
        return key

    def link(self, key: str, expires_in: int) -> str:
        """A presigned GET link (computed locally: no request is made)."""
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url
