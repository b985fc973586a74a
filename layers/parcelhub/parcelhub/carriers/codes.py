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
