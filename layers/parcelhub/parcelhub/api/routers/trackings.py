"""``/v1/trackings``: track a number parcelhub did not ship (carrier detected when not given)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field

from parcelhub import composition
from parcelhub.api.auth import API_KEY_REQUIRED
from parcelhub.api.views import ShipmentView, error_response
from parcelhub.app.trackings import Detection
from parcelhub.domain.models import Carrier, Provider, TrackingRequest

router = APIGatewayHttpRouter()


class CandidateView(BaseModel):
    carrier: Carrier
    score: float = Field(ge=0, le=1, description="How strongly the number's format points at the carrier")
    certain: bool = Field(description="A near-certain format (letter prefix): it decides on its own")
    pattern: str = Field(description="The number-pattern table's row that matched")


class DetectionView(BaseModel):
    """The carriers a number may belong to, best first, and which one parcelhub would track it with."""

    tracking_number: str = Field(description="The number as carriers print it (spaces, dashes removed)")
    candidates: list[CandidateView] = Field(description="From the number-pattern table, best first")
    carrier: Carrier | None = Field(description="The carrier parcelhub would track it with (null: none matches)")
    method: str = Field(description="pattern, aggregator, pattern_unconfirmed or unknown")
    recognised: list[Carrier] = Field(description="The recognising provider's answer, when one was asked")
    recognised_by: Provider | None
    unavailable: dict[str, str] = Field(description="Recognisers asked that could not answer, with why")

    @classmethod
    def of(cls, found: Detection) -> DetectionView:
        return cls(
            tracking_number=found.number,
            candidates=[
                CandidateView(carrier=c.carrier, score=c.score, certain=c.certain, pattern=c.pattern)
                for c in found.candidates
            ],
            carrier=found.carrier,
            method=found.method,
            recognised=list(found.recognised),
            recognised_by=found.recognised_by,
            unavailable=found.unavailable,
        )


_ERRORS: dict[int, OpenAPIResponse] = {
    401: error_response("Missing or invalid x-api-key"),
    409: error_response("The order id is taken by another number or body"),
    422: error_response("Invalid input; every bad field is named"),
}


def _view(status: int, description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ShipmentView}}}


@router.post(
    "/trackings",
    summary="Track a number parcelhub did not ship",
    description="Registers a tracking-only shipment (kind tracking) that joins the pipeline: subscription, "
    "pushes, status, stalls, events. Without a carrier it is detected from the number (a near-certain format "
    "decides; an ambiguous one is confirmed by a provider's recognition API in the workflow). 202 when new; 200 "
    "with the same shipment when the same number arrives again with the same body; 409 with a different body.",
    responses={202: _view(202, "Registered"), 200: _view(200, "Already registered (idempotent replay)"), **_ERRORS},
    tags=["trackings"],
    security=API_KEY_REQUIRED,
)
def register_tracking(body: TrackingRequest) -> Response[ShipmentView]:
    accepted = composition.tracking_registry().register(body, now=datetime.now(UTC))
    shipment = accepted.shipment
    view = ShipmentView.of(shipment, [], None, composition.tracking_url(shipment.shipment_id))
    return Response(
        status_code=202 if accepted.created else 200, content_type=content_types.APPLICATION_JSON, body=view
    )


@router.get(
    "/trackings/detect",
    summary="Which carrier a tracking number belongs to (nothing registered)",
    description="The number-pattern candidates, best first; when the format is ambiguous the configured "
    "recognisers (Kuaidi100 autonumber, Kdniao 2002) are asked too, unless confirm=false.",
    responses={
        200: {"description": "The ranked candidates", "content": {"application/json": {"model": DetectionView}}},
        401: _ERRORS[401],
        422: _ERRORS[422],
    },
    tags=["trackings"],
    security=API_KEY_REQUIRED,
)
def detect_carrier(
    number: Annotated[str, Query(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9 \-]*[A-Za-z0-9][A-Za-z0-9 \-]*$")],
    confirm: Annotated[bool, Query()] = True,
) -> DetectionView:
    return DetectionView.of(composition.tracking_registry().detect(number, confirm=confirm, field="number"))
