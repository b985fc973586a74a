"""Kdniao HTTP client: I/O only, one method per call, each posting a built form to its endpoint.

Transport outcomes are typed by ``parcelhub.carriers.http`` (connect failures are the only retries;
a create that may have reached Kdniao is never re-sent here). No ``fetch``: see ``builders``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from parcelhub.carriers.http import FormClient
from parcelhub.carriers.kdniao.codes import PROVIDER
from parcelhub.carriers.kdniao.settings import KdniaoSettings


class KdniaoClient(FormClient):
    def __init__(self, settings: KdniaoSettings, session: requests.Session | None = None) -> None:
        super().__init__(PROVIDER, settings.timeout, session)
        self.settings = settings

    def create(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.eorder_path), form)

    def cancel(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.eorder_path), form)

    def balance(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.eorder_path), form)

    def subscribe(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.subscribe_path), form)

    def query(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.query_path), form)

    def pickup(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.oorder_path), form)

    def cancel_pickup(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.oorder_path), form)

    def recognise(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url(self.settings.recognise_path), form)
