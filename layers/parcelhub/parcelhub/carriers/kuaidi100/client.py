"""Kuaidi100 HTTP client: I/O only (build and parse live in ``mapper``).

One pooled ``requests`` session per client (connection reuse), connect + read timeouts from the
settings, transport failures translated by ``parcelhub.carriers.http``. Nothing is retried here
beyond a refused *connect* (the request never left); the caller owns retries with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from parcelhub.carriers.http import json_body, new_session, post_form
from parcelhub.carriers.kuaidi100.codes import PROVIDER
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings


class Kuaidi100Client:
    def __init__(self, settings: Kuaidi100Settings, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._session = session if session is not None else new_session(settings.pool_size)

    def subscribe(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /poll`` (form ``schema``, ``param``); the decoded JSON reply."""
        return self._post(self._settings.subscribe_url, form)

    def query(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /poll/query.do`` (form ``customer``, ``sign``, ``param``); the decoded JSON reply."""
        return self._post(self._settings.query_url, form)

    def close(self) -> None:
        self._session.close()

    def _post(self, url: str, form: Mapping[str, str]) -> dict[str, Any]:
        response = post_form(self._session, PROVIDER, url, form, timeout=self._settings.timeout)
        return json_body(PROVIDER, response)
