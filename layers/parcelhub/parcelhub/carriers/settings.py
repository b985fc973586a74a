"""What every provider's ``Settings`` shares: one frozen, validated model per provider, loaded once per
function from its secrets (``from_config``), with an http(s) ``base_url`` and connect/read
timeouts. Each provider declares its own fields, defaults and timeout bounds. Where real accounts use
weaker values than we would choose (a short Kuaidi100 salt, a short SF URL token, plain http), the
settings accept them and say why they are weak (``warnings``, logged once when loaded) instead of
refusing the account.

Each provider's configuration lives in two secrets (least privilege, see ``docs/security.md``): its **API
secret** (the credentials its API calls are signed with) and its **push secret** (what verifies its
pushes to our webhook). ``API_CREDENTIALS`` and ``PUSH_MATERIAL`` name those fields; every other field is
a non-secret option and may be in either (:func:`split_config` writes it into both). A function reads the
parts its calls need and builds the settings from them: a field of the part it did not read is ``None``,
and a call that needs it fails with ``CarrierAuthError`` (``NOT_CONFIGURED``) instead of guessing."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, SecretStr, StringConstraints, field_validator, model_validator

from parcelhub.config import SecretPart

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

#: an endpoint path below ``base_url``
UrlPath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./\-]*$")]


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    #: the provider these settings are for (names the provider in errors)
    PROVIDER: ClassVar[str] = ""
    #: fields of the API secret: what the provider's API calls are signed with
    API_CREDENTIALS: ClassVar[frozenset[str]] = frozenset()
    #: fields of the push secret: what verifies the provider's pushes (may overlap ``API_CREDENTIALS``
    #: where the provider signs pushes with its API key, as Kdniao does)
    PUSH_MATERIAL: ClassVar[frozenset[str]] = frozenset()
    #: credentials of the API secret an account may not have (a product it did not buy): never in the push
    #: secret, and not required for the API part to be whole
    API_OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    base_url: str
    connect_timeout: float
    read_timeout: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """The provider's configuration from its secrets, validated (a bad secret fails loudly here). Values
        real accounts use but that are weaker than they should be are accepted and logged, each with
        the reason (``warnings``)."""
        settings = cls.model_validate(dict(config))
        if settings.warnings:
            from parcelhub.observability import logger

            for warning in settings.warnings:
                logger().warning("weak provider setting", extra={"settings": cls.__name__, "warning": warning})
        return settings

    @model_validator(mode="after")
    def _whole_parts(self) -> Self:
        """Each part is all there or absent (a half-written secret fails loudly), and one part is there."""
        present = {name for name in self.API_CREDENTIALS | self.PUSH_MATERIAL if getattr(self, name) is not None}
        for fields, label in ((self.API_CREDENTIALS, "API credentials"), (self.PUSH_MATERIAL, "push material")):
            if present & fields and not fields <= present:
                raise ValueError(f"incomplete {label}: missing {', '.join(sorted(fields - present))}")
        if not present:
            raise ValueError("neither API credentials nor push-verification material configured")
        return self

    def required(self, name: str) -> str:
        """The value of a credential field; ``CarrierAuthError`` (``NOT_CONFIGURED``) when this function did
        not read the secret that holds it."""
        value = getattr(self, name)
        if value is None:
            from parcelhub.carriers.base import CarrierAuthError

            raise CarrierAuthError(self.PROVIDER, f"{name} is not configured for this function", "NOT_CONFIGURED")
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

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


def split_config(settings: type[ProviderSettings], config: Mapping[str, Any]) -> dict[SecretPart, dict[str, Any]]:
    """One provider entry (credentials and options together) as its two secrets: the API secret without the
    push-only material, the push secret without the API-only credentials; options go into both."""
    push_only = settings.PUSH_MATERIAL - settings.API_CREDENTIALS
    api_only = (settings.API_CREDENTIALS | settings.API_OPTIONAL) - settings.PUSH_MATERIAL
    return {
        SecretPart.API: {k: v for k, v in config.items() if k not in push_only},
        SecretPart.PUSH: {k: v for k, v in config.items() if k not in api_only},
    }
