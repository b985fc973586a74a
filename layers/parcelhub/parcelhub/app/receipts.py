"""Delivery receipts (issue 19 item 3): the provider's signed slip or photo of a delivery, copied into the
project's encrypted bucket as soon as the parcel is delivered - the provider's own links expire - and
served by a short-lived link.

The table's stream carries the write that recorded a shipment's proof of delivery (``proof`` appears on
the item, with the DELIVERED state); for a parcel the receipt provider tracks (or one of
``receipt_carriers``), :class:`ReceiptCopier` then asks the configured receipt provider
(Kuaidi100 运单附件查询 ``backOrder``; ``Capability.DELIVERY_RECEIPTS``) for the receipt, stores its bytes
under ``receipts/`` (SSE-KMS) and records ``receipt`` on the shipment with one conditional write (once:
a retried record finds it recorded and stops). The provider having none is recorded as ``unavailable``;
a provider that cannot be reached fails the record, and the stream retries it (then its ``OnFailure``
queue): no receipt is silently given up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from parcelhub.carriers.base import Capability, CarrierError
from parcelhub.domain.models import DeliveryReceipt, Provider, Shipment
from parcelhub.ports.changes import ChangeDecoder, ShipmentImage

if TYPE_CHECKING:
    from parcelhub.carriers.base import ProviderPlugin
    from parcelhub.config import HubConfig
    from parcelhub.ports.messaging import ReceiptStore
    from parcelhub.ports.store import Shipments


def wants_receipt(old: ShipmentImage | None, new: ShipmentImage) -> bool:
    """Did this write record the proof of delivery of a shipment whose receipt is not copied yet?"""
    shipment = new.shipment
    return (
        shipment.proof is not None
        and shipment.receipt is None
        and shipment.carrier is not None
        and bool(shipment.tracking_number)
        and (old is None or old.shipment.proof is None)
    )


@dataclass(slots=True)
class ReceiptResult:
    copied: int = 0
    unavailable: int = 0
    skipped: int = 0
    #: the first record that failed (the stream retries from it) and why
    failed_record: str | None = None
    reason: str | None = None
    copied_ids: list[str] = field(default_factory=list)


class ReceiptCopier:
    """Copy the receipts of the deliveries a stream batch recorded."""

    def __init__(
        self,
        *,
        decode: ChangeDecoder,
        shipments: Shipments,
        receipts: ReceiptStore,
        plugin: Callable[[Provider], ProviderPlugin],
        config: Callable[[], HubConfig],
        metric: Callable[..., None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.decode = decode
        self.shipments = shipments
        self.receipts = receipts
        self.plugin = plugin
        self.config = config
        self.metric = metric
        self.clock = clock

    def _asks_about(self, shipment: Shipment) -> bool:
        """The receipt provider knows the parcels it tracks, and those of the carriers configured for it."""
        config = self.config()
        provider = config.receipt_provider
        return provider is not None and (shipment.provider is provider or shipment.carrier in config.receipt_carriers)

    def _provider(self) -> ProviderPlugin | None:
        provider = self.config().receipt_provider
        if provider is None:
            return None
        try:
            plugin = self.plugin(provider)
        except (LookupError, ValueError):
            return None  # not configured for this function
        return plugin if Capability.DELIVERY_RECEIPTS in plugin.capabilities else None

    def handle(
        self, records: Sequence[Mapping[str, Any]], record_id: Callable[[Mapping[str, Any]], str]
    ) -> ReceiptResult:
        result = ReceiptResult()
        plugin: ProviderPlugin | None = None
        for record in records:
            change = self.decode(record)
            if change is None or not isinstance(change.new, ShipmentImage):
                continue
            old = change.old if isinstance(change.old, ShipmentImage) else None
            if not wants_receipt(old, change.new) or not self._asks_about(change.new.shipment):
                continue
            plugin = plugin or self._provider()
            if plugin is None:
                result.skipped += 1
                continue
            try:
                self._copy(plugin, change.new.shipment, result)
            except Exception as exc:  # any failure: the stream retries the record (then its OnFailure queue)
                result.failed_record, result.reason = record_id(record), f"{type(exc).__name__}: {exc}"[:300]
                self.metric("DeliveryReceiptFailed", 1, "Count", error=type(exc).__name__)
                break
        self.metric("DeliveryReceiptCopied", result.copied, "Count")
        return result

    def _copy(self, plugin: ProviderPlugin, shipment: Shipment, result: ReceiptResult) -> None:
        carrier, number = shipment.carrier, shipment.tracking_number or ""
        if carrier is None:  # wants_receipt checked it
            return
        phone = shipment.receiver_masked.get("phone", "")
        last4 = phone[-4:] if len(phone) >= 4 and phone[-4:].isdigit() else None
        try:
            found = plugin.delivery_receipt(carrier, number, last4)
        except CarrierError as error:
            if error.retryable:
                raise
            found = None  # the provider refuses it for this parcel: nothing to copy
        now = self.clock()
        if found is None:
            receipt = DeliveryReceipt(state="unavailable", provider=plugin.name, at=now)
            result.unavailable += self.shipments.set_receipt(shipment.shipment_id, receipt)
            return
        key = self.receipts.put_receipt(shipment.shipment_id, number, found.body, found.content_type)
        receipt = DeliveryReceipt(
            state="copied", ref=key, content_type=found.content_type, provider=plugin.name, at=now
        )
        if self.shipments.set_receipt(shipment.shipment_id, receipt):
            result.copied += 1
            result.copied_ids.append(shipment.shipment_id)
