"""``/v1/tracking``: the consumer-safe view for brand apps and mini-programs."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from parcelhub import composition
from parcelhub.api.views import TrackingView
from parcelhub.domain.models import Carrier

router = APIGatewayHttpRouter()


@router.get(
    "/tracking/<carrier>/<tracking_number>",
    summary="Consumer-safe tracking view (masked, no internal fields)",
    tags=["tracking"],
)
def track(carrier: Carrier, tracking_number: str) -> TrackingView:
    return TrackingView.of(*composition.shipment_service().by_tracking(carrier.value, tracking_number))
