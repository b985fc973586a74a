"""Delivery receipts (parcelhub.app.receipts): the provider's signed slip, copied into S3 once.

The real Kuaidi100 plugin talks to the real Kuaidi100 sandbox (its 运单附件查询 answer, a link that expires,
the image behind it); the bucket is moto's (SSE-KMS); the stream records are the in-memory store's
committed changes, decoded as the relay decodes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from parcelhub.adapters.s3 import S3ReceiptStore
from parcelhub.app.proof import proof_of_delivery
from parcelhub.app.receipts import ReceiptCopier
from parcelhub.carriers.kuaidi100.plugin import Kuaidi100Plugin
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.config import HubConfig
from parcelhub.domain.models import Carrier, Provider, TrackingEvent
from parcelhub.domain.status import Status, SubStatus, state_of
from sandbox.carriers.base import SandboxParcel, Stage
from sandbox.carriers.kuaidi100 import Kuaidi100Sandbox
from tests.conftest import HubAws
from tests.fakes.store import InMemoryShipmentStore
from tests.unit.trackings.shipments import delivered_shipment

pytestmark = pytest.mark.integration

KEY, CUSTOMER, SALT, SECRET = "it-key", "ITCUSTOMER01", "it-salt-0123456789", "it-label-secret"
NUMBER = "73100000000001"


@pytest.fixture
def sandbox() -> Iterator[Kuaidi100Sandbox]:
    with Kuaidi100Sandbox(KEY, CUSTOMER, SALT, secret=SECRET, stage_seconds=0.01, seed=3) as box:
        yield box


def plugin(box: Kuaidi100Sandbox, secret: str | None = SECRET) -> Kuaidi100Plugin:
    config: dict[str, Any] = {"key": KEY, "customer": CUSTOMER, "base_url": box.url}
    if secret:
        config["secret"] = secret
    return Kuaidi100Plugin(Kuaidi100Settings.from_config(config))


def records(store: InMemoryShipmentStore) -> list[dict[str, Any]]:
    return [{"dynamodb": {"SequenceNumber": c.record_id}, "change": c} for c in store.changes]


def record_id(record: Any) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def deliver(store: InMemoryShipmentStore, provider: Provider = Provider.KUAIDI100) -> str:
    """A shipment ``provider`` tracks, in transit, then its signing scan applied as the tracking writer does."""
    shipment = delivered_shipment(
        status=Status.IN_TRANSIT, status_key=None, receiver_masked={"phone": "****0000"}, provider=provider
    )
    store.create(shipment)
    scan = TrackingEvent(carrier=Carrier.ZTO, provider=Provider.KUAIDI100, tracking_number=NUMBER,
                         occurred_at=shipment.last_event_at, status=Status.DELIVERED,  # type: ignore[arg-type]
                         sub_status=SubStatus.SIGNED_AT_LOCKER, raw_code="304",
                         raw_text="【上海市】您的快件已由【菜鸟驿站(阳光小区店)】代收")  # fmt: skip
    store.apply_tracking_state(shipment.shipment_id, state_of(scan), last_event_text=scan.raw_text, stall=None,
                               now=shipment.created_at, proof=proof_of_delivery(scan))  # fmt: skip
    return shipment.shipment_id


def copier(
    store: InMemoryShipmentStore,
    hub: HubAws,
    box: Kuaidi100Plugin,
    seen: list[tuple[str, float]],
    config: HubConfig | None = None,
) -> ReceiptCopier:
    return ReceiptCopier(
        decode=lambda record: record["change"],
        shipments=store,
        receipts=S3ReceiptStore(hub.bucket, kms_key_id=hub.pii_key_id),
        plugin=lambda provider: box,
        config=lambda: config or HubConfig(),
        metric=lambda name, value, unit="Count", **dims: seen.append((name, value)),
    )


def test_a_delivered_parcels_receipt_is_copied_into_the_bucket_once(hub_aws: HubAws, sandbox: Kuaidi100Sandbox) -> None:
    # Given a parcel the sandbox delivered, and its DELIVERED state written with its proof
    parcel = sandbox.track(SandboxParcel(carrier="ZTO", tracking_number=NUMBER, order_id="", subscribed=True))
    for stage in (Stage.PICKED_UP, Stage.DELIVERED):
        sandbox.add_scan(parcel, stage)
    store, seen = InMemoryShipmentStore(), []
    shipment_id = deliver(store)
    # When the stream batch is handled, twice (a retried batch)
    first = copier(store, hub_aws, plugin(sandbox), seen).handle(records(store), record_id)
    again = copier(store, hub_aws, plugin(sandbox), seen).handle(records(store), record_id)
    # Then the image is in the bucket, encrypted with the key, recorded on the shipment once
    receipt = store.get(shipment_id).receipt
    assert receipt is not None
    assert (receipt.state, receipt.provider, receipt.content_type) == ("copied", Provider.KUAIDI100, "image/png")
    obj = hub_aws.client("s3").get_object(Bucket=hub_aws.bucket, Key=receipt.ref)
    assert obj["Body"].read().startswith(b"\x89PNG")
    assert obj["ServerSideEncryption"] == "aws:kms"
    assert (first.copied, first.failed_record) == (1, None)
    assert again.copied == 0
    assert next(r for r in sandbox.request_log if r.get("operation") == "receipt")["signature_valid"] is True


def test_no_receipt_for_the_parcel_is_recorded_as_unavailable(hub_aws: HubAws, sandbox: Kuaidi100Sandbox) -> None:
    store, seen = InMemoryShipmentStore(), []
    shipment_id = deliver(store)  # the sandbox never delivered this number: it has no slip
    result = copier(store, hub_aws, plugin(sandbox), seen).handle(records(store), record_id)
    receipt = store.get(shipment_id).receipt
    assert receipt is not None
    assert (receipt.state, receipt.ref) == ("unavailable", None)
    assert (result.unavailable, result.failed_record) == (1, None)


def test_a_provider_outage_fails_the_record_for_the_stream_to_retry(hub_aws: HubAws, sandbox: Kuaidi100Sandbox) -> None:
    # Given the provider down
    sandbox.faults.outage = True
    store, seen = InMemoryShipmentStore(), []
    shipment_id = deliver(store)
    # When the batch is handled / Then the record that asked is reported, nothing is recorded, it is counted
    result = copier(store, hub_aws, plugin(sandbox), seen).handle(records(store), record_id)
    assert result.failed_record is not None
    assert "CarrierUnavailable" in (result.reason or "")
    assert store.get(shipment_id).receipt is None
    assert ("DeliveryReceiptFailed", 1) in seen


def test_an_account_without_the_label_secret_asks_for_no_receipt(hub_aws: HubAws, sandbox: Kuaidi100Sandbox) -> None:
    store, seen = InMemoryShipmentStore(), []
    shipment_id = deliver(store)
    result = copier(store, hub_aws, plugin(sandbox, secret=None), seen).handle(records(store), record_id)
    assert (result.skipped, result.copied) == (1, 0)
    assert store.get(shipment_id).receipt is None
    assert not [r for r in sandbox.request_log if r.get("operation") == "receipt"]


def test_a_parcel_another_provider_tracks_is_asked_about_only_when_its_carrier_is_configured(
    hub_aws: HubAws, sandbox: Kuaidi100Sandbox
) -> None:
    # Given a ZTO parcel Kdniao tracks, delivered
    store, seen = InMemoryShipmentStore(), []
    shipment_id = deliver(store, Provider.KDNIAO)
    # When the batch is handled with the default configuration / Then Kuaidi100 is not asked, nothing recorded
    copier(store, hub_aws, plugin(sandbox), seen).handle(records(store), record_id)
    assert store.get(shipment_id).receipt is None
    assert not [r for r in sandbox.request_log if r.get("operation") == "receipt"]
    # and with ZTO among the receipt carriers (Kuaidi100 holds its e-waybill account), it is asked
    configured = HubConfig.model_validate({"receipt_carriers": ["ZTO"]})
    copier(store, hub_aws, plugin(sandbox), seen, configured).handle(records(store), record_id)
    receipt = store.get(shipment_id).receipt
    assert receipt is not None
    assert receipt.state == "unavailable"  # the sandbox never delivered this number: it has no slip
