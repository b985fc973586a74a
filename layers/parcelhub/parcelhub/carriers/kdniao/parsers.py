"""Kdniao parsers: PURE functions from Kdniao answers and pushes to our models (REFERENCE §1).

* ``check_result`` turns any answer's ``Success``/``ResultCode``/``Reason`` into the typed error
  (``codes.classify_result``); the ``parse_*_response`` functions run it first;
* ``parse_create_response`` (1007 -> ``Waybill``), ``parse_cancel_response`` (1147),
  ``parse_subscribe_response`` (8008), ``parse_query_response`` (8001/1002 -> ``ParsedPush``); no
  ``parse_fetch_response`` (there is no fetch call, see ``builders``);
* pushes (§1.6): ``verify_push`` (DataSign), ``parse_push`` (101/102 full snapshots, 107 COD) into
  canonical ``TrackingEvent``s, and ``push_reply`` (the merchant reply).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from parcelhub.carriers.base import (
    CarrierDuplicateOrder,
    CarrierUnavailable,
    CodeMapping,
    HttpReply,
    HttpRequest,
    ParsedPush,
    PushRejected,
    PushUnreadable,
    TrackingQuery,
    WaybillOrder,
)
from parcelhub.carriers.codes import CodeTable
from parcelhub.carriers.kdniao.codes import PROVIDER, TRACKING_CODES, UNCLASSIFIED_SCAN, classify_result
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import verify_data_sign
from parcelhub.carriers.wire import compact_json, decode_form, field, field_text
from parcelhub.domain.models import (
    CHINA_TZ,
    Carrier,
    EventSource,
    Provider,
    TrackingEvent,
    Waybill,
    parse_china_time,
)

REPLY_CONTENT_TYPE = "application/json;charset=utf-8"

# ------------------------------------------------------------------------------------------ answers


def _success(body: Mapping[str, Any]) -> bool:
    value = field(body, "Success")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def check_result(body: Mapping[str, Any], settings: KdniaoSettings) -> None:
    """Raise the typed error a Kdniao business answer means; return when it is a success."""
    code = field_text(body, "ResultCode").strip() or None
    reason = field_text(body, "Reason").strip() or "no reason given"
    error = classify_result(code, reason, settings, success=_success(body))
    if error is not None:
        raise error


def parse_create_response(body: Mapping[str, Any], order: WaybillOrder, settings: KdniaoSettings) -> Waybill:
    """A checked 1007 answer -> ``Waybill`` with the label (PrintTemplate) and the routing fields."""
    check_result(body, settings)
    found = field(body, "Order")
    if not isinstance(found, Mapping) or not field_text(found, "LogisticCode").strip():
        code = field_text(body, "ResultCode").strip() or None
        if code in settings.duplicate_result_codes:
            raise CarrierDuplicateOrder(PROVIDER, field_text(body, "Reason").strip() or "duplicate order", code)
        raise CarrierUnavailable(PROVIDER, "e-waybill answer without Order.LogisticCode", "BAD_RESPONSE")
    shipper = field_text(found, "ShipperCode").strip() or order.carrier.value
    try:
        carrier = Carrier(shipper)
    except ValueError:
        carrier = order.carrier
    destination = field_text(found, "DestinatioCode").strip() or field_text(found, "DestinationCode").strip()
    return Waybill(
        provider=Provider.KDNIAO,
        carrier=carrier,
        tracking_number=field_text(found, "LogisticCode").strip(),
        provider_order_id=field_text(found, "OrderCode").strip() or order.shipment_id,
        sort_code=field_text(found, "MarkDestination").strip() or None,
        origin_code=field_text(found, "OriginCode").strip() or None,
        destination_code=destination or None,
        package_code=field_text(found, "PackageCode").strip() or None,
        label=field_text(body, "PrintTemplate").strip() or None,
    )


def parse_cancel_response(body: Mapping[str, Any], settings: KdniaoSettings) -> None:
    """A 1147 answer: success returns, anything else raises the typed error."""
    check_result(body, settings)


def parse_subscribe_response(body: Mapping[str, Any], settings: KdniaoSettings) -> None:
    """An 8008 answer (no ResultCode on success): success returns, anything else raises."""
    check_result(body, settings)


def parse_query_response(body: Mapping[str, Any], query: TrackingQuery, settings: KdniaoSettings) -> ParsedPush:
    """An 8001/1002 answer (one ``Data[]`` element without PushTime/Count) -> poll events, parsed like
    a push (unknown codes in ``unmapped_codes``)."""
    check_result(body, settings)
    try:
        events, number, unmapped = element_events(body, EventSource.POLL)
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable query answer: {exc}", "BAD_RESPONSE") from exc
    return ParsedPush(
        events=events,
        tracking_numbers=[number] if number is not None else [],
        unmapped_codes=list(dict.fromkeys(unmapped)),
    )


# ------------------------------------------------------------------------------------ traces -> events


def element_events(
    element: Mapping[str, Any],
    source: EventSource,
    table: CodeTable = TRACKING_CODES,
) -> tuple[list[TrackingEvent], tuple[Carrier, str] | None, list[str]]:
    """One ``Data[]`` element (or an 8001/1002 answer) -> ``(events, (carrier, number), unmapped)``.

    Each trace's ``Action`` decides its status. A trace without ``Action`` (standard edition) is
    described by the element's ``StateEx``/``State`` only if it is the latest one; earlier ones are
    plain scans. ``raw_code`` is the trace's own ``Action`` (empty when it has none), so the content
    hash of a scan is the same in every full snapshot that repeats it."""
    shipper = field_text(element, "ShipperCode").strip()
    number = field_text(element, "LogisticCode").strip()
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
        accept_time = field_text(trace, "AcceptTime").strip()
        if not accept_time:
            continue
        traces.append((parse_china_time(accept_time), index, trace))
    traces.sort(key=lambda item: (item[0], item[1]))
    state_code = field_text(element, "StateEx").strip() or field_text(element, "State").strip()
    element_location = field_text(element, "Location").strip() or None
    events: list[TrackingEvent] = []
    for position, (occurred_at, _, trace) in enumerate(traces):
        action = field_text(trace, "Action").strip()
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
        location = field_text(trace, "Location").strip() or (element_location if latest else None) or None
        events.append(
            TrackingEvent(
                carrier=carrier,
                provider=Provider.KDNIAO,
                tracking_number=number,
                occurred_at=occurred_at,
                status=mapping.status,
                sub_status=mapping.sub_status,
                raw_code=action,
                raw_text=field_text(trace, "AcceptStation").strip(),
                location=location,
                source=source,
            )
        )
    return events, (carrier, number), unmapped


# ------------------------------------------------------------------------------------------ pushes (§1.6)


def _verify_form(form: Mapping[str, str], settings: KdniaoSettings) -> None:
    request_data = form.get("RequestData")
    if request_data is None:
        raise PushUnreadable(PROVIDER, "no RequestData field")
    received = form.get("DataSign", "")
    if not received:
        raise PushRejected(PROVIDER, "no DataSign")
    if not verify_data_sign(request_data, received, settings.key()):
        raise PushRejected(PROVIDER, "DataSign mismatch")


def verify_push(request: HttpRequest, settings: KdniaoSettings) -> None:
    """Authenticate a push (DataSign over RequestData). Raises ``PushRejected``/``PushUnreadable``."""
    _verify_form(decode_form(PROVIDER, request.body), settings)


def parse_push(request: HttpRequest, settings: KdniaoSettings, received_at: datetime) -> ParsedPush:
    """Verify, then parse a 101/102 snapshot push (several waybills) or acknowledge a 107 COD push.

    ``received_at`` is not needed: every Kdniao trace carries its own time."""
    form = decode_form(PROVIDER, request.body)
    _verify_form(form, settings)
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
            carrier = Carrier(field_text(element, "ShipperCode").strip())
        except ValueError:
            continue
        number = field_text(element, "LogisticCode").strip()
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
        body=compact_json(body),
        content_type=REPLY_CONTENT_TYPE,
    )
