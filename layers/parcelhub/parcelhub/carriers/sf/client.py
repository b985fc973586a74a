"""The SF Fengqiao HTTP client: I/O only, one method per call (signing and payloads are ``builders``').

Every call goes to the one ``/std/service`` URL; the form's ``serviceCode`` names the operation.
Transport errors are typed by ``parcelhub.carriers.http``; nothing is retried here beyond a failed
*connect* (the request never left): a create that timed out is the workflow's decision. No
``subscribe``: see ``builders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from parcelhub.carriers.http import FormClient
from parcelhub.carriers.sf.codes import PROVIDER
from parcelhub.carriers.sf.settings import SfSettings


class SfClient(FormClient):
    def __init__(self, settings: SfSettings, session: requests.Session | None = None) -> None:
        super().__init__(PROVIDER, settings.timeout, session)
        self.settings = settings

    def create(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url, form)

    def cancel(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url, form)

    def fetch(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url, form)

    def query(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url, form)

    def pickup(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url, form)

    def cancel_pickup(self, form: Mapping[str, str]) -> dict[str, Any]:
        return self.post(self.settings.url, form)
