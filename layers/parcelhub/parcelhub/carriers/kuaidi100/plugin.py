"""The Kuaidi100 provider plugin: tracking only — subscribe, query, pushes.

Wiring only: ``builders`` make the form, ``client`` posts it, ``parsers`` read the answer. It issues,
cancels and fetches no waybills: those calls raise ``CapabilityNotSupported`` (code ``UNSUPPORTED``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests

from parcelhub.carriers.base import (
    Capability,
    CapabilityNotSupported,
    HttpReply,
    HttpRequest,
    ParsedPush,
    PickupOrder,
    ReceiptFile,
    TrackingQuery,
    TrackingSubscription,
    WaybillOrder,
    china_now,
)
from parcelhub.carriers.kuaidi100 import builders, parsers
from parcelhub.carriers.kuaidi100.client import Kuaidi100Client
from parcelhub.carriers.kuaidi100.codes import PROVIDER
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.domain.models import Carrier, PickupBooking, Provider, Waybill

TRACKING_ONLY = "kuaidi100 is a tracking provider here; it {} no waybills"

#: Kuaidi100 offers 商家寄件 (a pickup product), not wired here
NO_PICKUP = "kuaidi100 books no door pickups here"


class Kuaidi100Plugin:
    name: Provider = Provider.KUAIDI100
    settings_type = Kuaidi100Settings
    capabilities = frozenset({Capability.PUSH_TRACKING, Capability.RECOGNISE_NUMBERS})

    def __init__(
        self,
        settings: Kuaidi100Settings,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], datetime] = china_now,
    ) -> None:
        self.settings = settings
        self.client = Kuaidi100Client(settings, session)
        self._clock = clock
        if settings.secret is not None:  # the label API's secret: the account has receipts
            self.capabilities = self.capabilities | {Capability.DELIVERY_RECEIPTS}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Kuaidi100Plugin:
        return cls(Kuaidi100Settings.from_config(config))

    def supported_carriers(self) -> frozenset[Carrier]:
        return frozenset(self.settings.company_codes)

    # ------------------------------------------------------------------------------- waybills (none)
    def create_waybill(self, order: WaybillOrder) -> Waybill:
        raise CapabilityNotSupported(PROVIDER, Capability.ISSUE_WAYBILLS, TRACKING_ONLY.format("issues"))

    def cancel_waybill(self, waybill: Waybill) -> None:
        raise CapabilityNotSupported(PROVIDER, Capability.CANCEL_WAYBILLS, TRACKING_ONLY.format("cancels"))

    def fetch_waybill(self, order_id: str) -> Waybill:
        raise CapabilityNotSupported(PROVIDER, Capability.FETCH_WAYBILLS, TRACKING_ONLY.format("fetches"))

    def waybill_balance(self, carrier: Carrier) -> int:
        raise CapabilityNotSupported(PROVIDER, Capability.WAYBILL_BALANCE, "kuaidi100 has no e-waybill balance query")

    def book_pickup(self, order: PickupOrder) -> PickupBooking:
        raise CapabilityNotSupported(
            PROVIDER, Capability.BOOK_PICKUP, "kuaidi100 books no pickups here (商家寄件 not wired)"
        )

    def cancel_pickup(self, booking: PickupBooking) -> None:
        raise CapabilityNotSupported(
            PROVIDER, Capability.BOOK_PICKUP, "kuaidi100 books no pickups here (商家寄件 not wired)"
        )

    # ------------------------------------------------------------------------------------- tracking
    def recognise_number(self, number: str) -> list[Carrier]:
        """智能单号识别: the carriers Kuaidi100 names for the number, best first (empty when it has none)."""
        body = self.client.autonumber(builders.build_autonumber_request(number, self.settings))
        return parsers.parse_autonumber_response(body, self.settings)

    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        """Subscribe a tracking number; 501 (already subscribed) counts as success (idempotent)."""
        body = self.client.subscribe(builders.build_subscribe_request(subscription, self.settings))
        parsers.parse_subscribe_response(body, self.settings)

    def query_tracking(self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None) -> ParsedPush:
        """Real-time query (``/poll/query.do``): the full timeline, or none when nothing is known yet."""
        query = TrackingQuery(carrier, tracking_number, phone_last4)
        body = self.client.query(builders.build_query_request(query, self.settings))
        return parsers.parse_query_response(body, query, self.settings)

    def delivery_receipt(self, carrier: Carrier, tracking_number: str, phone_last4: str | None) -> ReceiptFile | None:
        """运单附件查询, then the image downloaded at once (its link expires); ``None`` when there is none."""
        if Capability.DELIVERY_RECEIPTS not in self.capabilities:
            raise CapabilityNotSupported(PROVIDER, Capability.DELIVERY_RECEIPTS, "no label API secret configured")
        t = str(int(self._clock().timestamp() * 1000))
        body = self.client.receipt(
            builders.build_receipt_request(carrier, tracking_number, phone_last4, self.settings, t)
        )
        link = parsers.parse_receipt_response(body, self.settings)
        if link is None:
            return None
        content, content_type = self.client.download(link)
        return ReceiptFile(body=content, content_type=content_type)

    # ---------------------------------------------------------------------------------------- pushes
    def verify_push(self, request: HttpRequest) -> None:
        parsers.verify_push(request, self.settings)

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        return parsers.parse_push(request, self.settings, self._clock())

    def push_ack(self, ok: bool, reason: str = "", request: HttpRequest | None = None) -> HttpReply:
        return parsers.push_reply(ok, reason, self.settings, self._clock())

    def close(self) -> None:
        self.client.close()
