"""Scan-time sanity: a carrier's scan time is checked against when the push was received and when the
shipment was created. A scan beyond the future tolerance, or from before the shipment existed, is kept in
the timeline but flagged, and a flagged scan never decides the status nor postpones a stall (the fold
ignores it). Carrier times without a zone are China Standard Time (``models.parse_china_time``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class TimeFlag(StrEnum):
    """Why a scan's time is not trusted."""

    FUTURE = "future"  # stamped after the push was received (+ tolerance)
    BEFORE_SHIPMENT = "before_shipment"  # stamped before the shipment existed (- tolerance)


def scan_time_flag(
    occurred_at: datetime,
    *,
    received_at: datetime,
    created_at: datetime | None,
    future_tolerance: timedelta,
    before_shipment_tolerance: timedelta,
) -> TimeFlag | None:
    """The flag a scan time earns, or None when it is plausible."""
    if occurred_at > received_at + future_tolerance:
        return TimeFlag.FUTURE
    if created_at is not None and occurred_at < created_at - before_shipment_tolerance:
        return TimeFlag.BEFORE_SHIPMENT
    return None
