"""Pushes that arrive before their tracking claim (ARCHITECTURE §4): parked with a TTL — the payload inline
when small, else by reference to its line in the batch's raw archive — taken (read + delete, each by one
taker) when the claim appears, read back into scans, and put back with the claim flagged when applying
them failed, so the next ingest of the number takes them again. The ingest decides when (``app.ingest``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from parcelhub.app.ingest_batch import BatchResult, _Group, _Read
from parcelhub.domain.models import TrackingEvent

if TYPE_CHECKING:
    from parcelhub.config import HubConfig
    from parcelhub.ports.messaging import RawArchive
    from parcelhub.ports.store import IngestStore, ParkedPush, TrackingClaim

#: parked payloads up to this size are stored inline in the parked item; larger ones by archive reference
PARK_INLINE_MAX_BYTES = 4096
INLINE_PREFIX = "inline:"
ARCHIVE_PREFIX = "s3:"
#: passed to ``take_parked`` as "now" so the store hands back expired items too: we count them
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PushParking:
    """The ingest's parked pushes over the store and the raw archive (cheap to build)."""

    def __init__(
        self,
        store: IngestStore,
        archive: RawArchive,
        config: HubConfig,
        *,
        read: Callable[[str], _Read],
        metric: Callable[..., None],
        log: Callable[[], Any],
    ) -> None:
        self.store = store
        self.archive = archive
        self.config = config
        self.read = read
        self.metric = metric
        self.log = log

    @staticmethod
    def payload_ref(body: str, key: str, line: int) -> str:
        if len(body.encode("utf-8")) <= PARK_INLINE_MAX_BYTES:
            return INLINE_PREFIX + body
        return f"{ARCHIVE_PREFIX}{key}#{line}"

    def park(self, group: _Group, now: datetime, result: BatchResult) -> None:
        expires_at = now + timedelta(hours=self.config.parked_push_ttl_hours)
        for source in group.sources.values():
            self.store.park_push(
                group.carrier.value, group.tracking_number, source.payload_ref, source.received_at, expires_at
            )
            result.parked += 1
            self.metric("PushParked", 1)
        self.log().info(
            "push parked: tracking number not claimed yet",
            extra={"carrier": group.carrier.value, "tracking_number": group.tracking_number[:40]},
        )

    def take(self, claim: TrackingClaim, also: Sequence[str] = ()) -> list[ParkedPush]:
        """Take (read + delete) the pushes parked for the claim's number, expired ones included."""
        if claim.parked:  # cleared before the take: a replay failing after it flags the claim again
            self.store.flag_parked(claim.carrier, claim.tracking_number, False)
        taken: list[ParkedPush] = []
        for carrier in dict.fromkeys([claim.carrier, *also]):
            taken += self.store.take_parked(carrier, claim.tracking_number, now=_EPOCH)
        return taken

    def replay(
        self, claim: TrackingClaim, taken: Sequence[ParkedPush], now: datetime, result: BatchResult
    ) -> list[tuple[TrackingEvent, datetime]]:
        """The scans of taken parked pushes for the claim's number; expired pushes are counted, not applied
        (TTL deletion is lazy, so an expired item can still be found)."""
        scans: list[tuple[TrackingEvent, datetime]] = []
        cache: dict[str, list[str]] = {}
        carriers = {parked.carrier for parked in taken} | {claim.carrier}
        for parked in taken:
            if parked.expires_at <= now:
                result.expired += 1
                self.metric("PushParkedExpired", 1)
                continue
            read = self.read(self._load(parked.payload_ref, cache))
            scans += [
                (e, read.received_at)
                for e in read.events
                if e.tracking_number == claim.tracking_number and e.carrier.value in carriers
            ]
            result.replayed += 1
        return scans

    def repark(self, claim: TrackingClaim, items: Sequence[ParkedPush], now: datetime) -> None:
        """Put taken pushes back when applying them failed (they must not be lost with the retry), and flag
        the claim so that the next ingest of the number takes them again."""
        back = [item for item in items if item.expires_at > now]
        for item in back:
            self.store.park_push(
                item.carrier, item.tracking_number, item.payload_ref, item.received_at, item.expires_at
            )
        if back:
            self.store.flag_parked(claim.carrier, claim.tracking_number, True)

    def _load(self, payload_ref: str, cache: dict[str, list[str]]) -> str:
        if payload_ref.startswith(INLINE_PREFIX):
            return payload_ref[len(INLINE_PREFIX) :]
        if not payload_ref.startswith(ARCHIVE_PREFIX):
            raise ValueError(f"unknown payload reference {payload_ref[:40]!r}")
        key, _, line = payload_ref[len(ARCHIVE_PREFIX) :].rpartition("#")
        if key not in cache:
            cache[key] = self.archive.get_lines(key)
        record = json.loads(cache[key][int(line)])
        return str(record["body"])
