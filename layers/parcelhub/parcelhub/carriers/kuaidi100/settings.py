"""Kuaidi100 settings: one validated model (credentials, endpoint, wire options, timeouts).

Every fact REFERENCE.md §3 marks unverified ([U]) that changes what goes on the wire is a setting
here, defaulting to the best evidence, so an account that differs is a configuration change:

* ``push_sign_case_insensitive`` — the doc does not say whether the push ``sign`` hex is upper- or
  lower-case [U]; we compare case-insensitively (default) and can be made strict.
* ``ack_success_message`` / ``ack_failure_return_code`` / ``ack_failure_http_status`` — the reply to a
  push: ``{"result":true,"returnCode":"200","message":"成功"}``; on failure ``result:false`` with
  returnCode ``500`` [U]. Kuaidi100 reads the body, so the HTTP status stays 200 by default [U].
* ``subscribe_resultv2`` / ``query_resultv2`` — ``4`` turns on the advanced state codes (§3.4); the
  mirror names 6 for the query, the golden vector uses 4 [V/U].
* ``phone_required_for`` — company codes for which ``phone`` is mandatory (SF; 丰网 if you add it).
* ``company_codes`` — our Carrier -> Kuaidi100 ``com`` code (defaults: ``codes.COMPANY_CODES``).
* ``autonumber_url`` — 智能单号识别 ``GET <url>?num=<n>&key=<key>`` answering a JSON array of
  ``{"comCode", ...}`` best first [C: third-party integrations read ``[0].comCode``]. Unset, it is
  ``https://www.kuaidi100.com/autonumber/auto`` with the production ``base_url``, else ``base_url`` +
  ``autonumber_path`` (a sandbox or a proxy answers both).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, StringConstraints, field_validator

from parcelhub.carriers.kuaidi100.codes import COMPANY_CODES
from parcelhub.carriers.settings import ProviderSettings, UrlPath
from parcelhub.domain.models import Carrier

PRODUCTION_URL = "https://poll.kuaidi100.com"
AUTONUMBER_PRODUCTION_URL = "https://www.kuaidi100.com/autonumber/auto"

Flag = Literal["0", "1"]
#: a salt shorter than this is accepted with a warning
STRONG_SALT_LENGTH = 16


class Kuaidi100Settings(ProviderSettings):
    """Configuration of the ``kuaidi100`` provider (``Kuaidi100Settings.from_config`` of its API and/or push secret)."""

    PROVIDER: ClassVar[str] = "kuaidi100"
    API_CREDENTIALS: ClassVar[frozenset[str]] = frozenset({"key", "customer"})
    PUSH_MATERIAL: ClassVar[frozenset[str]] = frozenset({"salt"})

    # credentials (API secret) -----------------------------------------------------------------------
    #: 授权key: sent inside the subscribe ``param`` and part of the query signature
    key: SecretStr | None = Field(default=None, min_length=1)
    #: customer id (query only)
    customer: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")] | None = None
    # push material (push secret) --------------------------------------------------------------------
    #: the push signing salt we send with every subscription (so subscribing reads the push secret too).
    #: Kuaidi100 signs even with an empty salt, but then anybody can forge a push, so an empty one is
    #: refused; a short one (the doc's example is ``*``) is accepted with a warning.
    salt: SecretStr | None = Field(default=None, min_length=1)

    # endpoint ------------------------------------------------------------------------------------
    base_url: str = PRODUCTION_URL
    subscribe_path: UrlPath = "/poll"
    query_path: UrlPath = "/poll/query.do"
    autonumber_path: UrlPath = "/autonumber/auto"
    autonumber_url: str | None = None
    #: default callback URL (our webhook) when a subscription does not carry one
    callback_url: str | None = None

    # wire options ([U] facts, see the module docstring) ------------------------------------------
    subscribe_resultv2: Literal["0", "1", "4", "6"] = "4"
    query_resultv2: Literal["0", "1", "4", "6"] = "4"
    auto_com: Flag = "0"
    inter_com: Flag = "0"
    phone_required_for: frozenset[str] = frozenset({"shunfeng"})
    company_codes: dict[Carrier, str] = Field(default_factory=lambda: dict(COMPANY_CODES))
    push_sign_case_insensitive: bool = True
    ack_success_message: str = "成功"
    ack_failure_return_code: str = "500"
    ack_failure_http_status: int = Field(default=200, ge=200, le=599)

    # timeouts (seconds) -----------------------------------------------------------------------------
    connect_timeout: float = Field(default=3.05, gt=0, le=30)
    read_timeout: float = Field(default=10.0, gt=0, le=60)
    pool_size: int = Field(default=10, ge=1, le=100)

    def weaknesses(self) -> list[str]:
        found = super().weaknesses()
        length = len(self.salt.get_secret_value()) if self.salt is not None else STRONG_SALT_LENGTH
        if length < STRONG_SALT_LENGTH:
            found.append(
                f"salt is {length} characters: the push sign is MD5(param + salt) and nothing else authenticates "
                f"a push, so a short salt can be guessed offline from one push; use {STRONG_SALT_LENGTH}+ random "
                "characters (re-subscribe to change it)"
            )
        return found

    @field_validator("callback_url", "autonumber_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("company_codes")
    @classmethod
    def _company_codes(cls, value: dict[Carrier, str]) -> dict[Carrier, str]:
        codes = list(value.values())
        if len(set(codes)) != len(codes):
            raise ValueError("company_codes must map each carrier to a distinct com code")
        if any(not code or code != code.strip().lower() for code in codes):
            raise ValueError("com codes are non-empty lower-case strings (e.g. 'yuantong')")
        return value

    @property
    def subscribe_url(self) -> str:
        return self.base_url + self.subscribe_path

    @property
    def query_url(self) -> str:
        return self.base_url + self.query_path

    @property
    def autonumber_endpoint(self) -> str:
        if self.autonumber_url:
            return self.autonumber_url
        if self.base_url == PRODUCTION_URL:
            return AUTONUMBER_PRODUCTION_URL
        return self.base_url + self.autonumber_path
