"""The resolver: routers, authentication middleware, and domain errors mapped to HTTP statuses."""

from __future__ import annotations

import base64
import binascii
import functools
import threading
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from parcelhub.api.auth import Unauthorized, authenticate, is_public
from parcelhub.api.views import ErrorBody, FieldError
from parcelhub.app.quotes import NoCandidate
from parcelhub.app.scorecards import InvalidScorecardQuery
from parcelhub.app.shipments import InvalidTransition, OrderConflict
from parcelhub.app.trackings import InvalidTrackingNumber
from parcelhub.carriers.base import CarrierAuthError, CarrierRejected, CarrierUnavailable
from parcelhub.ports.errors import ShipmentNotFound, StoreUnavailable
from parcelhub.security.bodies import MAX_NESTING, nesting_depth

API_TITLE = "parcelhub OMS API"


def _error(status: int, error: str, message: str, fields: list[FieldError] | None = None) -> Response[ErrorBody]:
    body = ErrorBody(error=error, message=message, fields=fields or [])
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _answer(status: int, body: ErrorBody) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


#: far above any order (200 items, 50 parcels) and far below what would cost real memory or time to parse
MAX_BODY_BYTES = 256 * 1024


def _unreadable(event: dict[str, Any]) -> dict[str, Any] | None:
    """A body that is not UTF-8 text, is larger than :data:`MAX_BODY_BYTES` or nests deeper than
    :data:`MAX_NESTING` levels is refused (422, field ``body``) before any parser sees it."""
    body = event.get("body")
    if not body or not isinstance(body, str):
        return None
    if len(body) > MAX_BODY_BYTES * 2:  # cheap bound before decoding anything
        return _unreadable_body(f"the body is larger than {MAX_BODY_BYTES} bytes")
    text = body
    if event.get("isBase64Encoded"):
        try:
            text = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _unreadable_body("the body is not UTF-8 text")
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_BODY_BYTES:
        return _unreadable_body(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if nesting_depth(text) > MAX_NESTING:
        return _unreadable_body(f"the body nests deeper than {MAX_NESTING} levels")
    return None


def _unreadable_body(message: str) -> dict[str, Any]:
    field = FieldError(field="body", message=message, type="unreadable")
    return _answer(422, ErrorBody(error="validation_failed", message="1 invalid field(s)", fields=[field]))


def _refused(event: dict[str, Any]) -> dict[str, Any] | None:
    """Authenticate first: a route that needs a key answers 401 to a caller without a valid one before
    Powertools parses or validates anything (its validation runs ahead of any middleware)."""
    path = str(event.get("rawPath") or "/")
    stage = str((event.get("requestContext") or {}).get("stage") or "")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    if is_public(path):
        return None
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        authenticate(headers.get("x-api-key"))
    except Unauthorized as refused:
        return _answer(401, ErrorBody(error="unauthorized", message=str(refused), fields=[]))
    return None


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
    from parcelhub.api.routers import analytics, health, quotes, returns, shipments, tracking, trackings, trackpage

    app = APIGatewayHttpResolver(enable_validation=True)
    app.include_router(shipments.router, prefix="/v1")
    app.include_router(tracking.router, prefix="/v1")
    app.include_router(health.router, prefix="/v1")
    app.include_router(trackpage.router)
    app.include_router(analytics.router, prefix="/v1")
    app.include_router(quotes.router, prefix="/v1")
    app.include_router(trackings.router, prefix="/v1")
    app.include_router(returns.router, prefix="/v1")

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

    @app.exception_handler(InvalidScorecardQuery)
    def _invalid_query(error: InvalidScorecardQuery) -> Response[ErrorBody]:
        field = FieldError(field=error.field, message=str(error), type="value_error")
        return _error(422, "validation_failed", "1 invalid field(s)", [field])

    @app.exception_handler(InvalidTrackingNumber)
    def _invalid_number(error: InvalidTrackingNumber) -> Response[ErrorBody]:
        field = FieldError(field=error.field, message=str(error), type="value_error")
        return _error(422, "validation_failed", "1 invalid field(s)", [field])

    @app.exception_handler(NoCandidate)
    def _no_candidate(error: NoCandidate) -> Response[ErrorBody]:
        field = FieldError(field="receiver.province", message=str(error), type="value_error")
        return _error(422, "no_carrier", "no carrier serves the destination", [field])

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
    refused = _refused(event) or _unreadable(event)
    if refused is not None:
        return refused
    with _one_at_a_time:  # uncontended on Lambda; see resolver()
        return resolver().resolve(event, context)
