"""SF Fengqiao parsers: PURE functions from SF answers and route pushes to our models (REFERENCE §2).

* ``unwrap`` opens any answer (gateway code, then the JSON-in-a-string business result) and raises the
  typed error ``codes.classify_result`` names; the ``parse_*_response`` functions start with it;
* ``parse_create_response`` / ``parse_fetch_response`` (-> ``Waybill``), ``parse_cancel_response``
  (idempotent: 已消单 is done), ``parse_query_response`` (routes -> ``ParsedPush``); no
  ``parse_subscribe_response`` (there is no subscribe call, see ``builders``);
* pushes (§2.6): ``verify_push`` (the URL token), ``parse_push`` (JSON, or the form variant with
  URL-encoded XML) and ``push_reply`` (the ACK SF expects).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from parcelhub.carriers.base import (
    CarrierRejected,
    CarrierUnavailable,
    HttpReply,
    HttpRequest,
    ParsedPush,
    PushRejected,
    PushUnreadable,
    TrackingQuery,
    WaybillOrder,
)
from parcelhub.carriers.sf.codes import BUSINESS_OK, PROVIDER, TRACKING_CODES, already_cancelled, classify_result
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.carriers.sf.signing import push_token_matches
from parcelhub.carriers.wire import compact_json, decode_form, field, field_text
from parcelhub.domain.models import Carrier, EventSource, Provider, TrackingEvent, Waybill, parse_china_time

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


def route_event(tracking_number: str, route: Mapping[str, Any], source: EventSource) -> tuple[TrackingEvent, bool]:
    """One route node -> a canonical event, and whether its opCode is known. Field names' case varies
    between push and query (``mailno`` / ``mailNo``): they are matched ignoring case."""
    op_code = field_text(route, "opCode").strip()
    mapping, known = TRACKING_CODES.lookup(op_code)
    location = field_text(route, "acceptAddress").strip()
    event = TrackingEvent(
        carrier=Carrier.SF,
        provider=Provider.SF,
        tracking_number=tracking_number,
        occurred_at=parse_china_time(field_text(route, "acceptTime")),
        status=mapping.status,
        sub_status=mapping.sub_status,
        raw_code=op_code,
        raw_text=field_text(route, "remark").strip(),
        location=location or None,
        source=source,
    )
    return event, known


def _events(nodes: Iterable[tuple[str, Mapping[str, Any]]], source: EventSource) -> ParsedPush:
    events: list[TrackingEvent] = []
    numbers: dict[str, None] = {}
    unmapped: dict[str, None] = {}
    for tracking_number, route in nodes:
        numbers[tracking_number] = None
        event, known = route_event(tracking_number, route, source)
        events.append(event)
        if not known:
            unmapped[event.raw_code] = None
    return ParsedPush(
        events=events,
        tracking_numbers=[(Carrier.SF, n) for n in numbers],
        unmapped_codes=list(unmapped),
    )


def events_from_routes(msg_data: Mapping[str, Any]) -> ParsedPush:
    """EXP_RECE_SEARCH_ROUTES ``msgData.routeResps[{mailNo, routes[...]}]`` -> polled events."""
    nodes: list[tuple[str, Mapping[str, Any]]] = []
    for resp in msg_data.get("routeResps") or []:
        if not isinstance(resp, dict):
            continue
        mail_no = field_text(resp, "mailNo")
        nodes.extend((mail_no, r) for r in resp.get("routes") or [] if isinstance(r, dict))
    try:
        return _events(nodes, EventSource.POLL)
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable route: {exc}", "BAD_RESPONSE") from exc


# ------------------------------------------------------------------------------------------ pushes


def verify_push(request: HttpRequest, settings: SfSettings) -> None:
    """Constant-time check of the URL token (SF does not sign pushes). No I/O."""
    token = request.path_params.get("token") or ""
    if not push_token_matches(token, settings.push_token.get_secret_value()):
        raise PushRejected(PROVIDER, "bad or missing URL token")


def _push_routes_json(body: bytes) -> list[Mapping[str, Any]]:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PushUnreadable(PROVIDER, "body is not JSON") from exc
    routes = document.get("Body", {}).get("WaybillRoute") if isinstance(document, dict) else None
    if isinstance(routes, dict):
        routes = [routes]
    if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
        raise PushUnreadable(PROVIDER, "no Body.WaybillRoute list")
    return routes


def _push_routes_xml(body: bytes) -> list[Mapping[str, Any]]:
    content = decode_form(PROVIDER, body, "form body is not UTF-8").get("content", "")
    if not content.strip():
        raise PushUnreadable(PROVIDER, "form push without content")
    if "<!DOCTYPE" in content.upper() or "<!ENTITY" in content.upper():
        raise PushUnreadable(PROVIDER, "DTDs are not accepted")
    try:
        # DTDs are refused above; expat (>= 2.4) also caps entity amplification.
        root = ET.fromstring(content)  # noqa: S314
    except ET.ParseError as exc:
        raise PushUnreadable(PROVIDER, "content is not XML") from exc
    return [dict(node.attrib) for node in root.iter("WaybillRoute")]


def parse_push(request: HttpRequest, settings: SfSettings, received_at: datetime) -> ParsedPush:
    """Verify, then parse a route push (§2.6) into canonical events. JSON (``{"Body":{"WaybillRoute":
    [...]}}``) or the form variant (``content=`` URL-encoded XML), told apart by content type, then by
    the first byte. ``received_at`` is not needed: every route carries its own time."""
    verify_push(request, settings)
    body, content_type = request.body, request.header("Content-Type")
    kind = (content_type or "").lower()
    stripped = body.lstrip()
    if "json" in kind or (not kind and stripped.startswith(b"{")):
        routes = _push_routes_json(body)
    elif "form" in kind or stripped.startswith(b"content="):
        routes = _push_routes_xml(body)
    elif stripped.startswith(b"{"):
        routes = _push_routes_json(body)
    else:
        raise PushUnreadable(PROVIDER, f"unsupported push content type {content_type!r}")
    nodes: list[tuple[str, Mapping[str, Any]]] = []
    for route in routes:
        mail_no = field_text(route, "mailno").strip()
        if not mail_no:
            raise PushUnreadable(PROVIDER, "WaybillRoute without mailno")
        nodes.append((mail_no, route))
    try:
        return _events(nodes, EventSource.PUSH)
    except ValueError as exc:
        raise PushUnreadable(PROVIDER, f"unreadable route: {exc}") from exc


def push_reply(ok: bool, reason: str, settings: SfSettings, now: datetime) -> HttpReply:
    """The reply SF expects (``settings.push_format``): JSON ``return_code`` 0000/1000 [V], or the XML
    ``OK``/``ERR`` head [U].

    Always HTTP 200: SF reads the body; a failure body makes SF push the transaction again."""
    if settings.push_format == "xml":
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
