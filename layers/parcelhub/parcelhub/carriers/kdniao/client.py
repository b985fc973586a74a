"""Kdniao HTTP client: I/O only. One pooled ``requests`` session, connect + read timeouts, and the
transport outcome translated by ``parcelhub.carriers.http`` (connect failures are the only retries;
a create that may have reached Kdniao is never re-sent here)."""

from __future__ import annotations

from typing import Any

import requests

from parcelhub.carriers.http import json_body, new_session, post_form
from parcelhub.carriers.kdniao.mapper import PROVIDER, envelope
from parcelhub.carriers.kdniao.settings import KdniaoSettings


class KdniaoClient:
    def __init__(self, settings: KdniaoSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or new_session()

    def call(self, path: str, request_type: str, request_data: str) -> dict[str, Any]:
        """POST one signed envelope and return the JSON answer (business errors are the mapper's)."""
        form = envelope(request_data, request_type, self.settings)
        response = post_form(self.session, PROVIDER, self.settings.url(path), form, timeout=self.settings.timeout)
        return json_body(PROVIDER, response)

    def close(self) -> None:
        self.session.close()
