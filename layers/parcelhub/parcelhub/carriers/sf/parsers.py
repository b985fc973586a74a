"""SF Fengqiao parsers: PURE functions from SF answers and route pushes to our models (REFERENCE §2).

* ``unwrap`` opens any answer (gateway code, then the JSON-in-a-string business result) and raises the
  typed error ``codes.classify_result`` names; the ``parse_*_response`` functions start with it;
* ``parse_create_response`` / ``parse_fetch_response`` (-> ``Waybill``), ``parse_cancel_response``
  (idempotent: 已消单 is done), ``parse_query_response`` (routes -> ``ParsedPush``); no
  ``parse_subscribe_response`` (there is no subscribe call, see ``builders``);
* pushes (§2.6): ``verify_push`` (the URL token), ``parse_push`` (JSON, the form variant with
  URL-encoded XML, or the XML as the raw body) and ``push_reply`` (the ACK SF expects, in the shape of
  the push).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr  # writes XML; parsing is defusedxml's  # nosec B406

import defusedxml.ElementTree as SafeET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from parcelhub.carriers.base import (
    TOKEN_DIGEST_PARAM,
    TOKEN_PARAM,
    CarrierRejected,
    CarrierUnavailable,
    HttpReply,
    HttpRequest,
    ParsedPush,
    PickupOrder,
    PushRejected,
    PushUnreadable,
    TrackingQuery,
    WaybillOrder,
)
from parcelhub.carriers.codes import MISSING_CODE, Resolution, resolve
from parcelhub.carriers.sf.codes import (
    BUSINESS_OK,
    PROVIDER,
    TRACKING_CODES,
    already_cancelled,
    classify_result,
    normalised_status,
)
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.carriers.sf.signing import push_token_digest_matches, push_token_matches
from parcelhub.carriers.wire import compact_json, decode_form, field, field_text
from parcelhub.domain.models import (
    Carrier,
    EventSource,
    PickupBooking,
    Provider,
    TrackingEvent,
    Waybill,
    parse_china_time,
)

PUSH_SERVICE = "RoutePushService"
JSON_ACK_CONTENT_TYPE = "application/json;charset=UTF-8"
XML_ACK_CONTENT_TYPE = "application/xml;charset=UTF-8"

# ------------------------------------------------------------------------------------------ answers


def unwrap(body: Mapping[str, Any]) -> dict[str, Any]:
    """The business ``msgData`` of a response, or the typed error.

    ``apiResultCode`` A1000 = the gateway accepted; ``apiResultData`` is JSON *inside a string*
    (decoded a second time); then ``success``/``errorCode`` (S0000 = ok)."""
    refused = classify_result(str(body.get("apiResultCode") or ""), str(body.get("apiErrorMsg") or ""), gateway=True)
    if refused is not None:
        raise refused
    raw = body.get("apiResultData")
    try:
        result = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, "apiResultData is not JSON", "BAD_RESPONSE") from exc
    if not isinstance(result, dict):
        raise CarrierUnavailable(PROVIDER, "apiResultData missing", "BAD_RESPONSE")
    error_code = str(result.get("errorCode") or "")
    if result.get("success") is not True or (error_code and error_code != BUSINESS_OK):
        failed = classify_result(error_code or "UNKNOWN", str(result.get("errorMsg") or ""))
        if failed is not None:  # a business errorCode is always an error
            raise failed
    msg_data = result.get("msgData")
    return msg_data if isinstance(msg_data, dict) else {}


def waybill_from_order(msg_data: Mapping[str, Any]) -> Waybill:
    """A Waybill from the ``msgData`` of EXP_RECE_CREATE_ORDER or EXP_RECE_SEARCH_ORDER_RESP.

    The master waybill (``waybillType`` 1) is the tracking number; the first route label's
    ``routeLabelData`` is kept whole as the label, its ``destRouteLabel`` is the sort code. Field
    names' case varies between the two answers (``destCode``/``destcode``)."""
    numbers = [n for n in msg_data.get("waybillNoInfoList") or [] if isinstance(n, dict) and n.get("waybillNo")]
    if not numbers:
        raise CarrierUnavailable(PROVIDER, "no waybillNo in the order response", "BAD_RESPONSE")
    master = next((n for n in numbers if str(n.get("waybillType", "1")) == "1"), numbers[0])
    label_data: Mapping[str, Any] = {}
    for info in msg_data.get("routeLabelInfo") or []:
        if isinstance(info, dict) and isinstance(info.get("routeLabelData"), dict):
            label_data = info["routeLabelData"]
            break
    return Waybill(
        provider=Provider.SF,
        carrier=Carrier.SF,
        tracking_number=str(master["waybillNo"]),
        provider_order_id=field(msg_data, "orderId") or None,
        sort_code=field(label_data, "destRouteLabel") or None,
        origin_code=field(msg_data, "originCode") or field(label_data, "sourceTransferCode") or None,
        destination_code=field(msg_data, "destCode") or field(label_data, "destCityCode") or None,
        package_code=field(label_data, "codingMapping") or None,
        label=compact_json(label_data) if label_data else None,
    )


def parse_create_response(body: Mapping[str, Any], order: WaybillOrder, settings: SfSettings) -> Waybill:
    """EXP_RECE_CREATE_ORDER -> the new waybill (8016: ``CarrierDuplicateOrder``, then fetch it)."""
    return waybill_from_order(unwrap(body))


def parse_fetch_response(body: Mapping[str, Any], settings: SfSettings) -> Waybill:
    """EXP_RECE_SEARCH_ORDER_RESP -> the waybill of an order SF already has."""
    return waybill_from_order(unwrap(body))


def parse_cancel_response(body: Mapping[str, Any], settings: SfSettings) -> None:
    """EXP_RECE_UPDATE_ORDER (cancel). Idempotent: an order SF reports as already cancelled is done."""
    try:
        unwrap(body)
    except CarrierRejected as exc:
        if already_cancelled(exc.code):
            return
        raise


def parse_query_response(body: Mapping[str, Any], query: TrackingQuery, settings: SfSettings) -> ParsedPush:
    """EXP_RECE_SEARCH_ROUTES -> polled events, parsed like a push (unknown opCodes in ``unmapped_codes``)."""
    return events_from_routes(unwrap(body))


# ------------------------------------------------------------------------------------------ routes


def route_event(
    tracking_number: str, route: Mapping[str, Any], source: EventSource
) -> tuple[TrackingEvent, Resolution]:
    """One route node -> a canonical event, and how its status was decided. Field names' case varies
    between push and query (``mailno`` / ``mailNo``): they are matched ignoring case.

    The status comes from the opCode; an opCode outside the table falls back on SF's own normalised
    status (``secondaryStatusCode`` / ``firstStatusCode``), then on the remark text (inferred)."""
    op_code = field_text(route, "opCode").strip()
    remark = field_text(route, "remark").strip()
    normalised = normalised_status(field_text(route, "secondaryStatusCode"), field_text(route, "firstStatusCode"))
    resolution = resolve(op_code, remark, TRACKING_CODES, normalised)
    location = field_text(route, "acceptAddress").strip()
    event = TrackingEvent(
        carrier=Carrier.SF,
        provider=Provider.SF,
        tracking_number=tracking_number,
        occurred_at=parse_china_time(field_text(route, "acceptTime")),
        status=resolution.mapping.status,
        sub_status=resolution.mapping.sub_status,
        raw_code=op_code,
        raw_text=remark,
        location=location or None,
        source=source,
        inferred=resolution.inferred,
        exception_code=field_text(route, "reasonCode").strip() or None,
        exception_text=field_text(route, "reasonName").strip() or None,
        order_ref=field_text(route, "orderid").strip() or None,
    )
    return event, resolution


def _events(nodes: Iterable[tuple[str, Mapping[str, Any]]], source: EventSource) -> ParsedPush:
    events: list[TrackingEvent] = []
    numbers: dict[str, None] = {}
    unmapped: dict[str, None] = {}
    inferred: dict[str, None] = {}
    for tracking_number, route in nodes:
        numbers[tracking_number] = None
        event, resolution = route_event(tracking_number, route, source)
        events.append(event)
        if resolution.unmapped:
            unmapped[event.raw_code or MISSING_CODE] = None
        elif resolution.unknown_code:
            inferred[resolution.unknown_code] = None
    return ParsedPush(
        events=events,
        tracking_numbers=[(Carrier.SF, n) for n in numbers],
        unmapped_codes=list(unmapped),
        inferred_codes=list(inferred),
    )


def events_from_routes(msg_data: Mapping[str, Any]) -> ParsedPush:
    """EXP_RECE_SEARCH_ROUTES ``msgData.routeResps[{mailNo, routes[...]}]`` -> polled events."""
    nodes: list[tuple[str, Mapping[str, Any]]] = []
    for resp in field(msg_data, "routeResps") or []:
        if not isinstance(resp, dict):
            continue
        mail_no = field_text(resp, "mailNo").strip()
        nodes.extend((mail_no, r) for r in field(resp, "routes") or [] if isinstance(r, dict))
    try:
        return _events(nodes, EventSource.POLL)
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable route: {exc}", "BAD_RESPONSE") from exc


# ------------------------------------------------------------------------------------------ pushes

PushShape = Literal["json", "form", "xml"]


def verify_push(request: HttpRequest, settings: SfSettings) -> None:
    """Constant-time check of the URL token (SF does not sign pushes). No I/O."""
    if settings.push_token is None:
        raise PushRejected(PROVIDER, "no push token configured")
    expected = settings.push_token.get_secret_value()
    if TOKEN_PARAM in request.path_params:  # the push as SF sent it
        verified = push_token_matches(request.path_params[TOKEN_PARAM], expected)
    else:  # the queued / archived push: the webhook kept only the digest of the token it verified
        verified = push_token_digest_matches(request.path_params.get(TOKEN_DIGEST_PARAM) or "", expected)
    if not verified:
        raise PushRejected(PROVIDER, "bad or missing URL token")


#: what a push's first bytes say about its shape when the content type does not
_SHAPE_BY_HEAD: tuple[tuple[bytes, PushShape], ...] = ((b"{", "json"), (b"<", "xml"), (b"content=", "form"))


def push_shape(request: HttpRequest) -> PushShape | None:
    """How a push is written: ``json`` (the "json" method), ``form`` (the "form" method: ``content=``
    URL-encoded XML) or ``xml`` (the XML as the raw body, ``application/xml`` or ``text/xml``, as SF's
    own examples and test scripts post it). The content type decides, else the first bytes."""
    kind = (request.header("Content-Type") or "").lower()
    for marker, shape in (("json", "json"), ("form", "form"), ("xml", "xml")):
        if marker in kind:
            return shape  # type: ignore[return-value]
    head = request.body.lstrip(b"\xef\xbb\xbf \t\r\n")
    return next((shape for prefix, shape in _SHAPE_BY_HEAD if head.startswith(prefix)), None)


def _push_routes_json(body: bytes) -> list[Mapping[str, Any]]:
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PushUnreadable(PROVIDER, "body is not JSON") from exc
    routes = field(field(document, "Body") or {}, "WaybillRoute") if isinstance(document, dict) else None
    if isinstance(routes, dict):
        routes = [routes]
    if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
        raise PushUnreadable(PROVIDER, "no Body.WaybillRoute list")
    return routes


def _push_routes_xml(xml: bytes) -> list[Mapping[str, Any]]:
    """The ``WaybillRoute`` elements of an XML push: their attributes (SF's documented form) and, for
    a route written with child elements, their texts. DTDs, entities and external references are
    refused (defusedxml), so the parser cannot be made to expand or fetch anything."""
    if not xml.strip():
        raise PushUnreadable(PROVIDER, "empty XML push")
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as exc:
        raise PushUnreadable(PROVIDER, "DTDs and entities are not accepted") from exc
    except SafeET.ParseError as exc:
        raise PushUnreadable(PROVIDER, "content is not XML") from exc
    routes: list[Mapping[str, Any]] = []
    for node in root.iter("WaybillRoute"):
        route: dict[str, str] = {child.tag: (child.text or "") for child in node if isinstance(child.tag, str)}
        route.update(node.attrib)
        routes.append(route)
    return routes


def _push_routes(request: HttpRequest) -> list[Mapping[str, Any]]:
    shape = push_shape(request)
    if shape == "json":
        return _push_routes_json(request.body)
    if shape == "form":
        content = decode_form(PROVIDER, request.body, "form body is not UTF-8").get("content", "")
        if not content.strip():
            raise PushUnreadable(PROVIDER, "form push without content")
        return _push_routes_xml(content.encode("utf-8"))
    if shape == "xml":
        return _push_routes_xml(request.body)
    raise PushUnreadable(PROVIDER, f"unsupported push content type {request.header('Content-Type')!r}")


def parse_push(request: HttpRequest, settings: SfSettings, received_at: datetime) -> ParsedPush:
    """Verify, then parse a route push (§2.6) into canonical events, whatever its shape (``push_shape``:
    JSON ``{"Body":{"WaybillRoute":[...]}}``, the form's ``content=`` URL-encoded XML, or raw XML).
    ``received_at`` is not needed: every route carries its own time."""
    verify_push(request, settings)
    nodes: list[tuple[str, Mapping[str, Any]]] = []
    for route in _push_routes(request):
        mail_no = field_text(route, "mailno").strip()
        if not mail_no:
            raise PushUnreadable(PROVIDER, "WaybillRoute without mailno")
        nodes.append((mail_no, route))
    try:
        return _events(nodes, EventSource.PUSH)
    except ValueError as exc:
        raise PushUnreadable(PROVIDER, f"unreadable route: {exc}") from exc


def push_reply(
    ok: bool, reason: str, settings: SfSettings, now: datetime, request: HttpRequest | None = None
) -> HttpReply:
    """The reply SF expects: JSON ``return_code`` 0000/1000 [V] to a JSON push, the XML ``OK``/``ERR``
    head [V] to an XML one (form or raw). Without the request, ``settings.push_format`` decides.

    Always HTTP 200: SF reads the body; a failure body makes SF push the transaction again."""
    shape = push_shape(request) if request is not None else None
    as_xml = shape in ("form", "xml") if shape is not None else settings.push_format == "xml"
    if as_xml:
        if ok:
            body = f'<Response service="{PUSH_SERVICE}"><Head>OK</Head></Response>'
        else:
            body = (
                f'<Response service="{PUSH_SERVICE}"><Head>ERR</Head>'
                f"<ERROR code={quoteattr('1000')}>{escape(reason or '失败')}</ERROR></Response>"
            )
        return HttpReply(status_code=200, body=body, content_type=XML_ACK_CONTENT_TYPE)
    payload = {"return_code": "0000", "return_msg": "成功"}
    if not ok:
        payload = {"return_code": "1000", "return_msg": reason or "失败"}
    return HttpReply(status_code=200, body=compact_json(payload), content_type=JSON_ACK_CONTENT_TYPE)


# ------------------------------------------------------------------------------------------ door pickup


def parse_pickup_response(
    body: Mapping[str, Any], order: PickupOrder, settings: SfSettings, booked_at: datetime
) -> PickupBooking:
    """A door pickup's answer -> ``PickupBooking``. The answer is read like the create order's (§2.5:
    ``orderId``, ``waybillNoInfoList``) [U for the reverse-order service]; the waybill number, when SF
    issued one, is what the return is tracked by."""
    msg_data = unwrap(body)
    numbers = [n for n in msg_data.get("waybillNoInfoList") or [] if isinstance(n, dict) and n.get("waybillNo")]
    master = next((n for n in numbers if str(n.get("waybillType", "1")) == "1"), numbers[0] if numbers else None)
    return PickupBooking(
        provider=Provider.SF,
        carrier=Carrier.SF,
        pickup_order_id=field(msg_data, "orderId") or order.return_id,
        booking_id=field(msg_data, "orderId") or None,
        tracking_number=str(master["waybillNo"]) if master else None,
        window=order.window,
        booked_at=booked_at,
    )


def parse_pickup_cancel_response(body: Mapping[str, Any], settings: SfSettings) -> None:
    """A pickup cancel's answer. Idempotent: already cancelled (8037) is done; collected already (8252
    订单已揽收，不可取消) stays a ``CarrierRejected`` with its code."""
    parse_cancel_response(body, settings)
