"""Kdniao mapper: PURE functions between our models and Kdniao payloads (REFERENCE §1). No I/O.

* the envelope (§1.1) and the DataSign (§1.2): ``Base64(lower-hex(MD5(RequestData + AppKey)))``;
* RequestData builders for 1007 (e-waybill), 1147 (cancel), 8008 (subscribe), 8001 (query);
* response classification into the typed errors, and the 1007 response into a ``Waybill``;
* push parsing (101/102 full snapshots, 107 COD) into canonical ``TrackingEvent``s, and the reply.

JSON is built compact (no spaces) with ``ensure_ascii=False`` like the official demos, and the form
values are handed to the HTTP layer *raw*: it URL-encodes each value exactly once (§0).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierRejected,
    CarrierUnavailable,
    CodeMapping,
    HttpReply,
    ParsedPush,
    PushRejected,
    PushUnreadable,
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.carriers.codes import CodeTable
from parcelhub.carriers.kdniao.codes import TABLE, UNCLASSIFIED_SCAN
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.domain.models import (
    CHINA_TZ,
    Carrier,
    EventSource,
    Party,
    Provider,
    TrackingEvent,
    Waybill,
    parse_china_time,
)

PROVIDER = Provider.KDNIAO.value
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"
REPLY_CONTENT_TYPE = "application/json;charset=utf-8"

# ------------------------------------------------------------------------------------ signature (§1.2)


def data_sign(request_data: str, app_key: str) -> str:
    """``Base64(lower_hex(MD5_utf8(RequestData + AppKey)))``: 44 chars ending ``=``.

    Not the raw-digest variant (24 chars ending ``==``) that SF and Cainiao use."""
    hex_digest = hashlib.md5((request_data + app_key).encode("utf-8")).hexdigest()
    return base64.b64encode(hex_digest.encode("ascii")).decode("ascii")


def verify_data_sign(request_data: str, received: str, app_key: str) -> bool:
    """Compare a form-decoded DataSign with the expected one, in constant time.

    Tolerates the two transport slips REFERENCE §1.2 hints at (a value sent un-encoded, whose ``+``
    became a space, or one encoded twice); it never accepts another digest form."""
    expected = data_sign(request_data, app_key).encode("ascii")
    candidates = {received, received.replace(" ", "+"), urllib.parse.unquote(received)}
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return ok


# ------------------------------------------------------------------------------------ envelope (§1.1)


def to_json(payload: Mapping[str, Any]) -> str:
    """The RequestData text: compact, UTF-8 kept as is (what is signed is what is sent)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def envelope(request_data: str, request_type: str, settings: KdniaoSettings) -> dict[str, str]:
    """The form fields of a call, values raw (the HTTP layer encodes each exactly once)."""
    return {
        "RequestData": request_data,
        "EBusinessID": settings.ebusiness_id,
        "RequestType": request_type,
        "DataSign": data_sign(request_data, settings.key()),
        "DataType": settings.data_type,
    }


def encode_form(form: Mapping[str, str]) -> str:
    """The on-wire body: ``key=UrlEncode(value)&...`` (what the official demos build by hand)."""
    return urllib.parse.urlencode(list(form.items()), encoding="utf-8")


# ------------------------------------------------------------------------------- request builders (§1.5)


def _party(party: Party) -> dict[str, Any]:
    phone = "".join(ch for ch in party.phone if ch.isdigit())
    out: dict[str, Any] = {}
    if party.company:
        out["Company"] = party.company
    out["Name"] = party.name
    if len(phone) == 11 and phone.startswith("1"):
        out["Mobile"] = phone
    else:
        out["Tel"] = party.phone
    if party.postcode:
        out["PostCode"] = party.postcode
    out["ProvinceName"] = party.province
    out["CityName"] = party.city
    out["ExpAreaName"] = party.district
    out["Address"] = party.address
    return out


def _account_fields(carrier: Carrier, settings: KdniaoSettings, *, for_cancel: bool = False) -> dict[str, str]:
    account = settings.accounts.get(carrier)
    if account is None:
        return {}
    out: dict[str, str] = {}
    if account.customer_name:
        out["CustomerName"] = account.customer_name
    if account.customer_pwd is not None:
        out["CustomerPwd"] = account.customer_pwd.get_secret_value()
    if not for_cancel:
        if account.month_code:
            out["MonthCode"] = account.month_code
        if account.send_site:
            out["SendSite"] = account.send_site
    return out


def build_create_request(order: WaybillOrder, settings: KdniaoSettings) -> str:
    """1007 RequestData. ``OrderCode`` is our shipment id, so a retried create is recognisable."""
    request = order.request
    payload: dict[str, Any] = {"OrderCode": order.shipment_id, "ShipperCode": order.carrier.value}
    payload |= _account_fields(order.carrier, settings)
    payload |= {
        "PayType": settings.pay_type,
        "ExpType": settings.exp_type,
        "Sender": _party(order.sender),
        "Receiver": _party(order.receiver),
        "Commodity": [
            {"GoodsName": item.name, "Goodsquantity": item.quantity}
            | ({"GoodsPrice": float(item.unit_price.amount)} if item.unit_price else {})
            for item in request.items
        ],
        "Weight": request.total_weight_kg,
        "Quantity": len(request.parcels),
    }
    volumes = [p.dimensions for p in request.parcels if p.dimensions is not None]
    if volumes:
        cubic_m = sum(d.length_cm * d.width_cm * d.height_cm for d in volumes) / 1_000_000
        payload["Volume"] = round(cubic_m, 4)
    payload["Remark"] = request.order_id
    payload["IsReturnPrintTemplate"] = 1 if settings.return_print_template else 0
    return to_json(payload)


def build_cancel_request(waybill: Waybill, settings: KdniaoSettings) -> str:
    """1147 RequestData: ``ShipperCode``, ``OrderCode``, ``ExpNo`` (+ account fields) [C]."""
    payload: dict[str, Any] = {
        "ShipperCode": waybill.carrier.value,
        "OrderCode": waybill.provider_order_id or "",
        "ExpNo": waybill.tracking_number,
    }
    payload |= _account_fields(waybill.carrier, settings, for_cancel=True)
    return to_json(payload)


def build_subscribe_request(subscription: TrackingSubscription) -> str:
    """8008 RequestData. ``Callback`` (our order/shipment id) is echoed back in pushes as ``CallBack``.

    The push URL itself is configured in the Kdniao console, not per request."""
    payload: dict[str, Any] = {
        "ShipperCode": subscription.carrier.value,
        "LogisticCode": subscription.tracking_number,
    }
    if subscription.order_id:
        payload["OrderCode"] = subscription.order_id
    if subscription.carrier is Carrier.SF and subscription.phone_last4:
        payload["CustomerName"] = subscription.phone_last4
    if subscription.order_id:
        payload["Callback"] = subscription.order_id
    return to_json(payload)


def build_query_request(carrier: Carrier, tracking_number: str, phone_last4: str | None = None) -> str:
    """8001 / 1002 RequestData (REFERENCE §1.5, the golden-vector shape). ``CustomerName`` holds the
    last 4 phone digits for SF, empty otherwise."""
    customer = phone_last4 if carrier is Carrier.SF and phone_last4 else ""
    payload = {"OrderCode": "", "ShipperCode": carrier.value, "LogisticCode": tracking_number, "CustomerName": customer}
    return to_json(payload)


# --------------------------------------------------------------------------------- response handling


def field(obj: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Case-insensitive field access (``Location``/``location``, ``CallBack``/``Callback``)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return default


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _success(body: Mapping[str, Any]) -> bool:
    value = field(body, "Success")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def check_result(body: Mapping[str, Any], settings: KdniaoSettings) -> None:
    """Raise the typed error a Kdniao business answer means; return when it is a success.

    ``Success`` true + ResultCode 100 (or none: subscribe and query answers carry none) is success.
    A duplicate order code with ``Success`` true is success too (the provider returns the order)."""
    code = _text(field(body, "ResultCode")) or None
    reason = _text(field(body, "Reason")) or "no reason given"
    if _success(body) and (code is None or code in settings.ok_result_codes or code in settings.duplicate_result_codes):
        return
    if code in settings.auth_result_codes or any(marker in reason for marker in settings.auth_reason_markers):
        raise CarrierAuthError(PROVIDER, reason, code)
    if code in settings.unavailable_result_codes:
        raise CarrierUnavailable(PROVIDER, reason, code)
    if code in settings.duplicate_result_codes:
        raise CarrierDuplicateOrder(PROVIDER, reason, code)
    raise CarrierRejected(PROVIDER, reason, code)


def parse_create_response(body: Mapping[str, Any], order: WaybillOrder, settings: KdniaoSettings) -> Waybill:
    """A checked 1007 answer -> ``Waybill`` with the label (PrintTemplate) and the routing fields."""
    check_result(body, settings)
    found = field(body, "Order")
    if not isinstance(found, Mapping) or not _text(field(found, "LogisticCode")):
        code = _text(field(body, "ResultCode")) or None
        if code in settings.duplicate_result_codes:
            raise CarrierDuplicateOrder(PROVIDER, _text(field(body, "Reason")) or "duplicate order", code)
        raise CarrierUnavailable(PROVIDER, "e-waybill answer without Order.LogisticCode", "BAD_RESPONSE")
    shipper = _text(field(found, "ShipperCode")) or order.carrier.value
    try:
        carrier = Carrier(shipper)
    except ValueError:
        carrier = order.carrier
    destination = _text(field(found, "DestinatioCode")) or _text(field(found, "DestinationCode"))
    return Waybill(
        provider=Provider.KDNIAO,
        carrier=carrier,
        tracking_number=_text(field(found, "LogisticCode")),
        provider_order_id=_text(field(found, "OrderCode")) or order.shipment_id,
        sort_code=_text(field(found, "MarkDestination")) or None,
        origin_code=_text(field(found, "OriginCode")) or None,
        destination_code=destination or None,
        package_code=_text(field(found, "PackageCode")) or None,
        label=_text(field(body, "PrintTemplate")) or None,
    )


# ------------------------------------------------------------------------------------ traces -> events


def element_events(
    element: Mapping[str, Any],
    source: EventSource,
    table: CodeTable = TABLE,
) -> tuple[list[TrackingEvent], tuple[Carrier, str] | None, list[str]]:
    """One ``Data[]`` element (or an 8001/1002 answer) -> ``(events, (carrier, number), unmapped)``.

    Each trace's ``Action`` decides its status. A trace without ``Action`` (standard edition) is
    described by the element's ``StateEx``/``State`` only if it is the latest one; earlier ones are
    plain scans. ``raw_code`` is the trace's own ``Action`` (empty when it has none), so the content
    hash of a scan is the same in every full snapshot that repeats it."""
    shipper = _text(field(element, "ShipperCode"))
    number = _text(field(element, "LogisticCode"))
    unmapped: list[str] = []
    try:
        carrier = Carrier(shipper)
    except ValueError:
        return [], None, [f"ShipperCode:{shipper}"] if shipper else []
    if not number:
        return [], None, []
    raw_traces = field(element, "Traces") or []
    if not isinstance(raw_traces, list):
        raise ValueError("Traces is not a list")
    traces: list[tuple[datetime, int, Mapping[str, Any]]] = []
    for index, trace in enumerate(raw_traces):
        if not isinstance(trace, Mapping):
            raise ValueError("a trace is not an object")
        accept_time = _text(field(trace, "AcceptTime"))
        if not accept_time:
            continue
        traces.append((parse_china_time(accept_time), index, trace))
    traces.sort(key=lambda item: (item[0], item[1]))
    state_code = _text(field(element, "StateEx")) or _text(field(element, "State"))
    element_location = _text(field(element, "Location")) or None
    events: list[TrackingEvent] = []
    for position, (occurred_at, _, trace) in enumerate(traces):
        action = _text(field(trace, "Action"))
        latest = position == len(traces) - 1
        mapping: CodeMapping
        if action:
            mapping, known = table.lookup(action)
            if not known:
                unmapped.append(action)
        elif latest and state_code:
            mapping, known = table.lookup(state_code)
            if not known:
                unmapped.append(state_code)
        else:
            mapping = UNCLASSIFIED_SCAN
        location = _text(field(trace, "Location")) or (element_location if latest else None) or None
        events.append(
            TrackingEvent(
                carrier=carrier,
                provider=Provider.KDNIAO,
                tracking_number=number,
                occurred_at=occurred_at,
                status=mapping.status,
                sub_status=mapping.sub_status,
                raw_code=action,
                raw_text=_text(field(trace, "AcceptStation")),
                location=location,
                source=source,
            )
        )
    return events, (carrier, number), unmapped


def parse_query_response(body: Mapping[str, Any], settings: KdniaoSettings) -> list[TrackingEvent]:
    """An 8001/1002 answer (one ``Data[]`` element without PushTime/Count) -> poll events."""
    check_result(body, settings)
    try:
        events, _, _ = element_events(body, EventSource.POLL)
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable query answer: {exc}", "BAD_RESPONSE") from exc
    return events


# ------------------------------------------------------------------------------------------ pushes (§1.6)


def decode_form(body: bytes) -> dict[str, str]:
    """The push form, each value decoded exactly once."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PushUnreadable(PROVIDER, "body is not UTF-8") from exc
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def verify_push_form(form: Mapping[str, str], settings: KdniaoSettings) -> None:
    """Authenticate a decoded push form. Raises ``PushRejected``/``PushUnreadable``."""
    request_data = form.get("RequestData")
    if request_data is None:
        raise PushUnreadable(PROVIDER, "no RequestData field")
    received = form.get("DataSign", "")
    if not received:
        raise PushRejected(PROVIDER, "no DataSign")
    if not verify_data_sign(request_data, received, settings.key()):
        raise PushRejected(PROVIDER, "DataSign mismatch")


def parse_push_form(form: Mapping[str, str], settings: KdniaoSettings) -> ParsedPush:
    """Verify, then parse a 101/102 snapshot push (several waybills) or acknowledge a 107 COD push."""
    verify_push_form(form, settings)
    request_type = form.get("RequestType", "").strip()
    try:
        data = json.loads(form["RequestData"])
    except ValueError as exc:
        raise PushUnreadable(PROVIDER, "RequestData is not JSON") from exc
    if not isinstance(data, Mapping):
        raise PushUnreadable(PROVIDER, "RequestData is not a JSON object")
    elements = field(data, "Data") or []
    if not isinstance(elements, list) or not all(isinstance(e, Mapping) for e in elements):
        raise PushUnreadable(PROVIDER, "Data is not a list of objects")
    if request_type in settings.payment_push_types:
        numbers = _numbers(elements)
        return ParsedPush(events=(), tracking_numbers=tuple(numbers))
    if request_type not in settings.tracking_push_types:
        raise PushUnreadable(PROVIDER, f"unsupported RequestType {request_type!r}")
    events: list[TrackingEvent] = []
    numbers_seen: list[tuple[Carrier, str]] = []
    unmapped: list[str] = []
    for element in elements:
        try:
            found, number, codes = element_events(element, EventSource.PUSH)
        except ValueError as exc:
            raise PushUnreadable(PROVIDER, f"unreadable trace: {exc}") from exc
        events.extend(found)
        if number is not None and number not in numbers_seen:
            numbers_seen.append(number)
        unmapped.extend(code for code in codes if code not in unmapped)
    return ParsedPush(events=tuple(events), tracking_numbers=tuple(numbers_seen), unmapped_codes=tuple(unmapped))


def _numbers(elements: Iterable[Mapping[str, Any]]) -> list[tuple[Carrier, str]]:
    out: list[tuple[Carrier, str]] = []
    for element in elements:
        try:
            carrier = Carrier(_text(field(element, "ShipperCode")))
        except ValueError:
            continue
        number = _text(field(element, "LogisticCode"))
        if number and (carrier, number) not in out:
            out.append((carrier, number))
    return out


def push_reply(ok: bool, reason: str, settings: KdniaoSettings, now: datetime) -> HttpReply:
    """The merchant reply of §1.6 [U]: ``{"EBusinessID","UpdateTime","Success","Reason"}``."""
    body = {
        "EBusinessID": settings.ebusiness_id,
        "UpdateTime": now.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S"),
        "Success": ok,
        "Reason": "" if ok else (reason or "rejected"),
    }
    return HttpReply(
        status_code=200 if ok else settings.push_reject_status,
        body=to_json(body),
        content_type=REPLY_CONTENT_TYPE,
    )
