"""S3: waybill labels with time-limited links to them, and the raw push archive.

Labels (issue 5 item 6).

A provider returns the label data with the waybill (Kdniao: the print template HTML; SF: the
``routeLabelData`` JSON). It holds the receiver's name, phone and address, so it goes straight to S3
(SSE-KMS with the brand's PII key, no public access) under ``labels/<shipment_id>/<tracking_number>.{html,json}`` and
never travels through Step Functions state or logs. Readers get a presigned GET link that expires
after ``HubConfig.label_link_seconds``.

The raw archive: every normalizer batch is written as one gzip JSON-lines object before it is applied,
and parked pushes are read back from it. Clients come from :func:`parcelhub.adapters.aws.client`.

Every object is written with SSE-KMS under the PII key, named explicitly (the bucket's default says the
same; naming it keeps a bucket misconfigured to S3-managed keys from ever holding a label in the clear
of the brand's key). Reading one decrypts through S3: the reader's role needs ``kms:Decrypt`` on the
key via S3, and so does whoever follows a presigned link (it carries the signing role's permissions).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Sequence
from typing import Any

from parcelhub.adapters import aws
from parcelhub.ports.messaging import LabelNotStored, ReceiptNotStored

LABEL_PREFIX = "labels"
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def s3_client() -> Any:
    return aws.client("s3")


def label_format(label: str) -> tuple[str, str]:
    """``(extension, content type)`` of label data: HTML print templates vs JSON label data."""
    head = label.lstrip()[:1]
    if head in ("{", "["):
        return "json", "application/json; charset=utf-8"
    return "html", "text/html; charset=utf-8"


def label_key(shipment_id: str, tracking_number: str, extension: str) -> str:
    return f"{LABEL_PREFIX}/{_SAFE.sub('_', shipment_id)}/{_SAFE.sub('_', tracking_number)}.{extension}"


class _Objects:
    """One bucket and the client to reach it (built on first use)."""

    def __init__(self, bucket: str, *, client_factory: Callable[[], Any] = s3_client) -> None:
        if not bucket:
            raise ValueError("a bucket name is required")
        self.bucket = bucket
        self._client_factory = client_factory

    @property
    def client(self) -> Any:
        return self._client_factory()


class _Bucket(_Objects):
    """A bucket whose objects may hold personal data: every object is written under SSE-KMS."""

    def __init__(self, bucket: str, *, kms_key_id: str, client_factory: Callable[[], Any] = s3_client) -> None:
        super().__init__(bucket, client_factory=client_factory)
        if not kms_key_id:
            raise ValueError("the KMS key the objects are encrypted with is required")
        self.kms_key_id = kms_key_id

    def _encryption(self) -> dict[str, Any]:
        """SSE-KMS with the PII key and the bucket's S3 Bucket Key (``put_object`` arguments)."""
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id, "BucketKeyEnabled": True}


class S3LabelStore(_Bucket):
    """Puts labels into the data bucket and presigns links to them."""

    def put(self, shipment_id: str, tracking_number: str, label: str) -> str:
        """Store the label (idempotent: the same key is overwritten with the same bytes); returns the key.
        Any failure is ``LabelNotStored`` (the workflow retries: the waybill is fetched again)."""
        from botocore.exceptions import BotoCoreError, ClientError

        extension, content_type = label_format(label)
        key = label_key(shipment_id, tracking_number, extension)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=label.encode("utf-8"),
                ContentType=content_type,
                Metadata={"shipment-id": shipment_id, "tracking-number": tracking_number},
                **self._encryption(),
            )
        except (ClientError, BotoCoreError) as error:
            raise LabelNotStored(f"label {key} not stored: {aws.error_code(error) or error}") from error
        return key

    def link(self, key: str, expires_in: int) -> str:
        """A presigned GET link (computed locally: no request is made)."""
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url


RECEIPT_PREFIX = "receipts"
_RECEIPT_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "application/pdf": "pdf"}


class S3ReceiptStore(S3LabelStore):
    """Delivery receipts (a signature or photo: personal data) in the data bucket, SSE-KMS, under
    ``receipts/``; presigned links like labels."""

    def put_receipt(self, shipment_id: str, tracking_number: str, body: bytes, content_type: str) -> str:
        """Store the receipt (idempotent: same key, same bytes); ``ReceiptNotStored`` on any failure."""
        from botocore.exceptions import BotoCoreError, ClientError

        extension = _RECEIPT_EXTENSIONS.get(content_type.split(";", maxsplit=1)[0].strip().lower(), "bin")
        key = f"{RECEIPT_PREFIX}/{_SAFE.sub('_', shipment_id)}/{_SAFE.sub('_', tracking_number)}.{extension}"
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata={"shipment-id": shipment_id, "tracking-number": tracking_number},
                **self._encryption(),
            )
        except (ClientError, BotoCoreError) as error:
            raise ReceiptNotStored(f"receipt {key} not stored: {aws.error_code(error) or error}") from error
        return key


# ------------------------------------------------------------------------------------------- raw archive


def gzip_lines(lines: Sequence[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)


def gunzip_lines(data: bytes) -> list[str]:
    return [line for line in gzip.decompress(data).decode("utf-8").split("\n") if line]


class S3RawArchive(_Bucket):
    """The S3 adapter of :class:`~parcelhub.ports.messaging.RawArchive`."""

    def put_lines(self, key: str, lines: Sequence[str]) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=gzip_lines(lines),
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
            **self._encryption(),
        )

    def get_lines(self, key: str) -> list[str]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return gunzip_lines(body)
