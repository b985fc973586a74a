"""``/v1/analytics/scorecards``: carrier scorecards by lane, destination province or carrier;
``/v1/analytics/capacity``: each carrier's intake, forecast, balance cover and alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from parcelhub import composition
from parcelhub.api.analytics_views import CapacityView, CarrierCapacityView, ScorecardsView, ScorecardView
from parcelhub.api.auth import API_KEY_REQUIRED
from parcelhub.api.views import error_response
from parcelhub.app.scorecards import Level, ScorecardQuery

router = APIGatewayHttpRouter()

_WEEK = r"20\d{2}-W(0[1-9]|[1-4]\d|5[0-3])"  # 2000-2099, weeks 01-53
_PERIOD = rf"^(all|{_WEEK}(\.\.{_WEEK})?)$"


@router.get(
    "/analytics/scorecards",
    summary="Carrier scorecards by lane, destination province or carrier",
    description="Volume, pickup latency and transit time p50/p90, on-time rate against the promise, "
    "first-attempt delivery rate, exception rate by reason, return rate and cost per parcel, computed from "
    "the delivery facts of parcels that ended in the period (ISO weeks, China time).",
    responses={
        200: {"description": "The scorecard rows", "content": {"application/json": {"model": ScorecardsView}}},
        401: error_response("Missing or invalid x-api-key"),
        422: error_response("Invalid filter or period; the field is named"),
    },
    tags=["analytics"],
    security=API_KEY_REQUIRED,
)
def scorecards(  # noqa: PLR0917 - the route's query parameters
    level: Annotated[Level, Query(description="lane, province, destination or carrier")] = Level.LANE,
    period: Annotated[
        str, Query(pattern=_PERIOD, description="all, an ISO week 2026-W48, or a range 2026-W40..2026-W48")
    ] = "all",
    carrier: Annotated[str | None, Query(max_length=8, description="Carrier code, e.g. SF or ZTO")] = None,
    origin: Annotated[str | None, Query(max_length=64, description="Origin province or city")] = None,
    destination: Annotated[str | None, Query(max_length=64, description="Destination province or city")] = None,
    by_week: Annotated[bool, Query(description="One row per week of a range instead of one for the range")] = False,
) -> ScorecardsView:
    query = ScorecardQuery(
        level=level, period=period, carrier=carrier, origin=origin, destination=destination, by_week=by_week
    )
    rows = composition.scorecard_service().rows(query)
    return ScorecardsView(level=level, period=period, rows=[ScorecardView.of(row) for row in rows])


@router.get(
    "/analytics/capacity",
    summary="Carrier capacity: intake today, forecast, e-waybill balance cover and alerts",
    description="Per carrier (the configured ones and every carrier the selection rules name): today's intake "
    "against the daily cap, a daily forecast over the horizon from recent intake with the configured promotion "
    "multipliers, the e-waybill balance left and how many days of forecast it covers, whether new orders skip "
    "the carrier, and the alerts the capacity planner raises. Empty counters unless capacity.enabled.",
    responses={
        200: {"description": "The carriers' capacity", "content": {"application/json": {"model": CapacityView}}},
        401: error_response("Missing or invalid x-api-key"),
        503: error_response("The store is busy; retry with backoff"),
    },
    tags=["analytics"],
    security=API_KEY_REQUIRED,
)
def capacity() -> CapacityView:
    policy = composition.hub_config().capacity
    looks = composition.capacity_planner().outlooks(datetime.now(UTC))
    return CapacityView(
        enabled=policy.enabled,
        min_cover_days=policy.min_cover_days,
        carriers=[CarrierCapacityView.of(look) for look in looks],
    )
