"""What ``GET /v1/analytics/scorecards`` shows: one row per carrier and lane (or destination province, or
carrier) and period, with the figures computed from the scorecard cells."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from parcelhub.app.scorecards import Level, ScorecardRow
from parcelhub.domain.capacity import Outlook


class ScorecardView(BaseModel):
    carrier: str
    level: Level
    origin: str | None = Field(description="Origin province (level province) or province/city (level lane)")
    destination: str | None = Field(description="Destination province, or province/city at level lane")
    period: str = Field(description="ISO week (2026-W48), a range of weeks (2026-W40..2026-W48) or all")
    volume: int = Field(description="Parcels that ended in the period (delivered, returned, lost, cancelled)")
    delivered: int
    returned: int
    lost: int
    pickup_hours_p50: float | None = Field(description="Created -> first pickup scan, hours")
    pickup_hours_p90: float | None
    transit_hours_p50: float | None = Field(description="Picked up -> delivered, hours")
    transit_hours_p90: float | None
    on_time_rate: float | None = Field(description="Delivered by the promise's latest, of the delivered with one")
    first_attempt_rate: float | None = Field(description="Delivered at the first attempt, of the delivered")
    exception_rate: float | None = Field(description="Parcels with at least one exception scan, of the volume")
    exception_rates: dict[str, float] = Field(description="Per exception reason (sub-status), of the volume")
    return_rate: float | None
    cost_per_parcel: Decimal | None = Field(description="CNY per parcel (billed, else the tariff's price)")

    @classmethod
    def of(cls, row: ScorecardRow) -> ScorecardView:
        return cls(
            carrier=row.carrier,
            level=row.level,
            origin=row.origin,
            destination=row.destination,
            period=row.period,
            volume=row.volume,
            delivered=row.count("delivered"),
            returned=row.count("returned"),
            lost=row.count("lost"),
            pickup_hours_p50=row.pickup_hours(0.5),
            pickup_hours_p90=row.pickup_hours(0.9),
            transit_hours_p50=row.transit_hours(0.5),
            transit_hours_p90=row.transit_hours(0.9),
            on_time_rate=row.on_time_rate,
            first_attempt_rate=row.first_attempt_rate,
            exception_rate=row.exception_rate,
            exception_rates=row.exception_rates,
            return_rate=row.return_rate,
            cost_per_parcel=row.cost_per_parcel,
        )


class ScorecardsView(BaseModel):
    level: Level
    period: str
    rows: list[ScorecardView]


class ForecastDayView(BaseModel):
    day: date
    parcels: float = Field(description="Parcels forecast for the day (today: never below its intake so far)")
    multiplier: float = Field(description="The promotion multiplier applied (1 = an ordinary day)")
    promotion: str | None


class CarrierCapacityView(BaseModel):
    carrier: str
    today: date = Field(description="The local (China) day")
    daily_cap: int | None = Field(description="Parcels a day the carrier takes; null: no cap configured")
    intake_today: int
    baseline: float = Field(description="Parcels an ordinary day: the mean over the configured past days")
    forecast: list[ForecastDayView]
    balance_left: int | None = Field(description="E-waybill numbers left; null: not known")
    balance_source: str | None = Field(description="provider (queried) or configured")
    cover_days: float | None = Field(description="Days the balance lasts at the forecast; null: not known")
    cap_day: date | None = Field(description="The first day forecast to reach the cap")
    blocked: str | None = Field(description="cap_reached or balance_exhausted: new orders go to the next carrier")
    alerts: list[str] = Field(description="balance_low, cap_reached, cap_forecast")

    @classmethod
    def of(cls, look: Outlook) -> CarrierCapacityView:
        return cls(
            carrier=look.carrier,
            today=look.today,
            daily_cap=look.daily_cap,
            intake_today=look.intake_today,
            baseline=look.baseline,
            forecast=[
                ForecastDayView(day=d.day, parcels=d.parcels, multiplier=d.multiplier, promotion=d.promotion)
                for d in look.forecast
            ],
            balance_left=look.balance_left,
            balance_source=look.balance_source,
            cover_days=look.cover_days,
            cap_day=look.cap_day,
            blocked=look.blocked.value if look.blocked else None,
            alerts=[a.value for a in look.alerts],
        )


class CapacityView(BaseModel):
    enabled: bool = Field(description="capacity.enabled: intake is counted and caps are enforced")
    min_cover_days: float
    carriers: list[CarrierCapacityView]
