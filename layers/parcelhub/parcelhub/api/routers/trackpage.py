"""The customer tracking page: ``GET /t/{token}`` (HTML, or JSON with ``Accept: application/json`` or
``/t/{token}.json``) and the lookup form ``GET|POST /track``. Public: no API key.

Every answer that is not a page says the same thing whatever the reason (a forged token and a deleted
shipment; an unknown order and wrong digits), is marked ``noindex`` and sends no Referer onwards (the
token is in the URL).
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from parcelhub import composition
from parcelhub.api.trackpage.render import Html, page_view, render_lookup, render_not_found, render_page
from parcelhub.api.trackpage.texts import UI, Lang, choose_language
from parcelhub.api.views import ErrorBody, LookupMatch, TrackingPageView
from parcelhub.app.tracking_page import LinkNotFound, LookupRefused, TooManyAttempts

router = APIGatewayHttpRouter()

HTML = "text/html; charset=utf-8"
_LANG_QUERY = Query(description="Language: zh-CN (default) or en; otherwise Accept-Language decides")


def _doc(description: str, model: type[BaseModel] | None = None) -> OpenAPIResponse:
    """An answer documented as HTML, with its JSON twin's model when there is one."""
    content: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
    if model is not None:
        content["application/json"] = {"model": model}
    return {"description": description, "content": content}


_PAGE_RESPONSES: dict[int, OpenAPIResponse] = {
    200: _doc("The tracking page (HTML), or its JSON twin", TrackingPageView),
    404: _doc("Not a valid tracking link (forged, altered or gone: one answer for all)", ErrorBody),
}
_LOOKUP_RESPONSES: dict[int, OpenAPIResponse] = {
    303: {"description": "Found: redirects to the tracking page (form posts)"},
    200: {"description": "Found (JSON requests)", "content": {"application/json": {"model": LookupMatch}}},
    404: _doc("No shipment matches the order id and digits (one answer for unknown order and wrong digits)", ErrorBody),
    429: _doc("Too many lookups from this address or for this order id; see Retry-After", ErrorBody),
}


def _headers(lang: Lang, cache_seconds: int, csp: str | None = None) -> dict[str, str]:
    headers = {
        "Cache-Control": f"private, max-age={cache_seconds}" if cache_seconds else "no-store",
        "Content-Language": lang,
        "Vary": "Accept, Accept-Language",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Robots-Tag": "noindex, nofollow",
    }
    if csp:
        headers["Content-Security-Policy"] = csp
    return headers


def _html(status: int, html: Html, lang: Lang, cache_seconds: int) -> Response[str]:
    return Response(
        status_code=status, content_type=HTML, body=html.body, headers=_headers(lang, cache_seconds, html.csp)
    )


def _json(status: int, body: str, lang: Lang, cache_seconds: int, **extra: str) -> Response[str]:
    headers = _headers(lang, cache_seconds) | extra
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _language(explicit: str | None = None) -> Lang:
    return choose_language(explicit, router.current_event.headers.get("accept-language"))


def _wants_json() -> bool:
    accept = (router.current_event.headers.get("accept") or "").lower()
    return "application/json" in accept and "text/html" not in accept


@router.get(
    "/t/<token>",
    summary="The customer tracking page of a shipment",
    description="Public (the token is the credential). HTML by default; JSON with `Accept: application/json` "
    "or a `.json` suffix. Masked data only.",
    responses=_PAGE_RESPONSES,
    tags=["tracking page"],
    security=[],
)
def tracking_page(token: str, lang: Annotated[str | None, _LANG_QUERY] = None) -> Response[str]:
    as_json = token.endswith(".json") or _wants_json()
    token = token.removesuffix(".json")
    chosen = _language(lang)
    service = composition.tracking_page_service()
    settings = service.settings()
    try:
        page = service.page(token)
    except LinkNotFound:
        if as_json:
            body = ErrorBody(error="not_found", message="not a valid tracking link").model_dump_json()
            return _json(404, body, chosen, settings.cache_seconds)
        return _html(404, render_not_found(chosen, settings), chosen, settings.cache_seconds)
    view = page_view(page, chosen)
    if as_json:
        return _json(200, view.model_dump_json(), chosen, settings.cache_seconds)
    return _html(200, render_page(page, view), chosen, settings.cache_seconds)


@router.get(
    "/track",
    summary="The tracking lookup form (order id + last 4 digits of the receiver's phone)",
    responses={200: _doc("The form (HTML)")},
    tags=["tracking page"],
    security=[],
)
def lookup_form(lang: Annotated[str | None, _LANG_QUERY] = None) -> Response[str]:
    chosen = _language(lang)
    settings = composition.tracking_page_service().settings()
    return _html(200, render_lookup(chosen, settings), chosen, settings.cache_seconds)


def _form() -> dict[str, str]:
    event = router.current_event
    raw = event.decoded_body or ""
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items() if isinstance(v, str | int)} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items() if v}


@router.post(
    "/track",
    summary="Look a shipment up by order id and the last 4 digits of the receiver's phone",
    description="Form post (`application/x-www-form-urlencoded`: `order_id`, `digits`, optional `lang`) -> 303 to "
    "the tracking page; JSON body (same fields) -> 200 with the token. Rate-limited per source address and per "
    "order id; unknown order and wrong digits get the same 404.",
    responses=_LOOKUP_RESPONSES,
    tags=["tracking page"],
    security=[],
)
def lookup(lang: Annotated[str | None, _LANG_QUERY] = None) -> Response[str]:
    event = router.current_event
    form = _form()
    as_json = (event.headers.get("content-type") or "").lower().startswith("application/json") or _wants_json()
    chosen = _language(form.get("lang") or lang)
    service = composition.tracking_page_service()
    settings = service.settings()
    order_id = form.get("order_id", "").strip()[:64]
    try:
        token = service.lookup(
            order_id, form.get("digits", ""), source=event.request_context.http.source_ip, now=datetime.now(UTC)
        )
    except TooManyAttempts as throttled:
        retry = {"Retry-After": str(throttled.retry_after)}
        if as_json:
            body = ErrorBody(error="too_many_requests", message=UI["lookup_throttled"]("en")).model_dump_json()
            return _json(429, body, chosen, 0, **retry)
        html = render_lookup(chosen, settings, error=UI["lookup_throttled"](chosen), order_id=order_id)
        response = _html(429, html, chosen, 0)
        response.headers.update(retry)
        return response
    except LookupRefused:
        if as_json:
            body = ErrorBody(error="not_found", message=UI["lookup_refused"]("en")).model_dump_json()
            return _json(404, body, chosen, 0)
        html = render_lookup(chosen, settings, error=UI["lookup_refused"](chosen), order_id=order_id)
        return _html(404, html, chosen, 0)
    if as_json:
        url = composition.tracking_url(token.rpartition(".")[0])
        return _json(200, LookupMatch(token=token, tracking_url=url).model_dump_json(), chosen, 0)
    headers = _headers(chosen, 0) | {"Location": f"t/{token}?lang={chosen}"}
    return Response(status_code=303, content_type=HTML, body="", headers=headers)
