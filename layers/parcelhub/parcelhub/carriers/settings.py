"""What every provider's ``Settings`` shares: one frozen, validated model per provider, loaded once per
function from the provider secret (``from_config``), with an http(s) ``base_url`` and connect/read
timeouts. Each provider declares its own fields, defaults and timeout bounds. Where real accounts use
weaker values than we would choose (a short Kuaidi100 salt, a short SF URL token, plain http), the
settings accept them and say why they are weak (``warnings``, logged once when loaded) instead of
refusing the account."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

#: an endpoint path below ``base_url``
UrlPath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./\-]*$")]


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    base_url: str
    connect_timeout: float
    read_timeout: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """The provider's entry of the provider secret, validated (a bad secret fails loudly here). Values
        real accounts use but that are weaker than they should be are accepted and logged, each with
        the reason (``warnings``)."""
        settings = cls.model_validate(dict(config))
        if settings.warnings:
            from parcelhub.observability import logger

            for warning in settings.warnings:
                logger().warning("weak provider setting", extra={"settings": cls.__name__, "warning": warning})
        return settings

    @property
    def warnings(self) -> tuple[str, ...]:
        """What is accepted but weak, each saying why (empty when nothing is)."""
        return tuple(self.weaknesses())

    def weaknesses(self) -> list[str]:
        """The weak values of these settings; providers add their own to the common ones."""
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        if self.base_url.startswith("http://") and host not in _LOOPBACK:
            return [f"base_url {self.base_url} is plain http: requests and their signatures travel unencrypted"]
        return []

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` seconds for ``requests``."""
        return (self.connect_timeout, self.read_timeout)
