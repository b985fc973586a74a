"""``/v1/quotes``: the ranked carrier options for an order, without storing anything."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from parcelhub import composition
from parcelhub.api.auth import API_KEY_REQUIRED
from parcelhub.api.quote_views import QuotesView
from parcelhub.api.views import error_response
from parcelhub.app.quotes import OrderFacts
from parcelhub.domain.models import ShipmentRequest

router = APIGatewayHttpRouter()


@router.post(
    "/quotes",
    summary="Quote an order: the carriers ranked by the smart strategy",
    description="Takes the body of POST /v1/shipments and answers every carrier the selection rules allow "
    "for it, ranked as the smart strategy ranks them: the tariff price, the lane estimate of the delivery "
    "window if the order were placed now, whether it meets the promise for the customer's tier and "
    "destination, the lane's on-time and exception rates, and whether the carrier is available (else why "
    "not: an open circuit, a reached daily intake cap or a used-up e-waybill balance, a lane threshold). "
    "Stores nothing.",
    responses={
        200: {"description": "The ranked options", "content": {"application/json": {"model": QuotesView}}},
        401: error_response("Missing or invalid x-api-key"),
        422: error_response("Invalid input, every bad field named; or no carrier serves the destination"),
        503: error_response("The lane history is busy; retry with backoff"),
    },
    tags=["quotes"],
    security=API_KEY_REQUIRED,
)
def quote(body: ShipmentRequest) -> QuotesView:
    now = datetime.now(UTC)
    order = OrderFacts.of_request(body, composition.hub_config().warehouse, now)
    return QuotesView.of(composition.quoter().quote(order, now).record)
