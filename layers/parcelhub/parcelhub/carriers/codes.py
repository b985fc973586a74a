"""Status-code tables as data, with an explicit UNMAPPED fallback (never a silent guess)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from parcelhub.carriers.base import CodeMapping
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
