"""Kuaidi100 parsers: PURE functions from Kuaidi100 replies and pushes to our models (REFERENCE §3).

* ``parse_subscribe_response`` (200 and 501 already-subscribed are success) and
  ``parse_query_response`` (``data[]`` -> ``ParsedPush``; nothing tracked yet is an empty timeline);
  their ``returnCode`` becomes the typed error in ``codes.classify_result``. No create / cancel / fetch
  parsers: Kuaidi100 issues no waybills here (see ``builders``);
* ``parse_autonumber_response`` (智能单号识别 -> carriers, best first);
* pushes (§3.3): ``verify_push`` (form ``param`` + ``sign = MD5(param + salt)``, hex compared
  case-insensitively), ``parse_push`` (``lastResult.data[]`` is a full snapshot, newest first) and
  ``push_reply`` (``{"result":true,"returnCode":"200","message":"成功"}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import Any

from parcelhub.carriers.base import (
    CarrierCorrection,
    CarrierUnavailable,
    HttpReply,
    HttpRequest,
    ParsedPush,
    PushRejected,
    PushUnreadable,
    TrackingQuery,
)
from parcelhub.carriers.codes import MISSING_CODE, Resolution, resolve
from parcelhub.carriers.kuaidi100.codes import (
    ABORT_CODE,
    PROVIDER,
    PUSH_ABORTED,
    STATE_NAMES,
    TRACKING_CODES,
    classify_result,
)
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.kuaidi100.signing import push_sign_matches
from parcelhub.carriers.wire import compact_json, decode_form, field_text, lat_lng
from parcelhub.domain.models import Carrier, EventSource, Provider, TrackingEvent, parse_china_time

REPLY_CONTENT_TYPE = "application/json;charset=UTF-8"

# ----------------------------------------------------------------------------------------- replies


def carrier_for_com(com: str | None, settings: Kuaidi100Settings) -> Carrier | None:
    """Our carrier of a Kuaidi100 ``com`` code (``settings.company_codes``), or ``None``."""
    wanted = (com or "").strip().lower()
    for carrier, code in settings.company_codes.items():
        if code == wanted:
            return carrier
    return None


def parse_subscribe_response(body: Mapping[str, Any], settings: Kuaidi100Settings) -> None:
    """Raise the typed error a subscribe reply means; return for 200 and 501 (already subscribed)."""
    code = str(body.get("returnCode") or "").strip()
    message = str(body.get("message") or "")
    if not code:
        if body.get("result") is True:
            return
        raise CarrierUnavailable(PROVIDER, f"unreadable subscribe reply: {message or body!r}"[:200], "BAD_RESPONSE")
    error = classify_result(code, message or f"returnCode {code}", operation="subscribe")
    if error is not None:
        raise error


def parse_autonumber_response(body: Any, settings: Kuaidi100Settings) -> list[Carrier]:
    """智能单号识别's answer, a JSON array ``[{"comCode":"yuantong","lengthPre":..,"noPre":..,"noCount":..}]``
    best first -> our carriers in that order (com codes outside ``company_codes`` are left out); an empty
    array is Kuaidi100 not knowing the number. An object instead of an array is a refusal: its
    ``returnCode`` is read like a subscription's (600/601 key problems) [U]."""
    if isinstance(body, Mapping):
        code = str(body.get("returnCode") or "").strip()
        message = str(body.get("message") or "") or f"returnCode {code}"
        error = classify_result(code, message, operation="subscribe") if code else None
        raise error or CarrierUnavailable(PROVIDER, f"unreadable autonumber answer: {message}"[:200], "BAD_RESPONSE")
    if not isinstance(body, list):
        raise CarrierUnavailable(PROVIDER, "autonumber answer is not a JSON array", "BAD_RESPONSE")
    found: list[Carrier] = []
    for entry in body:
        carrier = carrier_for_com(str(entry.get("comCode") or ""), settings) if isinstance(entry, Mapping) else None
        if carrier is not None and carrier not in found:
            found.append(carrier)
    return found


def parse_query_response(body: Mapping[str, Any], query: TrackingQuery, settings: Kuaidi100Settings) -> ParsedPush:
    """A real-time query reply -> poll events, parsed like a push (unknown codes in ``unmapped_codes``);
    raises the typed error for a failure. A reply carrying ``data[]`` is an answer whatever its
    ``result`` says (the map-track answer says ``"result": false, "returnCode": null`` with a timeline)."""
    data = body.get("data")
    if not isinstance(data, list) and (body.get("result") is False or "returnCode" in body):
        code = str(body.get("returnCode") or "").strip()
        error = classify_result(code, str(body.get("message") or f"returnCode {code}"), operation="query")
        if error is None:  # nothing tracked yet: an empty timeline
            return ParsedPush(events=[], unmapped_codes=[])
        raise error
    if not isinstance(data, list):
        raise CarrierUnavailable(PROVIDER, "query reply has no data[]", "BAD_RESPONSE")
    number = str(body.get("nu") or query.tracking_number)
    try:
        timeline = traces_to_events(query.carrier, number, data, body, EventSource.POLL)
    except (ValueError, TypeError) as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable query reply: {exc}", "BAD_RESPONSE") from exc
    return ParsedPush(
        events=timeline.events,
        tracking_numbers=[(query.carrier, number)],
        unmapped_codes=timeline.unmapped,
        inferred_codes=timeline.inferred,
    )


# ------------------------------------------------------------------------------------------ traces

_BRACKET_CITY = re.compile(r"^\s*[【\[]([^】\]]{1,20})[】\]]")


def _location(entry: Mapping[str, Any]) -> str | None:
    area = field_text(entry, "areaName").strip()
    if area:
        return area
    found = _BRACKET_CITY.match(field_text(entry, "context").strip())
    return found.group(1).strip() if found else None


def _trace_time(entry: Mapping[str, Any]) -> datetime:
    stamp = field_text(entry, "ftime").strip() or field_text(entry, "time").strip()
    if not stamp:
        raise ValueError("trace without time/ftime")
    return parse_china_time(stamp)


def _optional_time(value: str) -> datetime | None:
    """A waybill-level estimate (``arrivalTime``, to the hour): never fails a push when unreadable."""
    try:
        return parse_china_time(value) if value else None
    except ValueError:
        return None


def trace_code(entry: Mapping[str, Any], fallback_state: str = "") -> str:
    """The code that decides a trace's status: ``statusCode`` (advanced, resultv2=4), else the Chinese
    ``status`` name, else (newest trace only) ``lastResult.state``; else the raw name (unknown)."""
    code = field_text(entry, "statusCode").strip()
    if code:
        return code
    name = field_text(entry, "status").strip()
    if name in STATE_NAMES:
        return STATE_NAMES[name]
    return fallback_state.strip() or name


@dataclass(slots=True)
class Timeline:
    """``data[]`` as canonical events, and the codes they reported."""

    events: list[TrackingEvent] = dataclass_field(default_factory=list)
    unmapped: list[str] = dataclass_field(default_factory=list)
    inferred: list[str] = dataclass_field(default_factory=list)


def traces_to_events(
    carrier: Carrier,
    tracking_number: str,
    data: Sequence[Any],
    result: Mapping[str, Any],
    source: EventSource,
) -> Timeline:
    """Map ``data[]`` (any order; Kuaidi100 sends newest first) of a ``lastResult`` or a query answer
    (``result``) to events. A trace's code decides its status; a trace without any code is read by the
    keyword classifier (inferred); an unknown code nothing explains stays UNMAPPED. The waybill-level
    facts ride on the newest event: ``ischeck`` (signed) and ``arrivalTime`` (the estimate)."""
    entries = [entry for entry in data if isinstance(entry, Mapping)]
    if len(entries) != len(data):
        raise ValueError("data[] holds a non-object")
    times = [_trace_time(entry) for entry in entries]
    newest = max(times, default=None)
    state = field_text(result, "state").strip()
    timeline = Timeline()
    seen: set[str] = set()
    for entry, moment in zip(entries, times, strict=True):
        code = trace_code(entry, state if moment == newest else "")
        resolution = resolve(code, field_text(entry, "context").strip(), TRACKING_CODES)
        if resolution.unmapped and (code or MISSING_CODE) not in timeline.unmapped:
            timeline.unmapped.append(code or MISSING_CODE)
        elif resolution.unknown_code and resolution.unknown_code not in timeline.inferred:
            timeline.inferred.append(resolution.unknown_code)
        event = _event(carrier, tracking_number, moment, resolution, code=code, entry=entry, source=source)
        if event.content_hash not in seen:  # a snapshot can repeat a trace; one event per content
            seen.add(event.content_hash)
            timeline.events.append(event)
    if timeline.events:
        last = max(range(len(timeline.events)), key=lambda i: (timeline.events[i].occurred_at, -i))
        ischeck = field_text(result, "ischeck").strip()
        timeline.events[last] = timeline.events[last].model_copy(
            update={
                "signed": (ischeck == "1") if ischeck in ("0", "1") else None,
                "estimated_delivery_at": _optional_time(field_text(result, "arrivalTime").strip()),
            }
        )
    return timeline


def _event(
    carrier: Carrier,
    tracking_number: str,
    moment: datetime,
    resolution: Resolution,
    *,
    code: str,
    entry: Mapping[str, Any],
    source: EventSource,
) -> TrackingEvent:
    coordinates = lat_lng(field_text(entry, "areaCenter").strip(), lng_first=True)
    return TrackingEvent(
        carrier=carrier,
        provider=Provider.KUAIDI100,
        tracking_number=tracking_number,
        occurred_at=moment,
        status=resolution.mapping.status,
        sub_status=resolution.mapping.sub_status,
        raw_code=code,
        raw_text=field_text(entry, "context").strip(),
        location=_location(entry),
        source=source,
        inferred=resolution.inferred,
        latitude=coordinates[0] if coordinates else None,
        longitude=coordinates[1] if coordinates else None,
    )


# -------------------------------------------------------------------------------------------- push


def _verified_param(request: HttpRequest, settings: Kuaidi100Settings) -> str:
    """The ``param`` JSON string of an authentic push (form-encoded, each value decoded exactly once)."""
    fields = decode_form(PROVIDER, request.body)
    param = fields.get("param")
    if not param:
        raise PushUnreadable(PROVIDER, "no param field")
    sign = fields.get("sign")
    if not sign:
        raise PushRejected(PROVIDER, "no sign field")
    if settings.salt is None:
        raise PushRejected(PROVIDER, "no push salt configured")
    salt = settings.salt.get_secret_value()
    if not push_sign_matches(param, sign, salt, case_insensitive=settings.push_sign_case_insensitive):
        raise PushRejected(PROVIDER, "sign does not match MD5(param + salt)")
    return param


def verify_push(request: HttpRequest, settings: Kuaidi100Settings) -> None:
    """Authenticate a push. I/O-free, constant-time compare. Raises ``PushRejected``/``PushUnreadable``."""
    _verified_param(request, settings)


def parse_push(request: HttpRequest, settings: Kuaidi100Settings, received_at: datetime) -> ParsedPush:
    """Verify, then parse a push into canonical events.

    * the company is ``comNew`` when Kuaidi100 auto-corrected it (``autoCheck=1``), else
      ``lastResult.com``; both carriers are reported in ``tracking_numbers`` so the caller can find a
      claim made under the old one, and the correction in ``corrections`` (the events are keyed under
      the new carrier);
    * ``status=abort`` (Kuaidi100 stopped tracking) adds an EXCEPTION/CARRIER_TRACKING_ABORTED event,
      stamped one second after the newest trace (deterministic, so a re-push hashes the same) or at
      ``received_at`` when there is no trace at all;
    * ``shutdown`` (finished) and ``updateall`` (full re-push) need nothing special: the snapshot is the
      full timeline and the store dedupes on content hashes.
    """
    param = _verified_param(request, settings)
    try:
        push = json.loads(param)
    except ValueError:
        raise PushUnreadable(PROVIDER, "param is not JSON") from None
    if not isinstance(push, dict):
        raise PushUnreadable(PROVIDER, "param is not a JSON object")
    last = push.get("lastResult") or {}
    if not isinstance(last, dict):
        raise PushUnreadable(PROVIDER, "lastResult is not an object")
    number = str(last.get("nu") or "").strip()
    if not number:
        raise PushUnreadable(PROVIDER, "lastResult.nu missing")

    corrected = str(push.get("autoCheck") or "0") == "1" and bool(push.get("comNew"))
    com = str(push.get("comNew") if corrected else (last.get("com") or push.get("comOld") or ""))
    carrier = carrier_for_com(com, settings)
    old_carrier = carrier_for_com(str(push.get("comOld") or last.get("com") or ""), settings)
    if carrier is None:
        carrier = old_carrier
    if carrier is None:
        # kept, never refused: acknowledged, archived raw by the ingest, counted under the raw code
        return ParsedPush(events=[], tracking_numbers=[], unmapped_codes=[f"com:{com.strip().lower() or MISSING_CODE}"])
    numbers: list[tuple[Carrier, str]] = [(carrier, number)]
    corrections: list[CarrierCorrection] = []
    if corrected and old_carrier != carrier:
        corrections.append(CarrierCorrection(tracking_number=number, old=old_carrier, new=carrier))
        if old_carrier is not None:
            numbers.append((old_carrier, number))

    data = last.get("data") or []
    if not isinstance(data, list):
        raise PushUnreadable(PROVIDER, "lastResult.data is not a list")
    try:
        timeline = traces_to_events(carrier, number, data, last, EventSource.PUSH)
    except (ValueError, TypeError) as exc:
        raise PushUnreadable(PROVIDER, f"unreadable trace: {exc}") from exc
    events = timeline.events

    if str(push.get("status") or "").strip().lower() == "abort":
        newest = max((event.occurred_at for event in events), default=None)
        moment = newest + timedelta(seconds=1) if newest else received_at.replace(microsecond=0)
        events.append(
            _event(
                carrier,
                number,
                moment,
                Resolution(PUSH_ABORTED),
                code=ABORT_CODE,
                entry={"context": str(push.get("message") or "") or "快递100已停止监控"},
                source=EventSource.PUSH,
            )
        )
    return ParsedPush(
        events=events,
        tracking_numbers=numbers,
        unmapped_codes=timeline.unmapped,
        inferred_codes=timeline.inferred,
        corrections=corrections,
    )


def push_reply(ok: bool, reason: str, settings: Kuaidi100Settings, now: datetime) -> HttpReply:
    """The merchant reply to a push (REFERENCE §3.3; failure shape [U])."""
    if ok:
        body = compact_json({"result": True, "returnCode": "200", "message": settings.ack_success_message})
    else:
        body = compact_json(
            {"result": False, "returnCode": settings.ack_failure_return_code, "message": reason or "失败"}
        )
    return HttpReply(
        status_code=200 if ok else settings.ack_failure_http_status,
        body=body,
        content_type=REPLY_CONTENT_TYPE,
    )
