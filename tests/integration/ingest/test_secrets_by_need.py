"""Issue 16 items 2 and 3 on the push path: the webhook reads only the pushing provider's push secret (once
per cache period), the SF URL token is in no queued message, archived object, parked item or log line, and
the archive is written with SSE-KMS under the PII key."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.parse
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from parcelhub import composition
from parcelhub.carriers.base import CarrierAuthError
from parcelhub.domain.models import Carrier, Provider
from sandbox.carriers.base import SandboxParcel, Stage

from .conftest import REGION, SF_TOKEN, Hub, Sandboxes

pytestmark = pytest.mark.integration


@pytest.fixture
def secret_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``SecretId`` of every GetSecretValue the process makes (at the botocore boundary)."""
    reads: list[str] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetSecretValue":
            reads.append(str(params.get("SecretId")))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return reads


def as_webhook(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The webhook's environment as the template gives it: its push secrets, nothing else."""
    for name in hub.secret_env:
        if not name.endswith("_PUSH_SECRET_ARN"):
            monkeypatch.delenv(name, raising=False)
    composition.reset()


def push_one(box: Any, carrier: Carrier, number: str, stage: Stage = Stage.PICKED_UP) -> None:
    parcel = box.parcels.get(number) or box.track(
        SandboxParcel(carrier=carrier.value, tracking_number=number, order_id=f"O{number}", subscribed=True)
    )
    (push,) = box.build_push([(parcel, [box.add_scan(parcel, stage)])])
    assert box.send(push) == 200, box.push_log[-1]


def test_a_kdniao_push_reads_only_kdniaos_push_secret_once_per_cache_period(
    hub: Hub, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, secret_reads: list[str]
) -> None:
    # Given the webhook with only its push secrets, cold
    as_webhook(hub, monkeypatch)
    # When Kdniao pushes twice
    push_one(sandboxes.kdniao, Carrier.ZTO, "73100000009001")
    push_one(sandboxes.kdniao, Carrier.ZTO, "73100000009001", Stage.IN_TRANSIT)
    # Then the one secret read is Kdniao's push secret (no other provider's, no API credential, no OMS keys)
    assert secret_reads == [hub.secret_env["KDNIAO_PUSH_SECRET_ARN"]]
    # And a function not given a provider's API secret cannot call its API with the push material
    with pytest.raises(LookupError):
        composition.plugin(Provider.KDNIAO)
    sf_push = composition.push_plugin(Provider.SF)
    with pytest.raises(CarrierAuthError) as not_here:
        sf_push.cancel_waybill(_waybill())
    assert not_here.value.code == "NOT_CONFIGURED"
    assert "KDNIAO_API_SECRET_ARN" not in os.environ


def _waybill() -> Any:
    from parcelhub.domain.models import Waybill

    return Waybill(
        provider=Provider.SF, carrier=Carrier.SF, tracking_number="SF1400000009999", provider_order_id="shp_9999"
    )


def test_the_sf_token_is_in_no_message_archive_item_or_log_line_and_the_archive_is_sse_kms(
    hub: Hub, sandboxes: Sandboxes, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given SF pushes (the token in the URL path) for a number no shipment has claimed yet
    number = "SF1400000009002"
    hub.shipment(Provider.SF, Carrier.SF, number, claim=False)
    push_one(sandboxes.sf, Carrier.SF, number)
    push_one(sandboxes.sf, Carrier.SF, number, Stage.IN_TRANSIT)
    peeked = hub.sqs.receive_message(QueueUrl=hub.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    queued = [m["Body"] for m in peeked.get("Messages", [])]
    # When the normalizer archives and parks them
    hub.normalize()
    # Then the token is nowhere the pushes went: not the queue, the archive, the table or the logs
    forms = {SF_TOKEN, urllib.parse.quote(SF_TOKEN, safe="")}
    s3 = boto3.client("s3", region_name=REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=hub.bucket).get("Contents", [])]
    archived = [s3.get_object(Bucket=hub.bucket, Key=key) for key in keys]
    texts = [gzip.decompress(o["Body"].read()).decode("utf-8") for o in archived]
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=hub.table)["Items"]
    parked = [item for item in items if str(item["pk"]["S"]).startswith("PARK#")]
    logs = capsys.readouterr()
    assert queued  # the pushes did reach each place
    assert texts
    assert parked
    for place in (*queued, *texts, str(items), logs.out, logs.err):
        assert not any(form in place for form in forms)
    digest = hashlib.sha256(SF_TOKEN.encode()).hexdigest()
    assert all(digest in text for text in texts)  # what is kept: the digest the normalizer re-verifies
    # And every archived object is encrypted with the PII key (SSE-KMS, S3 Bucket Key)
    key_id = os.environ["PII_KEY_ID"]
    for key in keys:
        head = s3.head_object(Bucket=hub.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].endswith(key_id)
