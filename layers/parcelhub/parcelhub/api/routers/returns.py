"""``/v1/shipments/{id}/returns`` and ``/v1/returns/{id}``: returns with door pickup (issue #19)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from parcelhub import composition
from parcelhub.api.auth import API_KEY_REQUIRED
from parcelhub.api.return_views import ReturnApiView, ShipmentReturnsView
from parcelhub.api.views import ErrorBody, FieldError, error_response
from parcelhub.app.returns import NotReturnable, ReturnInvalid, ReturnNotCancellable
from parcelhub.domain.models import ReturnRequest, Shipment
from parcelhub.ports.errors import ShipmentNotFound

router = APIGatewayHttpRouter()

#: a shipment or return id in a path (never a key separator or a slash)
Id = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _answer(status: int, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    known: dict[int, OpenAPIResponse] = {
        401: error_response("Missing or invalid x-api-key"),
        404: error_response("Unknown shipment or return"),
        409: error_response("Conflict with the state: not delivered / not returnable, or collected already"),
        422: error_response("Invalid input; every bad field is named"),
    }
    body: OpenAPIResponse = {"description": description, "content": {"application/json": {"model": ReturnApiView}}}
    return {status: body, **{code: known[code] for code in (401, *errors)}}


def _error(status: int, error: str, message: str, fields: list[FieldError] | None = None) -> Response[ErrorBody]:
    body = ErrorBody(error=error, message=message, fields=fields or [])
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _view(shipment: Shipment, with_events: bool = False) -> ReturnApiView:
    events = composition.shipment_service().get(shipment.shipment_id)[1] if with_events else None
    view = ReturnApiView.of(shipment, events)
    if view is None:
        raise ShipmentNotFound(shipment.shipment_id)
    return view


@router.post(
    "/shipments/<shipment_id>/returns",
    summary="Return items of a delivered shipment, with a door pickup",
    description="Accepts a return (some of the shipment's items, a reason, the pickup address - the original "
    "receiver when absent - and a pickup window); the courier is booked asynchronously with the provider "
    "configured for the carrier. 202 with the return (state requested; GET /v1/returns/{id} shows "
    "pickup_booked, or pickup_failed when the provider refused); 404 for an unknown shipment; 409 when it is "
    "not delivered; 422 naming every bad field.",
    responses=_answer(202, "The return, accepted", 404, 409, 422),
    tags=["returns"],
    security=API_KEY_REQUIRED,
    status_code=202,
)
def create_return(shipment_id: Id, body: ReturnRequest) -> Response[ReturnApiView]:
    created = composition.return_service().create(shipment_id, body, now=datetime.now(UTC))
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=_view(created))


@router.get(
    "/shipments/<shipment_id>/returns",
    summary="The returns of a shipment",
    responses={
        200: {"description": "Its returns", "content": {"application/json": {"model": ShipmentReturnsView}}},
        401: error_response("Missing or invalid x-api-key"),
        404: error_response("Unknown shipment"),
    },
    tags=["returns"],
    security=API_KEY_REQUIRED,
)
def list_returns(shipment_id: Id) -> ShipmentReturnsView:
    service = composition.return_service()
    shipment = service.ports.shipments.get(shipment_id)
    found = [ReturnApiView.of(shipment)] + [ReturnApiView.of(service.get(rid)) for rid in shipment.returns]
    return ShipmentReturnsView(shipment_id=shipment_id, returns=[view for view in found if view is not None])


@router.get(
    "/returns/<return_id>",
    summary="Read a return with its parcel's timeline",
    responses=_answer(200, "The return", 404),
    tags=["returns"],
    security=API_KEY_REQUIRED,
)
def get_return(return_id: Id) -> ReturnApiView:
    return _view(composition.return_service().get(return_id), with_events=True)


@router.post(
    "/returns/<return_id>/cancel",
    summary="Cancel the pickup before the courier collects (409 after)",
    responses=_answer(200, "Cancelled", 404, 409),
    tags=["returns"],
    security=API_KEY_REQUIRED,
)
def cancel_return(return_id: Id) -> ReturnApiView:
    return _view(composition.return_service().cancel(return_id, now=datetime.now(UTC)))


@router.exception_handler(NotReturnable)
def _not_returnable(error: NotReturnable) -> Response[ErrorBody]:
    return _error(409, "not_returnable", str(error))


@router.exception_handler(ReturnNotCancellable)
def _not_cancellable(error: ReturnNotCancellable) -> Response[ErrorBody]:
    return _error(409, "invalid_state", str(error))


@router.exception_handler(ReturnInvalid)
def _invalid(error: ReturnInvalid) -> Response[ErrorBody]:
    fields = [FieldError(field=name, message=message, type="value_error") for name, message in error.errors]
    return _error(422, "validation_failed", f"{len(fields)} invalid field(s)", fields)
