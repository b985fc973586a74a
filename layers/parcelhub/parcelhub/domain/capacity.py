"""Capacity planning (pure): how much a carrier can still take today, how many parcels it will get, how long
its e-waybill balance lasts, and which ops alerts that calls for.

* **Standing** (read with the choice): today's intake and the balance left. A carrier whose daily cap is
  reached, or whose balance is used up, is *blocked* for the choice (``blocked``), so the order goes to the
  next candidate.
* **Forecast**: the baseline is the mean daily intake over the ``history_days`` local days before today
  (from the first day with any intake, so a new deployment is not diluted by days it did not exist; each
  past day divided by its promotion multiplier, so a past 双11 does not inflate an ordinary day); each day
  of the horizon is the baseline times that day's multiplier. Today's forecast is never below what today
  already took. "Allocation" is in the history: a carrier's intake is the share the choice gave it.
* **Cover**: walking the horizon from today (today: what remains of its forecast), the days the balance
  lasts (fractional on the day it runs out; the whole horizon when it outlasts it).
* **Alerts**: ``balance_low`` (cover under ``min_cover_days``), ``cap_reached`` (today's intake reached the
  cap), ``cap_forecast`` (a day of the horizon is forecast to reach the cap). The planner announces each
  once per carrier, kind and local day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from parcelhub.domain.policy import CapacityPolicy, CarrierLimits


class CapacityAlertKind(StrEnum):
    BALANCE_LOW = "balance_low"
    CAP_REACHED = "cap_reached"
    CAP_FORECAST = "cap_forecast"


class CapacityBlock(StrEnum):
    CAP_REACHED = "cap_reached"
    BALANCE_EXHAUSTED = "balance_exhausted"


class Reservation(StrEnum):
    """A shipment counted against a carrier before its create: by this call, or already (a retried step,
    or another run of the same shipment - only the one that made it gives it back)."""

    NEW = "new"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Standing:
    """A carrier's counters as stored: today's intake and, when a balance is known, what is left of it."""

    intake_today: int = 0
    balance_left: int | None = None
    #: ``provider`` (queried) or ``configured``
    balance_source: str | None = None
    #: when the source stated the balance
    balance_as_of: datetime | None = None


def limits_for(policy: CapacityPolicy, carrier: str) -> CarrierLimits | None:
    return next((limits for listed, limits in policy.carriers.items() if listed.value == carrier), None)


def blocked(limits: CarrierLimits | None, standing: Standing) -> CapacityBlock | None:
    """Why the carrier cannot take another parcel today (``None``: it can)."""
    if limits is not None and limits.daily_cap is not None and standing.intake_today >= limits.daily_cap:
        return CapacityBlock.CAP_REACHED
    if standing.balance_left is not None and standing.balance_left <= 0:
        return CapacityBlock.BALANCE_EXHAUSTED
    return None


def multiplier(policy: CapacityPolicy, carrier: str, day: date) -> tuple[float, str | None]:
    """The day's promotion multiplier for the carrier and the promotion's name (1.0, None: an ordinary day)."""
    best: tuple[float, str | None] = (1.0, None)
    for promotion in policy.promotions:
        listed = promotion.carriers is None or carrier in {c.value for c in promotion.carriers}
        if listed and promotion.start <= day <= promotion.end and promotion.multiplier > best[0]:
            best = (promotion.multiplier, promotion.name)
    return best


def baseline(policy: CapacityPolicy, carrier: str, history: Mapping[date, int], today: date) -> float:
    """Parcels an ordinary day: the mean over the past ``history_days`` days (see the module)."""
    recorded = [day for day, count in history.items() if day < today and count > 0]
    if not recorded:
        return 0.0
    first = max(min(recorded), today - timedelta(days=policy.history_days))
    days = [first + timedelta(days=n) for n in range((today - first).days)]
    return sum(history.get(day, 0) / multiplier(policy, carrier, day)[0] for day in days) / len(days)


@dataclass(frozen=True, slots=True)
class DayForecast:
    day: date
    parcels: float
    multiplier: float = 1.0
    promotion: str | None = None


@dataclass(frozen=True, slots=True)
class Outlook:
    """One carrier's capacity picture for ``today``."""

    carrier: str
    today: date
    daily_cap: int | None
    intake_today: int
    baseline: float
    forecast: tuple[DayForecast, ...]
    balance_left: int | None
    balance_source: str | None
    #: days the balance lasts at the forecast (None: no balance known, or nothing forecast)
    cover_days: float | None
    #: the first day of the horizon forecast to reach the cap
    cap_day: date | None
    blocked: CapacityBlock | None
    alerts: tuple[CapacityAlertKind, ...]


def cover_days(balance: int, forecast: tuple[DayForecast, ...], intake_today: int) -> float | None:
    """Days ``balance`` lasts walking the forecast (today: what is left of its forecast); ``None`` when
    nothing is forecast (it lasts indefinitely)."""
    if not any(day.parcels > 0 for day in forecast):
        return None
    left, days = float(balance), 0.0
    for index, day in enumerate(forecast):
        need = max(day.parcels - intake_today, 0.0) if index == 0 else day.parcels
        if need <= left:
            left -= need
            days += 1
            continue
        return round(days + left / need, 2)
    return float(len(forecast))


def outlook(
    policy: CapacityPolicy, carrier: str, today: date, history: Mapping[date, int], standing: Standing
) -> Outlook:
    """The standing, forecast, cover and alerts of one carrier (``history``: intake per local day)."""
    limits = limits_for(policy, carrier)
    cap = limits.daily_cap if limits is not None else None
    base = baseline(policy, carrier, history, today)
    forecast: list[DayForecast] = []
    for n in range(policy.horizon_days):
        day = today + timedelta(days=n)
        factor, name = multiplier(policy, carrier, day)
        parcels = round(base * factor, 2)
        if n == 0:
            parcels = max(parcels, float(standing.intake_today))
        forecast.append(DayForecast(day, parcels, factor, name))
    days = tuple(forecast)
    cover = (
        cover_days(standing.balance_left, days, standing.intake_today) if standing.balance_left is not None else None
    )
    cap_day = next((d.day for d in days if cap is not None and d.parcels >= cap), None)
    reason = blocked(limits, standing)
    alerts: list[CapacityAlertKind] = []
    if standing.balance_left is not None and (
        standing.balance_left <= 0 or (cover is not None and cover < policy.min_cover_days)
    ):
        alerts.append(CapacityAlertKind.BALANCE_LOW)
    if reason is CapacityBlock.CAP_REACHED:
        alerts.append(CapacityAlertKind.CAP_REACHED)
    elif cap_day is not None:
        alerts.append(CapacityAlertKind.CAP_FORECAST)
    return Outlook(
        carrier=carrier,
        today=today,
        daily_cap=cap,
        intake_today=standing.intake_today,
        baseline=round(base, 2),
        forecast=days,
        balance_left=standing.balance_left,
        balance_source=standing.balance_source,
        cover_days=cover,
        cap_day=cap_day,
        blocked=reason,
        alerts=tuple(alerts),
    )
