"""The resolver: routers, authentication middleware, and domain errors mapped to HTTP statuses."""

from __future__ import annotations

import functools
import threading
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from parcelhub.api.auth import Unauthorized, authenticate, is_public
from parcelhub.api.views import ErrorBody, FieldError
from parcelhub.app.shipments import InvalidTransition, OrderConflict
from parcelhub.carriers.base import CarrierAuthError, CarrierRejected, CarrierUnavailable
from parcelhub.ports.errors import ShipmentNotFound, StoreUnavailable

API_TITLE = "parcelhub OMS API"


def _error(status: int, error: str, message: str, fields: list[FieldError] | None = None) -> Response[ErrorBody]:
    body = ErrorBody(error=error, message=message, fields=fields or [])
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _require_key(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    path = app.current_event.raw_path
    stage = app.current_event.request_context.stage
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    if not is_public(path):
        authenticate(app.current_event.headers.get("x-api-key"))
    return next_middleware(app)


_one_at_a_time = threading.Lock()


@functools.cache
def resolver() -> APIGatewayHttpResolver:
    """The one resolver of this process, built on first use.

    Powertools is not thread-safe: ``resolve`` stores the event in a class attribute
    (``BaseRouter.current_event``) that every resolver and router reads, and ``include_router`` points
    module-level routers at the last resolver that included them. Lambda runs one invocation per
    environment at a time; :func:`handle` holds a lock so a process that serves invocations on threads (the
    local stack) gets the same semantics instead of answering one request with another's body.
    """
    return _build_resolver()


def _build_resolver() -> APIGatewayHttpResolver:
    from parcelhub.api.routers import health, shipments, tracking, trackpage

    app = APIGatewayHttpResolver(enable_validation=True)
    app.use(middlewares=[_require_key])
    app.include_router(shipments.router, prefix="/v1")
    app.include_router(tracking.router, prefix="/v1")
    app.include_router(health.router, prefix="/v1")
    app.include_router(trackpage.router)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[ErrorBody]:
        fields = [
            FieldError(
                field=".".join(str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path")),
                message=str(err.get("msg", "invalid value")),
                type=str(err.get("type", "value_error")),
            )
            for err in error.errors()
        ]
        return _error(422, "validation_failed", f"{len(fields)} invalid field(s)", fields)

    @app.exception_handler(Unauthorized)
    def _unauthorized(error: Unauthorized) -> Response[ErrorBody]:
        return _error(401, "unauthorized", str(error))

    @app.exception_handler(ShipmentNotFound)
    def _not_found(error: ShipmentNotFound) -> Response[ErrorBody]:
        return _error(404, "not_found", str(error))

    @app.exception_handler(OrderConflict)
    def _order_conflict(error: OrderConflict) -> Response[ErrorBody]:
        return _error(409, "order_conflict", str(error))

    @app.exception_handler(InvalidTransition)
    def _invalid_transition(error: InvalidTransition) -> Response[ErrorBody]:
        return _error(409, "invalid_state", str(error))

    @app.exception_handler(CarrierRejected)
    def _carrier_rejected(error: CarrierRejected) -> Response[ErrorBody]:
        return _error(409, "carrier_rejected", str(error))

    @app.exception_handler(CarrierUnavailable)
    def _carrier_unavailable(error: CarrierUnavailable) -> Response[ErrorBody]:
        return _error(503, "carrier_unavailable", str(error))

    @app.exception_handler(CarrierAuthError)
    def _carrier_auth(error: CarrierAuthError) -> Response[ErrorBody]:
        return _error(502, "carrier_misconfigured", "the provider rejected our credentials; operations is alerted")

    @app.exception_handler(StoreUnavailable)
    def _store_unavailable(error: StoreUnavailable) -> Response[ErrorBody]:
        return _error(503, "unavailable", "storage is busy, retry with backoff")

    return app


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with _one_at_a_time:  # uncontended on Lambda; see resolver()
        return resolver().resolve(event, context)
