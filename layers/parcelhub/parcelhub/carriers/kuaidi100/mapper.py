"""Pure Kuaidi100 mapping: our models <-> Kuaidi100 payloads, signatures, push parsing. No I/O.

Wire facts (REFERENCE.md §3):

* subscribe ``POST /poll`` form ``schema=json&param=<JSON>``; no signature, the key is inside ``param``;
* real-time query ``POST /poll/query.do`` form ``customer, sign, param`` with
  ``sign = UPPER(MD5(param + key + customer))`` over the exact JSON string sent;
* push: form ``param`` (JSON) + ``sign = MD5(param + salt)``, hex compared case-insensitively;
  ``lastResult.data[]`` is a full snapshot, newest first;
* reply to a push: ``{"result":true,"returnCode":"200","message":"成功"}``.

Every JSON we sign is serialised once here (compact, UTF-8, ``ensure_ascii=False``) and the very same
string is both signed and sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from parcelhub.carriers.base import (
    CarrierAuthError,
    CarrierRejected,
    CarrierUnavailable,
    CodeMapping,
    ParsedPush,
    PushRejected,
    PushUnreadable,
    TrackingSubscription,
)
from parcelhub.carriers.kuaidi100.codes import (
    ABORT_CODE,
    PROVIDER,
    PUSH_ABORTED,
    QUERY_RETURN_CODES,
    STATE_NAMES,
    STATES,
    SUBSCRIBE_RETURN_CODES,
    Outcome,
)
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.domain.models import Carrier, EventSource, Provider, TrackingEvent, parse_china_time

# ----------------------------------------------------------------------------------------- signatures


def dumps(payload: Mapping[str, Any]) -> str:
    """The one JSON serialisation we sign and send."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def query_sign(param: str, key: str, customer: str) -> str:
    """``UPPER(hex(MD5(param + key + customer)))`` (REFERENCE §3.1)."""
    return md5_upper(param + key + customer)


def push_sign(param: str, salt: str) -> str:
    """``MD5(param + salt)`` as upper-case hex (REFERENCE §3.3)."""
    return md5_upper(param + salt)


def push_sign_matches(param: str, sign: str, salt: str, *, case_insensitive: bool = True) -> bool:
    expected = push_sign(param, salt)
    given = sign.strip()
    if case_insensitive:
        given = given.upper()
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


# ------------------------------------------------------------------------------------ company codes


def com_code(settings: Kuaidi100Settings, carrier: Carrier) -> str:
    try:
        return settings.company_codes[carrier]
    except KeyError:
        message = f"carrier {carrier.value} has no kuaidi100 company code"
        raise CarrierRejected(PROVIDER, message, "UNSUPPORTED") from None


def carrier_for_com(settings: Kuaidi100Settings, com: str | None) -> Carrier | None:
    wanted = (com or "").strip().lower()
    for carrier, code in settings.company_codes.items():
        if code == wanted:
            return carrier
    return None


# ------------------------------------------------------------------------------------------ requests


def subscribe_param(settings: Kuaidi100Settings, subscription: TrackingSubscription) -> str:
    """The exact ``param`` JSON of a subscription (REFERENCE §3.2)."""
    com = com_code(settings, subscription.carrier)
    phone = (subscription.phone_last4 or "").strip()
    if com in settings.phone_required_for and not phone:
        raise CarrierRejected(PROVIDER, f"{com} tracking needs the receiver's phone (last 4 digits)", "PHONE_REQUIRED")
    callback = subscription.callback_url or settings.callback_url
    if not callback:
        raise CarrierRejected(PROVIDER, "no callback URL for the subscription", "NO_CALLBACK_URL")
    payload = {
        "company": com,
        "number": subscription.tracking_number,
        "from": subscription.origin or "",
        "to": subscription.destination or "",
        "key": settings.key.get_secret_value(),
        "parameters": {
            "callbackurl": callback,
            "salt": settings.salt.get_secret_value(),
            "resultv2": settings.subscribe_resultv2,
            "autoCom": settings.auto_com,
            "interCom": settings.inter_com,
            "departureCountry": "",
            "departureCom": "",
            "destinationCountry": "",
            "destinationCom": "",
            "phone": phone,
        },
    }
    return dumps(payload)


def build_subscribe_form(settings: Kuaidi100Settings, subscription: TrackingSubscription) -> dict[str, str]:
    return {"schema": "json", "param": subscribe_param(settings, subscription)}


def query_param(settings: Kuaidi100Settings, carrier: Carrier, tracking_number: str, phone: str | None = None) -> str:
    """The exact ``param`` JSON of a real-time query (REFERENCE §3.1). ``phone`` only when given."""
    com = com_code(settings, carrier)
    phone = (phone or "").strip()
    if com in settings.phone_required_for and not phone:
        raise CarrierRejected(PROVIDER, f"{com} queries need the receiver's phone (last 4 digits)", "PHONE_REQUIRED")
    payload: dict[str, str] = {"com": com, "num": tracking_number}
    if phone:
        payload["phone"] = phone
    payload["resultv2"] = settings.query_resultv2
    return dumps(payload)


def build_query_form(
    settings: Kuaidi100Settings, carrier: Carrier, tracking_number: str, phone: str | None = None
) -> dict[str, str]:
    param = query_param(settings, carrier, tracking_number, phone)
    sign = query_sign(param, settings.key.get_secret_value(), settings.customer)
    return {"customer": settings.customer, "sign": sign, "param": param}


# ----------------------------------------------------------------------------------------- responses


def _raise_for(outcome: Outcome, code: str, message: str) -> None:
    if outcome is Outcome.AUTH:
        raise CarrierAuthError(PROVIDER, message, code)
    if outcome is Outcome.UNAVAILABLE:
        raise CarrierUnavailable(PROVIDER, message, code)
    if outcome is Outcome.REJECTED:
        raise CarrierRejected(PROVIDER, message, code)


def check_subscribe_response(body: Mapping[str, Any]) -> None:
    """Raise the typed error a subscribe reply means; return for 200 and 501 (already subscribed)."""
    code = str(body.get("returnCode") or "").strip()
    message = str(body.get("message") or "")
    if not code:
        if body.get("result") is True:
            return
        raise CarrierUnavailable(PROVIDER, f"unreadable subscribe reply: {message or body!r}"[:200], "BAD_RESPONSE")
    # an unknown failure code is a rejection: do not hammer the provider with the same subscription
    _raise_for(SUBSCRIBE_RETURN_CODES.get(code, Outcome.REJECTED), code, message or f"returnCode {code}")


def parse_query_response(
    carrier: Carrier, tracking_number: str, body: Mapping[str, Any]
) -> tuple[list[TrackingEvent], list[str]]:
    """``(events, unmapped codes)`` of a real-time query reply; raises the typed error for a failure."""
    if body.get("result") is False or ("returnCode" in body and "data" not in body):
        code = str(body.get("returnCode") or "").strip()
        message = str(body.get("message") or f"returnCode {code}")
        outcome = QUERY_RETURN_CODES.get(code, Outcome.REJECTED)
        if outcome in (Outcome.NO_RESULT, Outcome.OK):
            return [], []
        _raise_for(outcome, code, message)
    data = body.get("data")
    if not isinstance(data, list):
        raise CarrierUnavailable(PROVIDER, "query reply has no data[]", "BAD_RESPONSE")
    number = str(body.get("nu") or tracking_number)
    try:
        return traces_to_events(carrier, number, data, str(body.get("state") or ""), EventSource.POLL)
    except (ValueError, TypeError) as exc:
        raise CarrierUnavailable(PROVIDER, f"unreadable query reply: {exc}", "BAD_RESPONSE") from exc


# ------------------------------------------------------------------------------------------ traces

#: what ``unmapped_codes`` says for a trace that carries no code at all (metric dimensions can't be empty)
MISSING_CODE = "(none)"

_BRACKET_CITY = re.compile(r"^\s*[【\[]([^】\]]{1,20})[】\]]")


def _location(entry: Mapping[str, Any]) -> str | None:
    area = str(entry.get("areaName") or "").strip()
    if area:
        return area
    found = _BRACKET_CITY.match(str(entry.get("context") or ""))
    return found.group(1).strip() if found else None


def _trace_time(entry: Mapping[str, Any]) -> datetime:
    stamp = str(entry.get("ftime") or entry.get("time") or "").strip()
    if not stamp:
        raise ValueError("trace without time/ftime")
    return parse_china_time(stamp)


def trace_code(entry: Mapping[str, Any], fallback_state: str = "") -> str:
    """The code that decides a trace's status: ``statusCode`` (advanced, resultv2=4), else the Chinese
    ``status`` name, else (newest trace only) ``lastResult.state``; else the raw name (unmapped)."""
    code = str(entry.get("statusCode") or "").strip()
    if code:
        return code
    name = str(entry.get("status") or "").strip()
    if name in STATE_NAMES:
        return STATE_NAMES[name]
    return fallback_state.strip() or name


def traces_to_events(
    carrier: Carrier,
    tracking_number: str,
    data: Sequence[Any],
    state: str,
    source: EventSource,
) -> tuple[list[TrackingEvent], list[str]]:
    """Map ``data[]`` (any order; Kuaidi100 sends newest first) to events, and the unmapped codes."""
    entries = [entry for entry in data if isinstance(entry, Mapping)]
    if len(entries) != len(data):
        raise ValueError("data[] holds a non-object")
    times = [_trace_time(entry) for entry in entries]
    newest = max(times, default=None)
    events: list[TrackingEvent] = []
    unmapped: list[str] = []
    seen: set[str] = set()
    for entry, moment in zip(entries, times, strict=True):
        code = trace_code(entry, state if moment == newest else "")
        mapping, known = STATES.lookup(code)
        reported = code or MISSING_CODE
        if not known and reported not in unmapped:
            unmapped.append(reported)
        event = _event(carrier, tracking_number, moment, mapping, code=code, entry=entry, source=source)
        if event.content_hash not in seen:  # a snapshot can repeat a trace; one event per content
            seen.add(event.content_hash)
            events.append(event)
    return events, unmapped


def _event(
    carrier: Carrier,
    tracking_number: str,
    moment: datetime,
    mapping: CodeMapping,
    *,
    code: str,
    entry: Mapping[str, Any],
    source: EventSource,
) -> TrackingEvent:
    return TrackingEvent(
        carrier=carrier,
        provider=Provider.KUAIDI100,
        tracking_number=tracking_number,
        occurred_at=moment,
        status=mapping.status,
        sub_status=mapping.sub_status,
        raw_code=code,
        raw_text=str(entry.get("context") or "").strip(),
        location=_location(entry),
        source=source,
    )


# -------------------------------------------------------------------------------------------- push


def read_push_form(body: bytes) -> tuple[str, str]:
    """``(param, sign)`` of a push body (form-encoded, each value decoded exactly once)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PushUnreadable(PROVIDER, "body is not UTF-8") from None
    fields = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    param = fields.get("param")
    if not param:
        raise PushUnreadable(PROVIDER, "no param field")
    sign = fields.get("sign")
    if not sign:
        raise PushRejected(PROVIDER, "no sign field")
    return param, sign


def verify_push(settings: Kuaidi100Settings, body: bytes) -> str:
    """Authenticate a push; return its ``param`` JSON string. I/O-free, constant-time compare."""
    param, sign = read_push_form(body)
    if not push_sign_matches(
        param, sign, settings.salt.get_secret_value(), case_insensitive=settings.push_sign_case_insensitive
    ):
        raise PushRejected(PROVIDER, "sign does not match MD5(param + salt)")
    return param


def parse_push_param(settings: Kuaidi100Settings, param: str, received_at: datetime) -> ParsedPush:
    """Parse a verified push ``param`` into canonical events.

    * the company is ``comNew`` when Kuaidi100 auto-corrected it (``autoCheck=1``), else
      ``lastResult.com``; both carriers are reported in ``tracking_numbers`` so the caller can find a
      claim made under the old one;
    * ``status=abort`` (Kuaidi100 stopped tracking) adds an EXCEPTION/CARRIER_TRACKING_ABORTED event,
      stamped one second after the newest trace (deterministic, so a re-push hashes the same) or at
      ``received_at`` when there is no trace at all;
    * ``shutdown`` (finished) and ``updateall`` (full re-push) need nothing special: the snapshot is the
      full timeline and the store dedupes on content hashes.
    """
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
    carrier = carrier_for_com(settings, com)
    old_carrier = carrier_for_com(settings, str(push.get("comOld") or last.get("com") or ""))
    if carrier is None:
        carrier = old_carrier
    if carrier is None:
        raise PushUnreadable(PROVIDER, f"unknown company code {com!r}")
    numbers: list[tuple[Carrier, str]] = [(carrier, number)]
    if corrected and old_carrier is not None and old_carrier != carrier:
        numbers.append((old_carrier, number))

    data = last.get("data") or []
    if not isinstance(data, list):
        raise PushUnreadable(PROVIDER, "lastResult.data is not a list")
    try:
        events, unmapped = traces_to_events(carrier, number, data, str(last.get("state") or ""), EventSource.PUSH)
    except (ValueError, TypeError) as exc:
        raise PushUnreadable(PROVIDER, f"unreadable trace: {exc}") from exc

    if str(push.get("status") or "").strip().lower() == "abort":
        newest = max((event.occurred_at for event in events), default=None)
        moment = newest + timedelta(seconds=1) if newest else received_at.replace(microsecond=0)
        events.append(
            _event(
                carrier,
                number,
                moment,
                PUSH_ABORTED,
                code=ABORT_CODE,
                entry={"context": str(push.get("message") or "") or "快递100已停止监控"},
                source=EventSource.PUSH,
            )
        )
    return ParsedPush(events=events, tracking_numbers=numbers, unmapped_codes=unmapped)


def ack_body(settings: Kuaidi100Settings, ok: bool, reason: str = "") -> str:
    """The merchant reply to a push (REFERENCE §3.3; failure shape [U])."""
    if ok:
        return dumps({"result": True, "returnCode": "200", "message": settings.ack_success_message})
    return dumps({"result": False, "returnCode": settings.ack_failure_return_code, "message": reason or "失败"})
