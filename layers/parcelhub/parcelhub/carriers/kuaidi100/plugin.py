"""The Kuaidi100 provider plugin (``ProviderPlugin``): tracking only — subscribe, query, pushes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests

from parcelhub.carriers.base import (
    CarrierRejected,
    HttpReply,
    HttpRequest,
    ParsedPush,
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.carriers.kuaidi100 import mapper
from parcelhub.carriers.kuaidi100.client import Kuaidi100Client
from parcelhub.carriers.kuaidi100.codes import PROVIDER
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.domain.models import CHINA_TZ, Carrier, Provider, TrackingEvent, Waybill


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


class Kuaidi100Plugin:
    """Kuaidi100 behind the provider Protocol. Waybill calls raise ``CarrierRejected("UNSUPPORTED")``."""

    name: Provider = Provider.KUAIDI100
    issues_waybills: bool = False
    pushes_tracking: bool = True

    def __init__(
        self,
        settings: Kuaidi100Settings,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self._client = Kuaidi100Client(settings, session)
        self._clock = clock

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Kuaidi100Plugin:
        return cls(Kuaidi100Settings.model_validate(dict(config)))

    def supported_carriers(self) -> frozenset[Carrier]:
        return frozenset(self.settings.company_codes)

    # ------------------------------------------------------------------------------- waybills (none)
    def create_waybill(self, order: WaybillOrder) -> Waybill:
        raise CarrierRejected(PROVIDER, "kuaidi100 is a tracking provider here; it issues no waybills", "UNSUPPORTED")

    def cancel_waybill(self, waybill: Waybill) -> None:
        raise CarrierRejected(PROVIDER, "kuaidi100 is a tracking provider here; it cancels no waybills", "UNSUPPORTED")

    # ------------------------------------------------------------------------------------- tracking
    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        """Subscribe a tracking number; 501 (already subscribed) counts as success (idempotent)."""
        form = mapper.build_subscribe_form(self.settings, subscription)
        mapper.check_subscribe_response(self._client.subscribe(form))

    def query_tracking(
        self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None
    ) -> list[TrackingEvent]:
        """Real-time query (``/poll/query.do``): the full timeline, or ``[]`` when nothing is known yet."""
        form = mapper.build_query_form(self.settings, carrier, tracking_number, phone_last4)
        reply = self._client.query(form)
        events, _unmapped = mapper.parse_query_response(carrier, tracking_number, reply)
        return events

    # ---------------------------------------------------------------------------------------- pushes
    def verify_push(self, request: HttpRequest) -> None:
        mapper.verify_push(self.settings, request.body)

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        param = mapper.verify_push(self.settings, request.body)
        return mapper.parse_push_param(self.settings, param, self._clock())

    def push_ack(self, ok: bool, reason: str = "") -> HttpReply:
        return HttpReply(
            status_code=200 if ok else self.settings.ack_failure_http_status,
            body=mapper.ack_body(self.settings, ok, reason),
            content_type="application/json;charset=UTF-8",
        )

    def close(self) -> None:
        self._client.close()
