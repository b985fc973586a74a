"""What every provider's ``Settings`` shares: one frozen, validated model per provider, loaded once per
function from the provider secret (``from_config``), with an http(s) ``base_url`` and connect/read
timeouts. Each provider declares its own fields, defaults and timeout bounds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

#: an endpoint path below ``base_url``
UrlPath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./\-]*$")]


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    base_url: str
    connect_timeout: float
    read_timeout: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """The provider's entry of the provider secret, validated (a bad secret fails loudly here)."""
        return cls.model_validate(dict(config))

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
