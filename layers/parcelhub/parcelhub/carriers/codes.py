"""What every provider's ``codes`` module builds on: status-code tables as data with an explicit
UNMAPPED fallback (never a silent guess), and result kinds that turn into the typed errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    CodeMapping,
)
from parcelhub.domain.status import Status, SubStatus


@dataclass(frozen=True)
class CodeTable:
    provider: str
    codes: Mapping[str, CodeMapping]
    #: the status an unknown code is reported with; its sub-status is always UNMAPPED
    unknown_status: Status = Status.IN_TRANSIT

    def lookup(self, code: str | None) -> tuple[CodeMapping, bool]:
        """``(mapping, known)``. Unknown codes map to ``unknown_status``/``UNMAPPED``; callers count
        them with the ``UnmappedCarrierCode`` metric."""
        key = (code or "").strip()
        found = self.codes.get(key)
        if found is not None:
            return found, True
        return CodeMapping(self.unknown_status, SubStatus.UNMAPPED), False


#: what ``unmapped_codes`` says for a scan that carries no code at all (metric dimensions can't be empty)
MISSING_CODE = "(none)"


def m(status: Status, sub_status: SubStatus = SubStatus.NONE) -> CodeMapping:
    """Short constructor for tables."""
    return CodeMapping(status, sub_status)


class ResultKind(StrEnum):
    """What a provider's result code means for us; each provider's ``classify_result`` picks one."""

    OK = "ok"  # success, also an idempotent repeat (Kuaidi100 501 already subscribed)
    NO_RESULT = "no_result"  # a query with nothing tracked yet: an empty timeline, not an error
    AUTH = "auth"  # CarrierAuthError: configuration, alert, don't retry
    UNAVAILABLE = "unavailable"  # CarrierUnavailable: retry / fail over
    DUPLICATE = "duplicate"  # CarrierDuplicateOrder: fetch the existing order
    REJECTED = "rejected"  # CarrierRejected: business rejection
    ALREADY_CANCELLED = "already_cancelled"  # CarrierRejected; a cancel treats it as done


@dataclass(frozen=True, slots=True)
class ResultRule:
    kind: ResultKind
    meaning: str


def carrier_error(provider: str, kind: ResultKind, message: str, code: str | None) -> CarrierError | None:
    """The typed error of a result kind, or ``None`` for the kinds that are no error."""
    if kind in (ResultKind.OK, ResultKind.NO_RESULT):
        return None
    if kind is ResultKind.AUTH:
        return CarrierAuthError(provider, message, code)
    if kind is ResultKind.UNAVAILABLE:
        return CarrierUnavailable(provider, message, code)
    if kind is ResultKind.DUPLICATE:
        return CarrierDuplicateOrder(provider, message, code)
    return CarrierRejected(provider, message, code)


# ------------------------------------------------------------------------------ scans without a code


@dataclass(frozen=True, slots=True)
class KeywordRule:
    """Scan text containing one of ``keywords`` (and none of ``unless``) has ``mapping``."""

    keywords: tuple[str, ...]
    mapping: CodeMapping
    unless: tuple[str, ...] = ()

    def matches(self, text: str) -> bool:
        return any(k in text for k in self.keywords) and not any(u in text for u in self.unless)


#: The keyword classifier for scans that carry no code (Kdniao standard edition, Kuaidi100 with
#: resultv2 off, SF nodes with an empty or unknown opCode): first matching rule wins, so the more
#: specific and the terminal outcomes come first. Every keyword is taken from published scan texts
#: (``tests/fixtures/*/published/``); ``tests/unit/carriers/test_scan_keywords.py`` pins each rule.
SCAN_KEYWORDS: tuple[KeywordRule, ...] = (
    KeywordRule(("拒收", "拒签"), m(Status.DELIVERY_FAILED, SubStatus.REFUSED)),
    KeywordRule(("退回", "退件", "退货"), m(Status.RETURNING)),
    KeywordRule(("代签",), m(Status.DELIVERED, SubStatus.SIGNED_BY_PROXY)),
    KeywordRule(("取货码签收", "取件码签收", "凭取件码", "凭取货码"), m(Status.DELIVERED, SubStatus.SIGNED_AT_LOCKER)),
    KeywordRule(
        ("签收", "妥投", "派送成功", "投递成功", "已送达"),
        m(Status.DELIVERED),
        unless=("准备签收", "待签收", "请签收", "请您签收", "未签收"),
    ),
    KeywordRule(
        ("驿站", "快递柜", "丰巢", "自提", "代收点", "请及时取件", "取件码", "待取件", "便利店", "暂存", "代收"),
        m(Status.AVAILABLE_FOR_PICKUP),
    ),
    KeywordRule(
        ("派件不成功", "派送不成功", "派送失败", "无法联系", "无人接听", "地址不详"), m(Status.DELIVERY_FAILED)
    ),
    KeywordRule(("已接单", "待揽收", "待揽件", "已下单"), m(Status.WAYBILL_CREATED, SubStatus.AWAITING_PICKUP)),
    KeywordRule(("揽收", "揽件", "已收件", "收取快件", "已取件", "上门收件", "收寄"), m(Status.PICKED_UP)),
    KeywordRule(("派送", "派件", "投递中"), m(Status.OUT_FOR_DELIVERY)),
    KeywordRule(("清关异常",), m(Status.EXCEPTION, SubStatus.CUSTOMS_EXCEPTION)),
    KeywordRule(("已清关",), m(Status.IN_TRANSIT, SubStatus.CUSTOMS_CLEARED)),
    KeywordRule(("清关",), m(Status.IN_TRANSIT, SubStatus.CUSTOMS)),
    KeywordRule(("滞留", "问题件", "异常", "延误"), m(Status.EXCEPTION)),
    KeywordRule(
        (
            "到达", "发往", "离开", "发出", "装车", "装件", "下车", "中转", "分拨", "分拣", "运输", "在途",
            "收入", "发车", "转运", "集散", "航班", "起飞", "交接", "代理收件", "出库", "入库",
        ),
        m(Status.IN_TRANSIT),
    ),
)  # fmt: skip

#: a scan with no code whose text matches no keyword: a plain scan on the way (marked inferred)
CODELESS_SCAN = m(Status.IN_TRANSIT)


def classify_text(text: str, rules: tuple[KeywordRule, ...] = SCAN_KEYWORDS) -> CodeMapping | None:
    """The mapping the first matching keyword rule gives the scan text, else ``None``."""
    for rule in rules:
        if rule.matches(text):
            return rule.mapping
    return None


@dataclass(frozen=True, slots=True)
class Resolution:
    """How one scan's status was decided, from every signal it carries."""

    mapping: CodeMapping
    #: read from the text, not from a code
    inferred: bool = False
    #: the scan's code when our table does not know it (also when another signal decided the status)
    unknown_code: str | None = None

    @property
    def unmapped(self) -> bool:
        """No signal decided the status: sub-status UNMAPPED (the ``UnmappedCarrierCode`` metric)."""
        return self.mapping.sub_status is SubStatus.UNMAPPED


def resolve(code: str, text: str, table: CodeTable, fallback: CodeMapping | None = None) -> Resolution:
    """A scan's status from every signal, most specific first: its ``code`` in ``table``; else the
    provider's own normalised status (``fallback``, e.g. SF ``secondaryStatusCode``); else the keyword
    classifier over ``text`` (inferred). A scan without a code and without a keyword is a plain scan on
    the way (inferred); an unknown code nothing else explains stays UNMAPPED (never guessed)."""
    key = code.strip()
    if key:
        mapping, known = table.lookup(key)
        if known:
            return Resolution(mapping)
    if fallback is not None:
        return Resolution(fallback, unknown_code=key or None)
    classified = classify_text(text)
    if classified is not None:
        return Resolution(classified, inferred=True, unknown_code=key or None)
    if key:
        return Resolution(table.lookup(key)[0], unknown_code=key)
    return Resolution(CODELESS_SCAN, inferred=True)
