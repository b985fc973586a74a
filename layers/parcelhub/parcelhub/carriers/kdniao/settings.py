"""Kdniao (快递鸟) settings: one validated pydantic model.

Every fact REFERENCE §1 marks [U] (unverified) that changes what goes on the wire is a setting here,
with the best-evidence default and a comment saying where the default comes from.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from parcelhub.carriers.kdniao import codes
from parcelhub.carriers.settings import ProviderSettings, UrlPath
from parcelhub.domain.models import Carrier

RequestType = Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")]


class KdniaoAccount(BaseModel):
    """Per-carrier e-waybill account (电子面单账号). Which fields a carrier needs is [U] (REFERENCE §1.5):
    send only what is configured."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    customer_name: str | None = None  # CustomerName
    customer_pwd: SecretStr | None = None  # CustomerPwd
    month_code: str | None = None  # MonthCode
    send_site: str | None = None  # SendSite


class KdniaoSettings(ProviderSettings):
    """Configuration of the ``kdniao`` provider (``KdniaoSettings.from_config`` of its API or push secret)."""

    PROVIDER: ClassVar[str] = "kdniao"
    #: Kdniao signs its pushes (DataSign) with the API key itself, so the push secret holds the same
    #: EBusinessID and AppKey as the API secret: the webhook reads them as push-verification material
    API_CREDENTIALS: ClassVar[frozenset[str]] = frozenset({"ebusiness_id", "app_key"})
    PUSH_MATERIAL: ClassVar[frozenset[str]] = frozenset({"ebusiness_id", "app_key"})

    # -- credentials (Secrets Manager, never from code)
    ebusiness_id: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
    app_key: SecretStr

    # -- endpoints (REFERENCE §1.3; https is widely used [C])
    base_url: str = "https://api.kdniao.com"
    eorder_path: UrlPath = "/api/EOrderService"  # 1007 create, 1147 cancel
    subscribe_path: UrlPath = "/api/dist"  # 8008 / 1008
    query_path: UrlPath = "/Ebusiness/EbusinessOrderHandle.aspx"  # 8001 / 1002
    recognise_path: UrlPath = "/Ebusiness/EbusinessOrderHandle.aspx"  # 2002 (REFERENCE §1.3 [V])

    # -- request types (REFERENCE §1.4): the value-added (增值版) products by default
    create_request_type: RequestType = "1007"
    cancel_request_type: RequestType = "1147"  # [C]
    subscribe_request_type: RequestType = "8008"  # 1008 = standard edition
    query_request_type: RequestType = "8001"  # 1002 = standard edition
    #: 单号余量查询 (e-waybill balance) on the e-order path [C] misu99; its answer's field is [U]: the first
    #: of ``balance_fields`` holding a whole number is read (configure the real one when Kdniao confirms it)
    balance_request_type: RequestType = "1127"
    balance_fields: tuple[str, ...] = ("Balance", "Num", "AvailableNum", "Count")
    #: 单号识别 (REFERENCE §1.4 [V] Kdniao.Core ``Recognise = 2002``). Its answer's shape is [C]: the field
    #: names below (a list of shippers, each with its code) are configurable
    recognise_request_type: RequestType = "2002"
    recognise_shippers_field: str = "Shippers"
    recognise_code_field: str = "ShipperCode"
    data_type: Literal["2"] = "2"  # 2 = JSON, the only value used in practice

    # -- timeouts (seconds)
    connect_timeout: float = Field(default=3.05, gt=0, le=60)
    read_timeout: float = Field(default=10.0, gt=0, le=120)

    # -- e-waybill options (REFERENCE §1.5)
    pay_type: Literal[1, 2, 3, 4] = 1  # 1 现付 (official demo), 2 到付, 3 月结, 4 第三方
    exp_type: int = Field(default=1, ge=1)  # 1 = standard express
    return_print_template: bool = True  # IsReturnPrintTemplate=1: keep the label HTML
    #: per-carrier account fields (CustomerName/CustomerPwd/MonthCode/SendSite) [U]
    accounts: dict[Carrier, KdniaoAccount] = Field(default_factory=dict)
    #: carriers this contract covers
    carriers: frozenset[Carrier] = frozenset(Carrier)

    # -- result codes (REFERENCE §1.5 [C]; the classification of each is our reading, see ``codes``)
    ok_result_codes: frozenset[str] = codes.OK_RESULT_CODES
    auth_result_codes: frozenset[str] = codes.AUTH_RESULT_CODES
    auth_reason_markers: tuple[str, ...] = codes.AUTH_REASON_MARKERS
    duplicate_result_codes: frozenset[str] = codes.DUPLICATE_RESULT_CODES
    unavailable_result_codes: frozenset[str] = codes.UNAVAILABLE_RESULT_CODES

    # -- pushes (REFERENCE §1.6)
    tracking_push_types: frozenset[str] = frozenset({"101", "102"})
    payment_push_types: frozenset[str] = frozenset({"107"})  # COD status: acknowledged, no events
    #: HTTP status of a failure reply (the body says Success:false either way) [U]
    push_reject_status: int = Field(default=401, ge=200, le=599)

    # -- door pickup for returns (REFERENCE §1.3/§1.4): 预约取件 1001 [V code] / cancel 1004 [C] on
    #    /api/OOrderService [C endpoint] (``oorder``), or an e-waybill 1007 with a pickup window and
    #    ``IsNotice`` 0 (tell the courier to come) [C, mr-xiaoyu/kdniao-java-tools CreationOrderRequest]
    #    cancelled with 1147 (``eorder``); per carrier, ``default_pickup_method`` otherwise
    oorder_path: UrlPath = "/api/OOrderService"
    pickup_request_type: RequestType = "1001"
    pickup_cancel_request_type: RequestType = "1004"
    default_pickup_method: Literal["oorder", "eorder"] = "oorder"
    pickup_methods: dict[Carrier, Literal["oorder", "eorder"]] = Field(default_factory=dict)
    #: a cancel answered with one of these in ``Reason`` is a pickup already cancelled (idempotent) [U]
    pickup_cancelled_markers: tuple[str, ...] = ("已取消", "已撤销")

    def pickup_method(self, carrier: Carrier) -> Literal["oorder", "eorder"]:
        return self.pickup_methods.get(carrier, self.default_pickup_method)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def key(self) -> str:
        return self.app_key.get_secret_value()
