"""The hostile-input suite, part 2: after a run through the whole pipeline, nothing the local stack kept or
said holds a receiver's name, phone or address in plaintext, or a secret.

Orders with distinctive receivers go through the OMS API, get waybills from the sandboxes, are tracked to
delivery by signed pushes, are read through the API, the tracking page and their label links. Then every
place the stack wrote to is read back: every item of every DynamoDB table, every S3 object, every message
still in a queue, every function log line, every EventBridge event, every ops alert and every OMS
callback. Personal data may rest only where it is encrypted with the project's KMS key (the ``pii``
ciphertext in the table; labels, which must print the receiver, in SSE-KMS objects).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.local.client import LocalStackClient
from sandbox.local.settings import LocalSettings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
HAPPY = ["picked_up", "in_transit", "arrived_dest_city", "out_for_delivery", "delivered"]
RECEIVERS = [
    {"name": "欧阳娜娜", "phone": "13987650001", "address": "文一西路969号梦想小镇7幢1201室"},
    {"name": "司马相如", "phone": "13987650002", "address": "碧波路690号张江创新园3号楼502室"},
    {"name": "Zhuge Kongming", "phone": "13987650003", "address": "科技园南区深南大道9988号A座"},
    {"name": "上官婉儿", "phone": "13987650004", "address": "天府大道北段1700号环球中心W6区"},
]
LINK_SECRET = secrets.token_urlsafe(32)


def _order(n: int) -> dict[str, Any]:
    body = dict(json.loads(ORDER.read_text(encoding="utf-8")))
    body["order_id"] = f"PII-{n}-{uuid.uuid4().hex[:10]}"
    body["customer_tier"] = "vip" if n % 2 else "regular"  # SF and ZTO-through-Kdniao
    body["receiver"] = {**body["receiver"], **RECEIVERS[n]}
    return body


def _needles() -> dict[str, str]:
    """What must not appear in plaintext: receivers' names, phones and addresses, and every secret."""
    settings = LocalSettings.from_env({})
    needles: dict[str, str] = {}
    for n, receiver in enumerate(RECEIVERS):
        needles |= {f"name {n}": receiver["name"], f"phone {n}": receiver["phone"]}
        needles[f"address {n}"] = receiver["address"]
    needles |= {
        "OMS API key": settings.api_key,
        "tracking-link secret": LINK_SECRET,
        **{f"credential {name}": value for name, value in vars(settings.credentials).items() if len(value) >= 12},
    }
    return needles


def _table_items(stack: LocalStackClient) -> Iterator[tuple[str, str]]:
    dynamodb = stack.aws("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                yield f"dynamodb {table} {item.get('pk', item.get('id'))}", json.dumps(item, ensure_ascii=False)


def _objects(stack: LocalStackClient) -> Iterator[tuple[str, str, bool]]:
    """(where, content, encrypted with a KMS key) of every S3 object."""
    s3 = stack.aws("s3")
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                got = s3.get_object(Bucket=bucket, Key=entry["Key"])
                data = got["Body"].read()
                if got.get("ContentEncoding") == "gzip" or data[:2] == b"\x1f\x8b":
                    import gzip

                    data = gzip.decompress(data)
                yield (
                    f"s3 {bucket}/{entry['Key']}",
                    data.decode("utf-8", "replace"),
                    got.get("ServerSideEncryption") == "aws:kms",
                )


def _queued(stack: LocalStackClient) -> Iterator[tuple[str, str]]:
    sqs = stack.aws("sqs")
    for url in sqs.list_queues().get("QueueUrls", []):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            yield f"sqs {url.rsplit('/', 1)[-1]}", message["Body"]


def _lines(path: Path, where: str) -> Iterator[tuple[str, str]]:
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            yield f"{where}:{number}", line


def test_no_plaintext_personal_data_or_secret_anywhere_the_stack_wrote(
    stack_factory: Callable[..., LocalStackClient],
) -> None:
    # Given a stack whose sandboxes push only what we tell them, and a capture of every bus event
    stack = stack_factory(PARCELHUB_TRACKING_LINK_SECRET=LINK_SECRET)
    for provider in ("kdniao", "sf", "kuaidi100"):
        stack.push_mode(provider, mode="manual")
    events = stack.capture_events("pii-scan")
    # When four orders with distinctive receivers are shipped, tracked to delivery and read every way
    ids = [stack.post_order(_order(n)).json()["shipment_id"] for n in range(len(RECEIVERS))]
    for shipment_id in ids:
        shipment = stack.wait_for(shipment_id, {"WAYBILL_CREATED"}, timeout=90)
        stack.push(str(shipment["provider"]), str(shipment["tracking_number"]), HAPPY)
    for shipment_id in ids:
        view = stack.wait_for(shipment_id, {"DELIVERED"}, timeout=120)
        if view.get("label_url"):
            assert requests.get(view["label_url"], timeout=30).status_code == 200
        if view.get("tracking_url"):
            assert requests.get(view["tracking_url"], timeout=30).status_code == 200
    time.sleep(3)  # the relay publishes what the last writes committed
    published = events.drain()
    # Then nothing but the KMS-encrypted places holds a receiver's data, and no secret is anywhere
    corpus: list[tuple[str, str]] = [*_table_items(stack), *_queued(stack)]
    corpus += [(f"event {e.get('detail-type')}", json.dumps(e, ensure_ascii=False)) for e in published]
    corpus += [*_lines(stack.log_path, "function log")]
    corpus += [
        *_lines(stack.local_dir / "alerts.jsonl", "alert"),
        *_lines(stack.local_dir / "oms-callbacks.jsonl", "callback"),
    ]
    objects = list(_objects(stack))
    needles = _needles()
    found = [(where, what) for where, text in corpus for what, needle in needles.items() if needle in text]
    found += [
        (where, what)
        for where, text, encrypted in objects
        for what, needle in needles.items()
        if needle in text and (not encrypted or not what.startswith(("name", "phone", "address")))
    ]
    assert published, "the run published no events: the scan would prove nothing"
    assert any(where.startswith("s3") for where, _, _ in objects), "no S3 object was written"
    assert not found, found[:20]
