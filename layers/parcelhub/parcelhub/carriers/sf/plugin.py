"""The ``sf`` provider plugin (SF Express Fengqiao, direct): waybills, cancel, route query, route push.

* ``subscribe_tracking`` is a documented no-op: SF pushes routes for every order created through
  Fengqiao to the push URL configured in its console (REFERENCE §2.6), so ``pushes_tracking`` is True.
* SF does not sign pushes; our webhook URL carries a secret token (``/v1/webhooks/sf/{token}``),
  compared in constant time with ``settings.push_token``.
* A duplicate ``orderId`` is ``CarrierDuplicateOrder`` (8016); the workflow then calls
  :meth:`SfPlugin.fetch_waybill` (EXP_RECE_SEARCH_ORDER_RESP) to recover the existing waybill.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import requests

from parcelhub.carriers.base import (
    CarrierRejected,
    HttpReply,
    HttpRequest,
    ParsedPush,
    PushRejected,
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.carriers.sf import mapper
from parcelhub.carriers.sf.client import SfClient
from parcelhub.carriers.sf.codes import PROVIDER, ErrorKind, business_rule
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import Carrier, Provider, TrackingEvent, Waybill

SUPPORTED: frozenset[Carrier] = frozenset({Carrier.SF})


class SfPlugin:
    name: Provider = Provider.SF
    issues_waybills: bool = True
    pushes_tracking: bool = True

    def __init__(self, settings: SfSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.client = SfClient(settings, session)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SfPlugin:
        return cls(SfSettings.model_validate(dict(config)))

    def supported_carriers(self) -> frozenset[Carrier]:
        return SUPPORTED

    def _require_sf(self, carrier: Carrier) -> None:
        if carrier not in SUPPORTED:
            raise CarrierRejected(PROVIDER, f"SF Fengqiao only serves SF, not {carrier}", "UNSUPPORTED_CARRIER")

    # ------------------------------------------------------------------------------------ waybills
    def create_waybill(self, order: WaybillOrder) -> Waybill:
        self._require_sf(order.carrier)
        payload = mapper.create_order_payload(self.settings, order)
        msg_data = self.client.call(self.settings.service_codes.create_order, payload)
        return mapper.waybill_from_order(msg_data)

    def fetch_waybill(self, order_id: str) -> Waybill:
        """The waybill of an order SF already has (after ``CarrierDuplicateOrder``)."""
        payload = mapper.search_order_payload(self.settings, order_id)
        msg_data = self.client.call(self.settings.service_codes.search_order, payload)
        return mapper.waybill_from_order(msg_data)

    get_order = fetch_waybill

    def cancel_waybill(self, waybill: Waybill) -> None:
        """Cancel (``dealType`` 2). Idempotent: an order SF reports as already cancelled is done."""
        payload = mapper.cancel_order_payload(self.settings, waybill)
        try:
            self.client.call(self.settings.service_codes.update_order, payload)
        except CarrierRejected as exc:
            if exc.code and business_rule(exc.code).kind is ErrorKind.ALREADY_CANCELLED:
                return
            raise

    # ------------------------------------------------------------------------------------ tracking
    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        """No-op: SF pushes routes of Fengqiao-created orders automatically (REFERENCE §2.6)."""
        self._require_sf(subscription.carrier)

    def query_tracking(
        self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None
    ) -> list[TrackingEvent]:
        self._require_sf(carrier)
        payload = mapper.search_routes_payload(self.settings, tracking_number, phone_last4)
        msg_data = self.client.call(self.settings.service_codes.search_routes, payload)
        return list(mapper.events_from_routes(msg_data).events)

    # ------------------------------------------------------------------------------------ pushes
    def verify_push(self, request: HttpRequest) -> None:
        """Constant-time check of the URL token (SF does not sign pushes). No I/O."""
        token = request.path_params.get("token") or ""
        expected = self.settings.push_token.get_secret_value()
        if not token or not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
            raise PushRejected(PROVIDER, "bad or missing URL token")

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        self.verify_push(request)
        return mapper.parse_push_body(request.body, request.header("Content-Type"))

    def push_ack(self, ok: bool, reason: str = "") -> HttpReply:
        return mapper.push_ack(self.settings.push_format, ok, reason)
