"""The Kdniao (快递鸟) provider plugin: an aggregator issuing e-waybills for many carriers (1007/1147),
tracking them (8008 subscribe, 8001 query) and pushing full snapshots (101/102; 107 COD)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests

from parcelhub.carriers.base import (
    HttpReply,
    HttpRequest,
    ParsedPush,
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.carriers.kdniao import mapper
from parcelhub.carriers.kdniao.client import KdniaoClient
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.domain.models import CHINA_TZ, Carrier, Provider, TrackingEvent, Waybill


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


class KdniaoPlugin:
    name = Provider.KDNIAO
    issues_waybills = True
    pushes_tracking = True

    def __init__(
        self,
        settings: KdniaoSettings,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.client = KdniaoClient(settings, session)
        self._clock = clock

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KdniaoPlugin:
        return cls(KdniaoSettings.model_validate(dict(config)))

    def supported_carriers(self) -> frozenset[Carrier]:
        return self.settings.carriers

    # ------------------------------------------------------------------------------------- calls
    def create_waybill(self, order: WaybillOrder) -> Waybill:
        settings = self.settings
        body = self.client.call(
            settings.eorder_path, settings.create_request_type, mapper.build_create_request(order, settings)
        )
        return mapper.parse_create_response(body, order, settings)

    def cancel_waybill(self, waybill: Waybill) -> None:
        settings = self.settings
        body = self.client.call(
            settings.eorder_path, settings.cancel_request_type, mapper.build_cancel_request(waybill, settings)
        )
        mapper.check_result(body, settings)

    def subscribe_tracking(self, subscription: TrackingSubscription) -> None:
        settings = self.settings
        body = self.client.call(
            settings.subscribe_path, settings.subscribe_request_type, mapper.build_subscribe_request(subscription)
        )
        mapper.check_result(body, settings)

    def query_tracking(
        self, carrier: Carrier, tracking_number: str, phone_last4: str | None = None
    ) -> list[TrackingEvent]:
        settings = self.settings
        body = self.client.call(
            settings.query_path,
            settings.query_request_type,
            mapper.build_query_request(carrier, tracking_number, phone_last4),
        )
        return mapper.parse_query_response(body, settings)

    # ------------------------------------------------------------------------------------- pushes
    def verify_push(self, request: HttpRequest) -> None:
        mapper.verify_push_form(mapper.decode_form(request.body), self.settings)

    def parse_push(self, request: HttpRequest) -> ParsedPush:
        return mapper.parse_push_form(mapper.decode_form(request.body), self.settings)

    def push_ack(self, ok: bool, reason: str = "") -> HttpReply:
        return mapper.push_reply(ok, reason, self.settings, self._clock())
