"""Kuaidi100 HTTP client: I/O only, one method per call (forms are ``builders``', replies ``parsers``').

One pooled ``requests`` session per client (connection reuse), connect + read timeouts from the
settings, transport failures typed by ``parcelhub.carriers.http``. Nothing is retried here beyond a
refused *connect* (the request never left); the caller owns retries with backoff. No ``create``,
``cancel`` or ``fetch``: Kuaidi100 issues no waybills here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from parcelhub.carriers.http import FormClient
from parcelhub.carriers.kuaidi100.codes import PROVIDER
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings


class Kuaidi100Client(FormClient):
    def __init__(self, settings: Kuaidi100Settings, session: requests.Session | None = None) -> None:
        super().__init__(PROVIDER, settings.timeout, session, settings.pool_size)
        self.settings = settings

    def subscribe(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /poll`` (form ``schema``, ``param``)."""
        return self.post(self.settings.subscribe_url, form)

    def query(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /poll/query.do`` (form ``customer``, ``sign``, ``param``)."""
        return self.post(self.settings.query_url, form)

    def autonumber(self, params: Mapping[str, str]) -> Any:
        """``GET autonumber/auto?num=&key=``: a JSON array (an object when refused)."""
        return self.get(self.settings.autonumber_endpoint, params)
