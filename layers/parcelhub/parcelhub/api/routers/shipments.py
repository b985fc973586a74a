"""``/v1/shipments``: create, find, read, cancel, retry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from parcelhub import composition
from parcelhub.api.auth import API_KEY_REQUIRED
from parcelhub.api.views import ShipmentView, error_response
from parcelhub.domain.models import Shipment, ShipmentRequest, TrackingEvent

router = APIGatewayHttpRouter()


_ERRORS: dict[int, OpenAPIResponse] = {
    401: error_response("Missing or invalid x-api-key"),
    404: error_response("Unknown shipment"),
    409: error_response("Conflict with the shipment's state"),
    422: error_response("Invalid input; every bad field is named"),
}


#: what a client (or a stateful fuzzer) can do next with a shipment view: the OpenAPI links that chain
#: create -> read / find / cancel / retry by the ids the answer carries
_SHIPMENT_LINKS = {
    name: {"operationId": operation, "parameters": {parameter: f"$response.body#/{parameter}"}}
    for name, operation, parameter in (
        ("GetShipment", "get_shipment_v1_shipments__shipment_id__get", "shipment_id"),
        ("FindShipmentByOrder", "find_shipment_v1_shipments_get", "order_id"),
        ("CancelShipment", "cancel_shipment_v1_shipments__shipment_id__cancel_post", "shipment_id"),
        ("RetryShipment", "retry_shipment_v1_shipments__shipment_id__retry_post", "shipment_id"),
    )
}


def _answers(status: int, description: str) -> dict[int, OpenAPIResponse]:
    """The route's success answer (the shipment view, with its links) and every error it can give."""
    view: OpenAPIResponse = {
        "description": description,
        "content": {"application/json": {"model": ShipmentView}},
        "links": _SHIPMENT_LINKS,
    }
    return {status: view, **_ERRORS}


#: a shipment id in a path: what ``new_shipment_id`` makes, and never a key separator (``#``) or a slash
ShipmentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _now() -> datetime:
    return datetime.now(UTC)


def _view(shipment: Shipment, events: list[TrackingEvent]) -> ShipmentView:
    label = shipment.waybill.label_ref if shipment.waybill else None
    receipt = shipment.receipt.ref if shipment.receipt else None
    service = composition.shipment_service()
    return ShipmentView.of(
        shipment,
        events,
        service.label_link(label),
        composition.tracking_url(shipment.shipment_id),
        service.label_link(receipt),  # the same short-lived presigned link as a label's
    )


def _json(status: int, view: ShipmentView) -> Response[ShipmentView]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=view)


@router.post(
    "/shipments",
    summary="Hand over an order",
    description="Stores the shipment (PENDING) and starts the waybill workflow. 202 when new; 200 with the "
    "same shipment when the same order id arrives again with the same body; 409 with a different body.",
    responses={
        k: v
        for k, v in {**_answers(202, "Accepted"), **_answers(200, "Already accepted (idempotent replay)")}.items()
        if k != 404  # creating needs no shipment
    },
    tags=["shipments"],
    security=API_KEY_REQUIRED,
)
def create_shipment(body: ShipmentRequest) -> Response[ShipmentView]:
    accepted = composition.shipment_service().accept(body, now=_now())
    return _json(202 if accepted.created else 200, _view(accepted.shipment, []))


@router.get(
    "/shipments",
    summary="Find a shipment by order id",
    responses=_answers(200, "The shipment of that order"),
    tags=["shipments"],
    security=API_KEY_REQUIRED,
)
def find_shipment(order_id: Annotated[str, Query(min_length=1, max_length=64)]) -> ShipmentView:
    return _view(*composition.shipment_service().get_by_order(order_id))


@router.get(
    "/shipments/<shipment_id>",
    summary="Read a shipment with its timeline",
    responses=_answers(200, "The shipment with its timeline"),
    tags=["shipments"],
    security=API_KEY_REQUIRED,
)
def get_shipment(shipment_id: ShipmentId) -> ShipmentView:
    return _view(*composition.shipment_service().get(shipment_id))


@router.post(
    "/shipments/<shipment_id>/cancel",
    summary="Cancel the waybill while nothing is picked up (409 after pickup)",
    responses=_answers(200, "Cancelled"),
    tags=["shipments"],
    security=API_KEY_REQUIRED,
)
def cancel_shipment(shipment_id: ShipmentId) -> ShipmentView:
    return _view(composition.shipment_service().cancel(shipment_id, now=_now()), [])


@router.post(
    "/shipments/<shipment_id>/retry",
    summary="Re-run the waybill workflow for a WAYBILL_FAILED shipment",
    responses=_answers(202, "A fresh waybill workflow started"),
    tags=["shipments"],
    security=API_KEY_REQUIRED,
    status_code=202,
)
def retry_shipment(shipment_id: ShipmentId) -> Response[ShipmentView]:
    return _json(202, _view(composition.shipment_service().retry(shipment_id, now=_now()), []))
