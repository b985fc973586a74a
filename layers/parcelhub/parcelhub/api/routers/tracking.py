"""``/v1/tracking``: the consumer-safe view for brand apps and mini-programs."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from parcelhub import composition
from parcelhub.api.auth import API_KEY_REQUIRED
from parcelhub.api.views import ErrorBody, TrackingView
from parcelhub.domain.models import Carrier

router = APIGatewayHttpRouter()


def _doc(description: str, model: type[ErrorBody] | type[TrackingView]) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


@router.get(
    "/tracking/<carrier>/<tracking_number>",
    summary="Consumer-safe tracking view (masked, no internal fields)",
    responses={
        200: _doc("The parcel's consumer-safe view", TrackingView),
        401: _doc("Missing or invalid x-api-key", ErrorBody),
        404: _doc("No shipment has that carrier and tracking number", ErrorBody),
        422: _doc("Invalid input; every bad field is named", ErrorBody),
    },
    tags=["tracking"],
    security=API_KEY_REQUIRED,
)
def track(carrier: Carrier, tracking_number: Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{4,40}$")]) -> TrackingView:
    return TrackingView.of(*composition.shipment_service().by_tracking(carrier.value, tracking_number))
