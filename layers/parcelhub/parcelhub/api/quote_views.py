"""What ``POST /v1/quotes`` answers: the candidates for an order, ranked (nothing is stored)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from parcelhub.api.views import EstimateView
from parcelhub.domain.models import Carrier, Provider, SelectionOption, SelectionRecord, ServiceLevel


class QuoteOptionView(BaseModel):
    rank: int = Field(ge=1, description="1 = the carrier the smart strategy would choose")
    carrier: Carrier
    provider: Provider
    service: ServiceLevel
    price_fen: int | None = Field(description="The tariff price in fen (0.01 CNY); null without a tariff")
    estimated_delivery: EstimateView = Field(description="The lane estimate if the order were placed now")
    meets_promise: bool
    lane_deliveries: int = Field(description="Deliveries on the lane level judged (city lane, else province lane)")
    lane_on_time_rate: float | None = Field(description="On time against the promise on that lane (0..1)")
    lane_exception_rate: float | None = Field(description="Parcels with an exception on that lane (0..1)")
    available: bool
    blocked: str | None = Field(
        description="Why not available: circuit_open, cap_reached (the daily intake cap), balance_exhausted "
        "(no e-waybill numbers left), lane_on_time or lane_exceptions"
    )

    @classmethod
    def of(cls, rank: int, option: SelectionOption) -> QuoteOptionView:
        window = EstimateView.model_validate(option.window.model_dump())
        return cls(rank=rank, estimated_delivery=window, **option.model_dump(exclude={"window"}))


class QuotesView(BaseModel):
    carrier: Carrier = Field(description="The carrier the smart strategy would choose")
    provider: Provider
    reason: str = Field(description="cheapest_meeting_promise, fastest_promise_not_met or all_blocked_fastest")
    promise: str | None = Field(description="The promise rule applied")
    promise_by: datetime | None = Field(description="The latest delivery the promise allows")
    promise_met: bool
    rules_carrier: Carrier | None = Field(description="What the rules strategy would try first")
    options: list[QuoteOptionView]

    @classmethod
    def of(cls, record: SelectionRecord) -> QuotesView:
        return cls(
            carrier=record.carrier,
            provider=record.provider,
            reason=record.reason,
            promise=record.promise,
            promise_by=record.promise_by,
            promise_met=record.promise_met,
            rules_carrier=record.rules_carrier,
            options=[QuoteOptionView.of(rank, option) for rank, option in enumerate(record.options, 1)],
        )
