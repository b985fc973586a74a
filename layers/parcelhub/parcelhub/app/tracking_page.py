"""The customer tracking page's use cases: a shipment's page by its token, and the lookup form.

Both are public (no API key), so both answer the same way whatever the reason they cannot help: a token
that is forged, altered or names a shipment that is gone is :class:`LinkNotFound`; an unknown order id,
a shipment without a lookup digest and wrong digits are one :class:`LookupRefused`, after the same
single read. The lookup form is rate-limited per source and per order id (:class:`TooManyAttempts`)
before anything is read, so the four digits cannot be enumerated.

The page carries only what the receiver already knows or may see: status, milestones, the carrier's
scans with phone numbers and signer names redacted, the destination city, the tracking number. No name,
phone or address, not even masked.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from parcelhub.config import HubConfig
from parcelhub.domain.branding import TrackingPageSettings
from parcelhub.domain.models import Carrier, DeliveryWindow, Shipment, TrackingEvent
from parcelhub.domain.progress import Progress, progress, shows_estimate
from parcelhub.domain.status import Status, SubStatus
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import ShipmentNotFound
from parcelhub.ports.store import AttemptCounters, TrackingPages
from parcelhub.security.links import TrackingLinks
from parcelhub.security.masking import redact_text

_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.:]{0,63}$")
_DIGITS = re.compile(r"^[0-9]{4}$")
_TEXT_LIMIT = 300
#: events shown on a page (the newest)
TIMELINE_LIMIT = 100


class LinkNotFound(Exception):
    """No page behind this token (forged, altered, or the shipment is gone): one answer for all."""


class LookupRefused(Exception):
    """No shipment matches this order id and these digits: one answer for unknown order and wrong digits."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many lookups, try again later")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    occurred_at: datetime
    status: Status
    sub_status: SubStatus
    text: str
    location: str | None


@dataclass(frozen=True, slots=True)
class ProofOfDelivery:
    delivered_at: datetime
    sub_status: SubStatus
    location: str | None
    text: str


@dataclass(frozen=True, slots=True)
class TrackingPage:
    """Everything a tracking page shows, language-neutral (the API renders it as HTML or JSON)."""

    token: str
    status: Status
    sub_status: SubStatus
    progress: Progress
    estimated_delivery: DeliveryWindow | None
    carrier: Carrier | None
    tracking_number: str | None
    destination_province: str
    destination_city: str
    timeline: list[TimelineEntry]
    proof: ProofOfDelivery | None
    returns_url: str | None
    last_event_at: datetime | None
    updated_at: datetime
    settings: TrackingPageSettings


@dataclass(frozen=True)
class TrackingPagePorts:
    pages: TrackingPages
    counters: AttemptCounters
    #: the link signer, ``None`` while no tracking-link secret is configured (the page is then off)
    links: Callable[[], TrackingLinks | None]
    config: Callable[[], HubConfig]


def _redacted(text: str) -> str:
    clean = redact_text(text.strip())
    return clean if len(clean) <= _TEXT_LIMIT else clean[: _TEXT_LIMIT - 1] + "…"


def _entry(event: TrackingEvent) -> TimelineEntry:
    return TimelineEntry(
        occurred_at=event.occurred_at,
        status=event.status,
        sub_status=event.sub_status,
        text=_redacted(event.raw_text),
        location=_redacted(event.location) if event.location else None,
    )


def _proof(shipment: Shipment, timeline: list[TimelineEntry]) -> ProofOfDelivery | None:
    if shipment.status is not Status.DELIVERED:
        return None
    recorded = shipment.proof  # the proof the fold recorded (the signing scan that won), when there is one
    delivered = next(
        (
            e
            for e in timeline
            if e.status is Status.DELIVERED and (recorded is None or e.occurred_at == recorded.signed_at)
        ),
        None,
    ) or next((e for e in timeline if e.status is Status.DELIVERED), None)
    if delivered is None:
        return None
    return ProofOfDelivery(
        delivered_at=recorded.signed_at if recorded else delivered.occurred_at,
        sub_status=delivered.sub_status,
        location=(recorded.station if recorded and recorded.station else None) or delivered.location,
        text=delivered.text,
    )


def returns_link(template: str | None, shipment: Shipment) -> str | None:
    """The brand's returns URL for a delivered shipment (placeholders replaced, URL-encoded)."""
    if not template or shipment.status is not Status.DELIVERED:
        return None
    quote = urllib.parse.quote
    return template.replace("{order_id}", quote(shipment.order_id, safe="")).replace(
        "{tracking_number}", quote(shipment.tracking_number or "", safe="")
    )


def build_page(
    token: str, shipment: Shipment, events: list[TrackingEvent], settings: TrackingPageSettings
) -> TrackingPage:
    timeline = [_entry(e) for e in events[:TIMELINE_LIMIT]]
    return TrackingPage(
        token=token,
        status=shipment.status,
        sub_status=shipment.sub_status,
        progress=progress(shipment.status, (e.status for e in events)),
        estimated_delivery=shipment.estimated_delivery if shows_estimate(shipment.status) else None,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        destination_province=shipment.destination_province,
        destination_city=shipment.destination_city,
        timeline=timeline,
        proof=_proof(shipment, timeline),
        returns_url=returns_link(settings.returns_url, shipment),
        last_event_at=shipment.last_event_at,
        updated_at=shipment.updated_at,
        settings=settings,
    )


class TrackingPageService:
    """The public tracking page and lookup form."""

    def __init__(self, ports: TrackingPagePorts) -> None:
        self.ports = ports

    def _links(self) -> TrackingLinks | None:
        links = self.ports.links()
        if links is None:
            logger().warning("tracking page requested but no tracking_link_secret is configured")
        return links

    def settings(self) -> TrackingPageSettings:
        return self.ports.config().tracking_page

    def page(self, token: str) -> TrackingPage:
        """The page of an authentic token: exactly one read; none at all for a forged token."""
        links = self._links()
        shipment_id = links.verify(token) if links is not None else None
        if shipment_id is None:
            add_metric("TrackingLinkRefused")
            raise LinkNotFound
        try:
            shipment, events = self.ports.pages.shipment_with_timeline(shipment_id, limit=TIMELINE_LIMIT)
        except ShipmentNotFound:
            raise LinkNotFound from None
        return build_page(token, shipment, events, self.settings())

    def lookup(self, order_id: str, digits: str, *, source: str, now: datetime) -> str:
        """The tracking token of the order whose receiver phone ends in ``digits``.

        Counts the attempt against ``source`` (the caller's IP) and then the order id, one conditional
        write each, before reading the order claim (one read, whatever the outcome)."""
        settings = self.settings()
        window = settings.lookup_window_seconds
        counters = self.ports.counters
        if not counters.count_attempt(f"ip:{source}", limit=settings.lookup_per_ip, window_seconds=window, now=now):
            add_metric("TrackingLookupThrottled", scope="ip")
            raise TooManyAttempts(window)
        order_id = order_id.strip()[:64]
        if not counters.count_attempt(
            f"order:{order_id}", limit=settings.lookup_per_order, window_seconds=window, now=now
        ):
            add_metric("TrackingLookupThrottled", scope="order")
            raise TooManyAttempts(window)
        links = self._links()
        if links is None or not _ORDER_ID.match(order_id):
            raise LookupRefused
        found = self.ports.pages.find_order(order_id)
        digits = digits.strip()
        shipment_id = found.shipment_id if found is not None else ""
        matched = links.digits_match(shipment_id, digits, found.lookup_digest if found else None)
        if found is None or not _DIGITS.match(digits) or not matched:
            add_metric("TrackingLookupRefused")
            raise LookupRefused
        add_metric("TrackingLookupMatched")
        return links.token(found.shipment_id)
