"""SF Express Fengqiao settings: one validated model (credentials, endpoint, wire options, timeouts).

Every fact REFERENCE.md §2 marks unverified ([U]) that changes what goes on the wire is a setting
here, defaulting to the best evidence, so an account that differs is a configuration change:

* ``timestamp_unit`` — ms (SF Java demos) vs s (purplship) [C/U]; default ms.
* ``express_type_ids`` — service level -> ``expressTypeId``. [U] Fengqiao's product table is read as
  1 = 顺丰特快 (express), 2 = 顺丰标快 (standard); REFERENCE's sample pairs 1 with 顺丰标快, so check the
  product list of your monthly card.
* ``pay_method`` — 1 寄方付 (sender pays) [U values].
* ``route_tracking_type`` / ``route_method_type`` / ``route_language`` — route query options [C/U].
* ``cancel_deal_type`` — ``dealType`` 2 = cancel on EXP_RECE_UPDATE_ORDER [U].
* ``order_search_type`` — ``searchType`` of EXP_RECE_SEARCH_ORDER_RESP [U].
* ``push_format`` — the route push method configured in the Fengqiao console: ``json`` [V] or
  ``xml`` (form ``content=`` URL-encoded XML) [U shape]; decides the ACK we send.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from parcelhub.carriers.settings import ProviderSettings
from parcelhub.domain.models import ServiceLevel

PRODUCTION_URL = "https://sfapi.sf-express.com"

#: a push token shorter than this is accepted with a warning
STRONG_TOKEN_LENGTH = 16

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


class SfServiceCodes(BaseModel):
    """The ``serviceCode`` of each operation (REFERENCE §2.4); all sent to the one ``path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    create_order: Code = "EXP_RECE_CREATE_ORDER"
    update_order: Code = "EXP_RECE_UPDATE_ORDER"
    search_routes: Code = "EXP_RECE_SEARCH_ROUTES"
    search_order: Code = "EXP_RECE_SEARCH_ORDER_RESP"
    #: door pickup for a return (上门取件 / 逆向订单) [U]: not in REFERENCE §2.4; the names SF's reverse-order
    #: service is published under. ``pickup_method`` = ``docall`` uses ``create_order`` instead.
    create_reverse_order: Code = "EXP_RECE_CREATE_REVERSE_ORDER"
    cancel_reverse_order: Code = "EXP_RECE_CANCEL_REVERSE_ORDER"


class SfSettings(ProviderSettings):
    """Configuration of the ``sf`` provider (``SfSettings.from_config`` of its API and/or push secret)."""

    PROVIDER: ClassVar[str] = "sf"
    API_CREDENTIALS: ClassVar[frozenset[str]] = frozenset({"partner_id", "checkword", "monthly_card"})
    PUSH_MATERIAL: ClassVar[frozenset[str]] = frozenset({"push_token"})

    # credentials (API secret) -----------------------------------------------------------------------
    partner_id: Code | None = None  # partnerID = 顾客编码
    checkword: SecretStr | None = Field(default=None, min_length=1)  # 校验码 (sandbox and production differ)
    monthly_card: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,20}$")] | None = None  # 月结卡号
    # push material (push secret) --------------------------------------------------------------------
    #: the secret path segment of our webhook URL (SF does not sign pushes); a short one is accepted
    #: with a warning (an account may already have a push URL registered in the console)
    push_token: SecretStr | None = Field(default=None, min_length=1)

    # endpoint ------------------------------------------------------------------------------------
    base_url: str = PRODUCTION_URL
    path: str = "/std/service"
    service_codes: SfServiceCodes = SfServiceCodes()

    # wire options ([U] facts, see the module docstring) ------------------------------------------
    language: str = "zh_CN"  # REFERENCE §2.5 sample [C]
    route_language: str = "0"
    timestamp_unit: Literal["ms", "s"] = "ms"
    express_type_ids: dict[ServiceLevel, int] = Field(
        default_factory=lambda: {ServiceLevel.STANDARD: 2, ServiceLevel.EXPRESS: 1}
    )
    pay_method: Literal[1, 2, 3] = 1
    is_return_routelabel: Literal[0, 1] = 1
    cargo_unit: str = "个"
    country: str = "CN"
    route_tracking_type: Literal["1", "2"] = "1"
    route_method_type: Literal["1", "2"] = "1"
    cancel_deal_type: int = 2
    order_search_type: str = "1"
    push_format: Literal["json", "xml"] = "json"
    # door pickup for returns ([U], see the README's carrier section) ---------------------------------
    #: ``reverse_order``: the reverse-order service (``create_reverse_order``/``cancel_reverse_order``);
    #: ``docall``: an ordinary EXP_RECE_CREATE_ORDER with ``isDocall`` 1 (cancelled like any order)
    pickup_method: Literal["reverse_order", "docall"] = "reverse_order"
    #: the field carrying the window's start (``sendStartTm``: SF's 要求上门取件开始时间 [C]) and, when the
    #: account's service takes one, its end [U: none known, so none sent by default]
    pickup_start_field: Code = "sendStartTm"
    pickup_end_field: Code | None = None
    pickup_express_type_id: int = 2  # 顺丰标快 for returns [U]
    pickup_pay_method: Literal[1, 2, 3] = 1  # the brand's monthly card pays [U]

    # timeouts (seconds) -----------------------------------------------------------------------------
    connect_timeout: float = Field(default=3.05, gt=0, le=30)
    read_timeout: float = Field(default=10.0, gt=0, le=60)

    def weaknesses(self) -> list[str]:
        found = super().weaknesses()
        length = len(self.push_token.get_secret_value()) if self.push_token is not None else STRONG_TOKEN_LENGTH
        if length < STRONG_TOKEN_LENGTH:
            found.append(
                f"push_token is {length} characters: SF does not sign route pushes, the URL token is all that "
                f"authenticates them, so a short one can be guessed; use {STRONG_TOKEN_LENGTH}+ random characters"
            )
        return found

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value

    @field_validator("express_type_ids")
    @classmethod
    def _every_level(cls, value: dict[ServiceLevel, int]) -> dict[ServiceLevel, int]:
        missing = set(ServiceLevel) - set(value)
        if missing:
            raise ValueError(f"express_type_ids needs every service level; missing {sorted(missing)}")
        return value

    @property
    def url(self) -> str:
        return self.base_url + self.path
