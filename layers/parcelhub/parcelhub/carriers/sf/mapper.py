"""Pure SF Fengqiao mapping: our models <-> Fengqiao payloads, msgDigest, response unwrapping and
route-push parsing. No I/O: the clock and request id come in as arguments.

Wire facts are REFERENCE.md §2; the ones marked [U] there are settings (see ``settings``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    HttpReply,
    ParsedPush,
    PushUnreadable,
    WaybillOrder,
)
from parcelhub.carriers.sf.codes import (
    BUSINESS_OK,
    GATEWAY_OK,
    OP_CODES,
    PROVIDER,
    ErrorKind,
    business_rule,
    gateway_rule,
)
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import (
    Carrier,
    EventSource,
    Party,
    Provider,
    TrackingEvent,
    Waybill,
    parse_china_time,
)

#: SF's own waybill format: ``SF`` + 13 digits (REFERENCE examples, sandbox)
WAYBILL_PATTERN = re.compile(r"^SF[0-9]{13}$")

PUSH_SERVICE = "RoutePushService"
JSON_ACK_CONTENT_TYPE = "application/json;charset=UTF-8"
XML_ACK_CONTENT_TYPE = "application/xml;charset=UTF-8"

# ------------------------------------------------------------------------------------------ signature


def java_url_encode(text: str) -> str:
    """``java.net.URLEncoder.encode(text, "UTF-8")``: space -> ``+``, ``*`` kept, ``~`` -> ``%7E``.

    Python's ``quote_plus`` does the opposite on ``*`` and ``~`` (REFERENCE §0)."""
    return urllib.parse.quote_plus(text, safe="*").replace("~", "%7E")


def msg_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """``Base64(MD5_raw(URLEncoder.encode(msgData + timestamp + checkWord, "UTF-8")))`` (§2.2)."""
    encoded = java_url_encode(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(encoded.encode("utf-8")).digest()).decode("ascii")


def timestamp_for(settings: SfSettings, epoch_seconds: float) -> str:
    """The ``timestamp`` field: milliseconds by default (SF Java demos), seconds if configured."""
    return str(int(epoch_seconds * 1000)) if settings.timestamp_unit == "ms" else str(int(epoch_seconds))


def to_json(payload: Mapping[str, Any]) -> str:
    """The exact ``msgData`` string: compact, UTF-8 kept (the digest is computed over these bytes)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def envelope(settings: SfSettings, service_code: str, msg_data: str, timestamp: str, request_id: str) -> dict[str, str]:
    """The form fields of a call (§2.1), in the documented order; values raw (encoded once on the wire)."""
    return {
        "partnerID": settings.partner_id,
        "requestID": request_id,
        "serviceCode": service_code,
        "timestamp": timestamp,
        "msgDigest": msg_digest(msg_data, timestamp, settings.checkword.get_secret_value()),
        "msgData": msg_data,
    }


# ------------------------------------------------------------------------------------------ requests


def phone_last4(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[-4:]


def _contact(settings: SfSettings, contact_type: int, party: Party) -> dict[str, Any]:
    contact: dict[str, Any] = {"contactType": contact_type}
    if party.company:
        contact["company"] = party.company
    contact |= {
        "contact": party.name,
        "tel": party.phone,
        "mobile": party.phone,
        "country": settings.country,
        "province": party.province,
        "city": party.city,
        "county": party.district,
        "address": party.address,
    }
    if party.postcode:
        contact["postCode"] = party.postcode
    return contact


def create_order_payload(settings: SfSettings, order: WaybillOrder) -> dict[str, Any]:
    """EXP_RECE_CREATE_ORDER ``msgData`` (§2.5). ``orderId`` is our shipment id, so a retried create is
    caught by SF as 8016 (duplicate) and the workflow fetches the existing order."""
    request = order.request
    cargo: list[dict[str, Any]] = []
    for item in request.items:
        line: dict[str, Any] = {"name": item.name, "count": item.quantity, "unit": settings.cargo_unit}
        if item.unit_price is not None:
            line["amount"] = float(item.unit_price.amount)
            line["currency"] = item.unit_price.currency
        cargo.append(line)
    return {
        "language": settings.language,
        "orderId": order.shipment_id,
        "monthlyCard": settings.monthly_card,
        "expressTypeId": settings.express_type_ids[request.service],
        "payMethod": settings.pay_method,
        "parcelQty": len(request.parcels),
        "totalWeight": request.total_weight_kg,
        "isReturnRoutelabel": settings.is_return_routelabel,
        "isOneselfPickup": 0,
        "cargoDetails": cargo,
        "contactInfoList": [_contact(settings, 1, order.sender), _contact(settings, 2, order.receiver)],
    }


def cancel_order_payload(settings: SfSettings, waybill: Waybill) -> dict[str, Any]:
    """EXP_RECE_UPDATE_ORDER with ``dealType`` = cancel (§2.4)."""
    if not waybill.provider_order_id:
        raise CarrierRejected(PROVIDER, "cannot cancel: the waybill has no SF orderId", "NO_ORDER_ID")
    return {
        "language": settings.language,
        "orderId": waybill.provider_order_id,
        "dealType": settings.cancel_deal_type,
        "waybillNoInfoList": [{"waybillType": 1, "waybillNo": waybill.tracking_number}],
    }


def search_routes_payload(settings: SfSettings, tracking_number: str, phone_last4: str | None = None) -> dict[str, Any]:
    """EXP_RECE_SEARCH_ROUTES (§2.5); ``checkPhoneNo`` only when we know the phone."""
    payload: dict[str, Any] = {
        "language": settings.route_language,
        "trackingType": settings.route_tracking_type,
        "trackingNumber": [tracking_number],
        "methodType": settings.route_method_type,
    }
    if phone_last4:
        payload["checkPhoneNo"] = phone_last4
    return payload


def search_order_payload(settings: SfSettings, order_id: str) -> dict[str, Any]:
    """EXP_RECE_SEARCH_ORDER_RESP (§2.4, [C]): the order result by our orderId."""
    return {"language": settings.language, "orderId": order_id, "searchType": settings.order_search_type}


# ------------------------------------------------------------------------------------------ responses


def _error(kind: ErrorKind, message: str, code: str) -> CarrierError:
    if kind is ErrorKind.AUTH:
        return CarrierAuthError(PROVIDER, message, code)
    if kind is ErrorKind.UNAVAILABLE:
        return CarrierUnavailable(PROVIDER, message, code)
    if kind is ErrorKind.DUPLICATE:
        return CarrierDuplicateOrder(PROVIDER, message, code)
    return CarrierRejected(PROVIDER, message, code)


def unwrap(body: Mapping[str, Any]) -> dict[str, Any]:
    """The business ``msgData`` of a response, or the typed error.

    ``apiResultCode`` A1000 = the gateway accepted; ``apiResultData`` is JSON *inside a string*
    (decoded a second time); then ``success``/``errorCode`` (S0000 = ok)."""
    api_code = str(body.get("apiResultCode") or "")
    if api_code != GATEWAY_OK:
        rule = gateway_rule(api_code)
        raise _error(rule.kind, str(body.get("apiErrorMsg") or rule.meaning), api_code or "NO_RESULT_CODE")
    raw = body.get("apiResultData")
    try:
        result = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, "apiResultData is not JSON", "BAD_RESPONSE") from exc
    if not isinstance(result, dict):
        raise CarrierUnavailable(PROVIDER, "apiResultData missing", "BAD_RESPONSE")
    error_code = str(result.get("errorCode") or "")
    if result.get("success") is not True or (error_code and error_code != BUSINESS_OK):
        code = error_code or "UNKNOWN"
        rule = business_rule(code)
        raise _error(rule.kind, str(result.get("errorMsg") or rule.meaning), code)
    msg_data = result.get("msgData")
    return msg_data if isinstance(msg_data, dict) else {}


def _first(mapping: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = mapping.get(name)
        if value not in (None, ""):
            return value
    return None


def waybill_from_order(msg_data: Mapping[str, Any]) -> Waybill:
    """A Waybill from the ``msgData`` of EXP_RECE_CREATE_ORDER or EXP_RECE_SEARCH_ORDER_RESP.

    The master waybill (``waybillType`` 1) is the tracking number; the first route label's
    ``routeLabelData`` is kept whole as the label, its ``destRouteLabel`` is the sort code."""
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
        provider_order_id=_first(msg_data, "orderId", "orderid"),
        sort_code=_first(label_data, "destRouteLabel"),
        origin_code=_first(msg_data, "originCode", "origincode") or _first(label_data, "sourceTransferCode"),
        destination_code=_first(msg_data, "destCode", "destcode") or _first(label_data, "destCityCode"),
        package_code=_first(label_data, "codingMapping"),
        label=json.dumps(label_data, ensure_ascii=False, separators=(",", ":")) if label_data else None,
    )


def _field(route: Mapping[str, Any], name: str) -> str:
    """Field names' case varies between push and query (``mailno`` / ``mailNo``): match loosely."""
    if name in route:
        return str(route[name] if route[name] is not None else "")
    lowered = name.lower()
    for key, value in route.items():
        if key.lower() == lowered:
            return str(value if value is not None else "")
    return ""


def route_event(tracking_number: str, route: Mapping[str, Any], source: EventSource) -> tuple[TrackingEvent, bool]:
    """One route node -> a canonical event, and whether its opCode is known."""
    op_code = _field(route, "opCode").strip()
    mapping, known = OP_CODES.lookup(op_code)
    location = _field(route, "acceptAddress").strip()
    event = TrackingEvent(
        carrier=Carrier.SF,
        provider=Provider.SF,
        tracking_number=tracking_number,
        occurred_at=parse_china_time(_field(route, "acceptTime")),
        status=mapping.status,
        sub_status=mapping.sub_status,
        raw_code=op_code,
        raw_text=_field(route, "remark").strip(),
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
        mail_no = _field(resp, "mailNo")
        nodes.extend((mail_no, r) for r in resp.get("routes") or [] if isinstance(r, dict))
    try:
        return _events(nodes, EventSource.POLL)
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable route: {exc}", "BAD_RESPONSE") from exc


# ------------------------------------------------------------------------------------------ pushes


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
    try:
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise PushUnreadable(PROVIDER, "form body is not UTF-8") from exc
    content = form.get("content", "")
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


def parse_push_body(body: bytes, content_type: str | None) -> ParsedPush:
    """A route push (§2.6) -> canonical events. JSON (``{"Body":{"WaybillRoute":[...]}}``) or the form
    variant (``content=`` URL-encoded XML), told apart by content type, then by the first byte."""
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
        mail_no = _field(route, "mailno").strip()
        if not mail_no:
            raise PushUnreadable(PROVIDER, "WaybillRoute without mailno")
        nodes.append((mail_no, route))
    try:
        return _events(nodes, EventSource.PUSH)
    except ValueError as exc:
        raise PushUnreadable(PROVIDER, f"unreadable route: {exc}") from exc


def push_ack(push_format: str, ok: bool, reason: str = "") -> HttpReply:
    """The reply SF expects: JSON ``return_code`` 0000/1000 [V], or the XML ``OK``/``ERR`` head [U].

    Always HTTP 200: SF reads the body; a failure body makes SF push the transaction again."""
    if push_format == "xml":
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
    return HttpReply(status_code=200, body=to_json(payload), content_type=JSON_ACK_CONTENT_TYPE)
