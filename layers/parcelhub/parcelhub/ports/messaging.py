"""Ports to the outside world other than the table: queues, the waybill workflow, object storage, the
PII cipher. Adapters in ``parcelhub.adapters`` implement them; unit tests pass fakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from parcelhub.domain.models import Party


class NotEnqueued(Exception):
    """Some messages could not be enqueued (the queue is unreachable, throttled, or refused them)."""


@runtime_checkable
class MessageSink(Protocol):
    """A queue: every body is enqueued or :class:`NotEnqueued` says it was not."""

    def send(self, bodies: Sequence[str]) -> None: ...


@runtime_checkable
class WorkflowStarter(Protocol):
    """Starts the waybill workflow; execution names are unique per run."""

    def start(self, name: str, shipment_id: str) -> bool:
        """True when started, False when an execution of that name already exists."""


@runtime_checkable
class RawArchive(Protocol):
    """The raw push archive: gzip JSON lines, one object per normalizer batch."""

    def put_lines(self, key: str, lines: Sequence[str]) -> None: ...

    def get_lines(self, key: str) -> list[str]: ...


class LabelNotStored(Exception):
    """The label store refused or could not be reached (retryable: the waybill is fetched again)."""


@runtime_checkable
class LabelStore(Protocol):
    """Waybill labels (they hold personal data) and short-lived links to them."""

    def put(self, shipment_id: str, tracking_number: str, label: str) -> str:
        """Store the label; returns its key (``LabelNotStored`` when it cannot)."""

    def link(self, key: str, expires_in: int) -> str:
        """A time-limited link to a stored label (computed locally: no request)."""


class ReceiptNotStored(Exception):
    """A delivery receipt could not be written to the bucket."""


class ReceiptStore(Protocol):
    """Delivery receipts (signature images: personal data) and short-lived links to them."""

    def put_receipt(self, shipment_id: str, tracking_number: str, body: bytes, content_type: str) -> str:
        """Store the receipt; returns its key (``ReceiptNotStored`` when it cannot)."""

    def link(self, key: str, expires_in: int) -> str:
        """A time-limited link (computed locally: no request)."""


@runtime_checkable
class PartyCipher(Protocol):
    """Seals a party's personal data for one shipment (the envelope does not open for another)."""

    def encrypt_party(self, party: Party, shipment_id: str) -> str: ...

    def decrypt_party(self, envelope: str, shipment_id: str) -> Party: ...
