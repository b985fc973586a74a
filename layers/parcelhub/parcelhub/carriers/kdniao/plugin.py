"""The Kdniao (快递鸟) provider plugin: an aggregator issuing e-waybills for many carriers (1007/1147),
tracking them (8008 subscribe, 8001 query) and pushing full snapshots (101/102; 107 COD); it answers the
e-waybill balance of a carrier's account (1127) and names the carriers of a tracking number (2002).

Wiring only: ``builders`` make the form, ``client`` posts it, ``parsers`` read the answer.
It cannot fetch an existing waybill (``Capability.FETCH_WAYBILLS`` is not offered)."""

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
from parcelhub.carriers.kdniao import builders, parsers
from parcelhub.carriers.kdniao.client import KdniaoClient
from parcelhub.carriers.kdniao.codes import PROVIDER
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.domain.models import Carrier, PickupBooking, Provider, Waybill


class KdniaoPlugin:
    name = Provider.KDNIAO
    settings_type = KdniaoSettings
    capabilities = frozenset(
        {
            Capability.ISSUE_WAYBILLS,
            Capability.CANCEL_WAYBILLS,
            Capability.PUSH_TRACKING,
            Capability.WAYBILL_BALANCE,
            Capability.BOOK_PICKUP,
            Capability.RECOGNISE_NUMBERS,
        }
    )

    def __init__(
        self,
        settings: KdniaoSettings,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], datetime] = china_now,
    ) -> None:
        self.settings = settings
        self.client = KdniaoClient(settings, session)
        self._clock = clock

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KdniaoPlugin:
        return cls(KdniaoSettings.from_config(config))

    def supported_carriers(self) -> frozenset[Carrier]:
        return self.settings.carriers

    # ------------------------------------------------------------------------------------ waybills
    def create_waybill(self, order: WaybillOrder) -> Waybill:
        body = self.client.create(builders.build_create_request(order, self.settings))
        return parsers.parse_create_response(body, order, self.settings)

    def cancel_waybill(self, waybill: Waybill) -> None:
        body = self.client.cancel(builders.build_cancel_request(waybill, self.settings))
        parsers.parse_cancel_response(body, self.settings)

    def fetch_waybill(self, order_id: str) -> Waybill:
        raise CapabilityNotSupported(PROVIDER, Capability.FETCH_WAYBILLS, "kdniao cannot fetch an existing waybill")

    def waybill_balance(self, carrier: Carrier) -> int:
        body = self.client.balance(builders.build_balance_request(carrier, self.settings))
        return parsers.parse_balance_response(body, self.settings)

    # ------------------------------------------------------------------------------------ door pickup
    def book_pickup(self, order: PickupOrder) -> PickupBooking:
        """预约取件 (1001 on OOrderService) or an e-waybill with a window (1007), per the carrier."""
        form = builders.build_pickup_request(order, self.settings)
        eorder = self.settings.pickup_method(order.carrier) == "eorder"
        body = self.client.create(form) if eorder else self.client.pickup(form)
        return parsers.parse_pickup_response(body, order, self.settings, self._clock())

    def cancel_pickup(self, booking: PickupBooking) -> None:
        """Cancel before the courier collects (1004, or 1147 for an e-waybill pickup); idempotent."""
        form = builders.build_pickup_cancel_request(booking, self.settings)
        eorder = self.settings.pickup_method(booking.carrier) == "eorder"
        body = self.client.cancel(form) if eorder else self.client.cancel_pickup(form)
        parsers.parse_pickup_cancel_response(body, self.settings)

    # ------------------------------------------------------------------------------------ tracking
    def delivery_receipt(self, carrier: Carrier, tracking_number: str, phone_last4: str | None) -> ReceiptFile | None:
        raise CapabilityNotSupported(PROVIDER, Capability.DELIVERY_RECEIPTS, "kdniao serves no delivery receipts here")

    def recognise_number(self, number: str) -> list[Carrier]:
        body = self.client.recognise(builders.build_recognise_request(number, self.settings))
        return parsers.parse_recognise_response(body, self.settings)

    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        body = self.client.subscribe(builders.build_subscribe_request(subscription, self.settings))
        parsers.parse_subscribe_response(body, self.settings)

    def query_tracking(self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None) -> ParsedPush:
        query = TrackingQuery(carrier, tracking_number, phone_last4)
        body = self.client.query(builders.build_query_request(query, self.settings))
        return parsers.parse_query_response(body, query, self.settings, self._clock())

    # ------------------------------------------------------------------------------------ pushes
    def verify_push(self, request: HttpRequest) -> None:
        parsers.verify_push(request, self.settings)

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        return parsers.parse_push(request, self.settings, self._clock())

    def push_ack(self, ok: bool, reason: str = "", request: HttpRequest | None = None) -> HttpReply:
        return parsers.push_reply(ok, reason, self.settings, self._clock())

    def close(self) -> None:
        self.client.close()
