"""Kdniao parsers: PURE functions from Kdniao answers and pushes to our models (REFERENCE §1).

* ``check_result`` turns any answer's ``Success``/``ResultCode``/``Reason`` into the typed error
  (``codes.classify_result``); the ``parse_*_response`` functions run it first;
* ``parse_create_response`` (1007 -> ``Waybill``), ``parse_cancel_response`` (1147),
  ``parse_subscribe_response`` (8008), ``parse_query_response`` (8001/1002 -> ``ParsedPush``),
  ``parse_recognise_response`` (2002 -> carriers, best first); no
  ``parse_fetch_response`` (there is no fetch call, see ``builders``);
* pushes (§1.6): ``verify_push`` (DataSign), ``parse_push`` (101/102 full snapshots, 107 COD) into
  canonical ``TrackingEvent``s, and ``push_reply`` (the merchant reply).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from parcelhub.carriers.base import (
    CarrierDuplicateOrder,
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
from parcelhub.carriers.codes import MISSING_CODE, CodeTable, Resolution, resolve
from parcelhub.carriers.kdniao.codes import PROVIDER, TRACKING_CODES, classify_result
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import verify_data_sign
from parcelhub.carriers.wire import compact_json, decode_form, field, field_text, lat_lng
from parcelhub.domain.models import (
    CHINA_TZ,
    Carrier,
    EventSource,
    PickupBooking,
    Provider,
    TrackingEvent,
    Waybill,
    parse_china_time,
)
from parcelhub.domain.status import Status

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


def _no_trace_yet(body: Mapping[str, Any]) -> bool:
    """The documented 1002 answer for a number with no scan yet: ``Success: false`` with the number, no
    ``ResultCode``, no traces and no reason (or 暂无轨迹) - an empty timeline, not a rejection."""
    reason = field_text(body, "Reason").strip()
    return (
        not _success(body)
        and bool(field_text(body, "LogisticCode").strip())
        and not field_text(body, "ResultCode").strip()
        and not field(body, "Traces")
        and (not reason or "暂无轨迹" in reason)
    )


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


def parse_balance_response(body: Mapping[str, Any], settings: KdniaoSettings) -> int:
    """A 1127 answer: the e-waybill numbers left (the first of ``balance_fields`` holding a whole number)."""
    check_result(body, settings)
    for name in settings.balance_fields:
        value = body.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            return int(value)
    wanted = ", ".join(settings.balance_fields)
    raise CarrierUnavailable(PROVIDER, f"balance answer without a whole number in {wanted}", "BAD_RESPONSE")


def parse_subscribe_response(body: Mapping[str, Any], settings: KdniaoSettings) -> None:
    """An 8008 answer (no ResultCode on success): success returns, anything else raises."""
    check_result(body, settings)


def parse_recognise_response(body: Mapping[str, Any], settings: KdniaoSettings) -> list[Carrier]:
    """A 2002 answer ``{"EBusinessID","Success","LogisticCode","Shippers":[{"ShipperCode","ShipperName"}]}``
    -> our carriers in Kdniao's order (codes we do not know are left out). ``Success: false`` without a
    ``ResultCode`` and without shippers is Kdniao not knowing the number: an empty list."""
    raw = field(body, settings.recognise_shippers_field)
    shippers = raw if isinstance(raw, list) else []
    if not shippers and not _success(body) and not field_text(body, "ResultCode").strip():
        return []
    check_result(body, settings)
    found: list[Carrier] = []
    for shipper in shippers:
        code = field_text(shipper, settings.recognise_code_field).strip() if isinstance(shipper, Mapping) else ""
        carrier = _carrier(code)
        if carrier is not None and carrier not in found:
            found.append(carrier)
    return found


def _carrier(code: str) -> Carrier | None:
    try:
        return Carrier(code)
    except ValueError:
        return None


def parse_query_response(
    body: Mapping[str, Any], query: TrackingQuery, settings: KdniaoSettings, received_at: datetime | None = None
) -> ParsedPush:
    """An 8001/1002 answer (one ``Data[]`` element without PushTime/Count) -> poll events, parsed like
    a push (unknown codes in ``unmapped_codes``). ``received_at`` stamps a waybill-level ``StateEx``
    that comes without any trace. A standard answer without traces says ``Success: false``: an empty
    timeline, not an error."""
    if _no_trace_yet(body):
        return ParsedPush(events=[], tracking_numbers=[], unmapped_codes=[])
    check_result(body, settings)
    try:
        read = element_events(body, EventSource.POLL, received_at)
    except ValueError as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable query answer: {exc}", "BAD_RESPONSE") from exc
    return ParsedPush(
        events=read.events,
        tracking_numbers=[read.number] if read.number is not None else [],
        unmapped_codes=list(dict.fromkeys(read.unmapped)),
        inferred_codes=list(dict.fromkeys(read.inferred)),
    )


# ------------------------------------------------------------------------------------ traces -> events


@dataclass(frozen=True, slots=True)
class ElementRead:
    """What one ``Data[]`` element (or an 8001/1002 answer) yields."""

    events: list[TrackingEvent]
    number: tuple[Carrier, str] | None
    unmapped: list[str]
    inferred: list[str]


def _optional_time(value: str) -> datetime | None:
    """A waybill-level time (``EstimatedDeliveryTime``): never fails a push when it is unreadable."""
    try:
        return parse_china_time(value) if value.strip() else None
    except ValueError:
        return None


def _coordinates(element: Mapping[str, Any]) -> tuple[float, float] | None:
    """The current city's ``LatAndLng`` (map editions: ``Coordinates[-1]``, ``"lat,lng"``)."""
    found = field(element, "Coordinates")
    if not isinstance(found, list) or not found or not isinstance(found[-1], Mapping):
        return None
    return lat_lng(field_text(found[-1], "LatAndLng"))


def _adds_to_trace(state_ex: str, action: str) -> bool:
    """Does the waybill-level ``StateEx`` say more than the latest trace's ``Action``? Not when it is
    the same code or the family the action refines (``2`` for ``202``): the more specific wins."""
    return bool(state_ex) and state_ex != action and not (len(state_ex) == 1 and action.startswith(state_ex))


def element_events(
    element: Mapping[str, Any],
    source: EventSource,
    at: datetime | None = None,
    table: CodeTable = TRACKING_CODES,
) -> ElementRead:
    """One ``Data[]`` element (or an 8001/1002 answer) -> events, ``(carrier, number)`` and codes.

    * A trace's ``Action`` decides its status (value-added edition). A trace without one (standard
      edition) is described by the element's ``StateEx``/``State`` if it is the latest, else by the
      keyword classifier over its text (inferred). ``raw_code`` is the trace's own ``Action`` (empty
      when it has none), so a scan hashes the same in every full snapshot that repeats it.
    * The waybill-level ``StateEx`` is a signal of its own: when it says more than the latest trace
      (signed by proxy while the latest scan is a pickup, a carrier timeout 401/402/403/412), it becomes
      an event one second after the latest trace, so the order-independent fold lets the more specific
      and later signal win and a later scan still supersede it. Without traces it is stamped ``at``.
    * The waybill-level facts (``EstimatedDeliveryTime``, ``State`` 3 as the signed flag, the current
      city's coordinates) ride on the newest event; ``CallBack`` (else ``OrderCode``) on every event."""
    shipper = field_text(element, "ShipperCode").strip()
    number = field_text(element, "LogisticCode").strip()
    try:
        carrier = Carrier(shipper)
    except ValueError:
        return ElementRead([], None, [f"ShipperCode:{shipper}"] if shipper else [], [])
    if not number:
        return ElementRead([], None, [], [])
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
    state = field_text(element, "State").strip()
    state_ex = field_text(element, "StateEx").strip()
    element_location = field_text(element, "Location").strip() or None
    order_ref = field_text(element, "CallBack").strip() or field_text(element, "OrderCode").strip() or None
    unmapped: list[str] = []
    inferred: list[str] = []

    def event(occurred_at: datetime, resolution: Resolution, raw_code: str, text: str, location: str | None) -> None:
        if resolution.unmapped:
            unmapped.append(raw_code or MISSING_CODE)
        elif resolution.unknown_code:
            inferred.append(resolution.unknown_code)
        events.append(
            TrackingEvent(
                carrier=carrier,
                provider=Provider.KDNIAO,
                tracking_number=number,
                occurred_at=occurred_at,
                status=resolution.mapping.status,
                sub_status=resolution.mapping.sub_status,
                raw_code=raw_code,
                raw_text=text,
                location=location,
                source=source,
                inferred=resolution.inferred,
                order_ref=order_ref,
            )
        )

    events: list[TrackingEvent] = []
    waybill_code = state_ex or state
    for position, (occurred_at, _, trace) in enumerate(traces):
        action = field_text(trace, "Action").strip()
        text = field_text(trace, "AcceptStation").strip()
        latest = position == len(traces) - 1
        code = action or (waybill_code if latest else "")
        location = field_text(trace, "Location").strip() or (element_location if latest else None) or None
        event(occurred_at, resolve(code, text, table), action, text, location)
    latest_action = field_text(traces[-1][2], "Action").strip() if traces else ""
    if state_ex and (latest_action or not traces) and _adds_to_trace(state_ex, latest_action):
        mapping, known = table.lookup(state_ex)
        moment = traces[-1][0] + timedelta(seconds=1) if traces else at
        if not known:
            unmapped.append(state_ex)
        elif moment is not None and mapping.status not in (Status.WAYBILL_CREATED, Status.PENDING):
            event(moment, Resolution(mapping), state_ex, "", element_location)
    if events:
        newest = max(range(len(events)), key=lambda i: (events[i].occurred_at, i))
        coordinates = _coordinates(element)
        events[newest] = events[newest].model_copy(
            update={
                "estimated_delivery_at": _optional_time(field_text(element, "EstimatedDeliveryTime")),
                "signed": (state == "3") if state else None,
                "latitude": coordinates[0] if coordinates else None,
                "longitude": coordinates[1] if coordinates else None,
            }
        )
    return ElementRead(events, (carrier, number), unmapped, inferred)


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

    Every trace carries its own time; ``PushTime`` (else ``received_at``) stamps a waybill-level
    ``StateEx`` that comes without any trace."""
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
    pushed_at = _optional_time(field_text(data, "PushTime")) or received_at
    events: list[TrackingEvent] = []
    numbers_seen: list[tuple[Carrier, str]] = []
    unmapped: list[str] = []
    inferred: list[str] = []
    for element in elements:
        try:
            read = element_events(element, EventSource.PUSH, pushed_at)
        except ValueError as exc:
            raise PushUnreadable(PROVIDER, f"unreadable trace: {exc}") from exc
        events.extend(read.events)
        if read.number is not None and read.number not in numbers_seen:
            numbers_seen.append(read.number)
        unmapped.extend(code for code in read.unmapped if code not in unmapped)
        inferred.extend(code for code in read.inferred if code not in inferred)
    return ParsedPush(
        events=tuple(events),
        tracking_numbers=tuple(numbers_seen),
        unmapped_codes=tuple(unmapped),
        inferred_codes=tuple(inferred),
    )


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


# ------------------------------------------------------------------------------------------ door pickup


def parse_pickup_response(
    body: Mapping[str, Any], order: PickupOrder, settings: KdniaoSettings, booked_at: datetime
) -> PickupBooking:
    """A checked 1001 (or 1007) answer -> ``PickupBooking``: ``Order.OrderCode``, Kdniao's own order
    number ``Order.KDNOrderCode`` [U] and the waybill ``Order.LogisticCode`` when the carrier issued one."""
    check_result(body, settings)
    found = field(body, "Order")
    found = found if isinstance(found, Mapping) else {}
    return PickupBooking(
        provider=Provider.KDNIAO,
        carrier=order.carrier,
        pickup_order_id=field_text(found, "OrderCode").strip() or order.return_id,
        booking_id=field_text(found, "KDNOrderCode").strip() or None,
        tracking_number=field_text(found, "LogisticCode").strip() or None,
        window=order.window,
        booked_at=booked_at,
    )


def parse_pickup_cancel_response(body: Mapping[str, Any], settings: KdniaoSettings) -> None:
    """A 1004 (or 1147) answer. Idempotent: a reason naming the pickup cancelled already is done."""
    try:
        check_result(body, settings)
    except CarrierRejected:
        reason = field_text(body, "Reason")
        if any(marker in reason for marker in settings.pickup_cancelled_markers):
            return
        raise
