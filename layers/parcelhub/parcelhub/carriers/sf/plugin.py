"""The ``sf`` provider plugin (SF Express Fengqiao, direct): waybills, cancel, fetch, route query and
route push. Wiring only: ``builders`` make the form, ``client`` posts it, ``parsers`` read the answer.

* ``subscribe_tracking`` is a documented no-op: SF pushes routes for every order created through
  Fengqiao to the push URL configured in its console (REFERENCE §2.6), so it pushes tracking.
* SF does not sign pushes; our webhook URL carries a secret token (``/v1/webhooks/sf/{token}``),
  compared in constant time with ``settings.push_token``.
* A duplicate ``orderId`` is ``CarrierDuplicateOrder`` (8016); the workflow then calls
  :meth:`SfPlugin.fetch_waybill` (EXP_RECE_SEARCH_ORDER_RESP) to recover the existing waybill.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests

from parcelhub.carriers.base import (
    Capability,
    CapabilityNotSupported,
    CarrierOrderNotFound,
    CarrierRejected,
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
from parcelhub.carriers.sf import builders, parsers
from parcelhub.carriers.sf.client import SfClient
from parcelhub.carriers.sf.codes import PROVIDER
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import Carrier, PickupBooking, Provider, Waybill

SUPPORTED: frozenset[Carrier] = frozenset({Carrier.SF})
#: EXP_RECE_SEARCH_ORDER_RESP codes meaning SF has no such order (8018 未获取到订单信息)
ORDER_NOT_FOUND = frozenset({"8018"})


class SfPlugin:
    name: Provider = Provider.SF
    settings_type = SfSettings
    capabilities = frozenset(
        {
            Capability.ISSUE_WAYBILLS,
            Capability.CANCEL_WAYBILLS,
            Capability.FETCH_WAYBILLS,
            Capability.PUSH_TRACKING,
            Capability.BOOK_PICKUP,
        }
    )

    def __init__(
        self,
        settings: SfSettings,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], datetime] = china_now,
        request_ids: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.settings = settings
        self.client = SfClient(settings, session)
        self._clock = clock
        self._request_ids = request_ids

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SfPlugin:
        return cls(SfSettings.from_config(config))

    def supported_carriers(self) -> frozenset[Carrier]:
        return SUPPORTED

    def _require_sf(self, carrier: Carrier) -> None:
        if carrier not in SUPPORTED:
            raise CarrierRejected(PROVIDER, f"SF Fengqiao only serves SF, not {carrier}", "UNSUPPORTED_CARRIER")

    def _stamp(self) -> builders.Stamp:
        timestamp = builders.timestamp_for(self.settings, self._clock().timestamp())
        return builders.Stamp(timestamp=timestamp, request_id=self._request_ids())

    # ------------------------------------------------------------------------------------ waybills
    def create_waybill(self, order: WaybillOrder) -> Waybill:
        self._require_sf(order.carrier)
        body = self.client.create(builders.build_create_request(order, self.settings, self._stamp()))
        return parsers.parse_create_response(body, order, self.settings)

    def cancel_waybill(self, waybill: Waybill) -> None:
        """Cancel (``dealType`` 2). Idempotent: an order SF reports as already cancelled is done."""
        body = self.client.cancel(builders.build_cancel_request(waybill, self.settings, self._stamp()))
        parsers.parse_cancel_response(body, self.settings)

    def fetch_waybill(self, order_id: str) -> Waybill:
        """The waybill of an order SF already has; 8018 (no such order) is ``CarrierOrderNotFound``."""
        body = self.client.fetch(builders.build_fetch_request(order_id, self.settings, self._stamp()))
        try:
            return parsers.parse_fetch_response(body, self.settings)
        except CarrierRejected as rejected:
            if rejected.code in ORDER_NOT_FOUND:
                raise CarrierOrderNotFound(PROVIDER, rejected.message, rejected.code) from None
            raise

    def waybill_balance(self, carrier: Carrier) -> int:
        raise CapabilityNotSupported(PROVIDER, Capability.WAYBILL_BALANCE, "sf has no e-waybill balance query")

    def delivery_receipt(self, carrier: Carrier, tracking_number: str, phone_last4: str | None) -> ReceiptFile | None:
        raise CapabilityNotSupported(PROVIDER, Capability.DELIVERY_RECEIPTS, "sf serves no delivery receipts here")

    # ------------------------------------------------------------------------------------ door pickup
    def book_pickup(self, order: PickupOrder) -> PickupBooking:
        """A door pickup for a return (reverse order, or a create with ``isDocall``: ``pickup_method``)."""
        self._require_sf(order.carrier)
        body = self.client.pickup(builders.build_pickup_request(order, self.settings, self._stamp()))
        return parsers.parse_pickup_response(body, order, self.settings, self._clock())

    def cancel_pickup(self, booking: PickupBooking) -> None:
        """Cancel a pickup before the courier collects; idempotent (already cancelled is done)."""
        body = self.client.cancel_pickup(builders.build_pickup_cancel_request(booking, self.settings, self._stamp()))
        parsers.parse_pickup_cancel_response(body, self.settings)

    def recognise_number(self, number: str) -> list[Carrier]:
        raise CapabilityNotSupported(PROVIDER, Capability.RECOGNISE_NUMBERS, "sf recognises no tracking numbers")

    # ------------------------------------------------------------------------------------ tracking
    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        """No-op: SF pushes routes of Fengqiao-created orders automatically (REFERENCE §2.6)."""
        self._require_sf(subscription.carrier)

    def query_tracking(self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None) -> ParsedPush:
        self._require_sf(carrier)
        query = TrackingQuery(carrier, tracking_number, phone_last4)
        body = self.client.query(builders.build_query_request(query, self.settings, self._stamp()))
        return parsers.parse_query_response(body, query, self.settings)

    # ------------------------------------------------------------------------------------ pushes
    def verify_push(self, request: HttpRequest) -> None:
        parsers.verify_push(request, self.settings)

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        return parsers.parse_push(request, self.settings, self._clock())

    def push_ack(self, ok: bool, reason: str = "", request: HttpRequest | None = None) -> HttpReply:
        return parsers.push_reply(ok, reason, self.settings, self._clock(), request)

    def close(self) -> None:
        self.client.close()
