"""The SF Fengqiao HTTP client: I/O only (signing and payloads are the mapper's).

One pooled ``requests`` session per client (connection reuse), connect + read timeouts from the
settings, transport errors typed by ``parcelhub.carriers.http``. Nothing is retried here beyond a
failed *connect* (the request never left): a create that timed out is the workflow's decision.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import requests

from parcelhub.carriers.http import json_body, new_session, post_form
from parcelhub.carriers.sf import mapper
from parcelhub.carriers.sf.codes import PROVIDER
from parcelhub.carriers.sf.settings import SfSettings


class SfClient:
    def __init__(
        self,
        settings: SfSettings,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        request_ids: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.settings = settings
        self.session = session if session is not None else new_session()
        self._clock = clock
        self._request_ids = request_ids

    def call(self, service_code: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST one signed call to ``/std/service`` and return the business ``msgData`` (or raise)."""
        msg_data = mapper.to_json(payload)
        form = mapper.envelope(
            self.settings,
            service_code,
            msg_data,
            timestamp=mapper.timestamp_for(self.settings, self._clock()),
            request_id=self._request_ids(),
        )
        response = post_form(self.session, PROVIDER, self.settings.url, form, timeout=self.settings.timeout)
        return mapper.unwrap(json_body(PROVIDER, response))

    def close(self) -> None:
        self.session.close()
