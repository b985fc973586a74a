"""Wire helpers every provider shares: compact JSON, case-insensitive field lookup, form bodies.

Pure and I/O-free. Each provider's ``requests``/``parsers`` use these instead of their own copies, so
"the exact JSON that is signed" and "a field whose case varies between payloads" mean one thing.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from parcelhub.carriers.base import PushUnreadable

#: the content type of every form we post (and of the form pushes we receive)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"


def compact_json(payload: Any) -> str:
    """The one JSON text we sign and send: no spaces, UTF-8 kept as is (``ensure_ascii=False``)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def field(obj: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """``obj[name]``, else the first key equal to ``name`` ignoring case (``mailno``/``mailNo``,
    ``Location``/``location``, ``Content-Type``/``content-type``), else ``default``."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return default


def field_text(obj: Mapping[str, Any], name: str) -> str:
    """:func:`field` as text: ``""`` when the field is missing or null (not stripped)."""
    value = field(obj, name)
    return "" if value is None else str(value)


def decode_form(provider: str, body: bytes, reason: str = "body is not UTF-8") -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, each value decoded exactly once.

    Raises ``PushUnreadable(provider, reason)`` when the body is not UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PushUnreadable(provider, reason) from exc
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def encode_form(form: Mapping[str, str]) -> str:
    """The on-wire form body ``key=UrlEncode(value)&...`` (each value encoded exactly once)."""
    return urllib.parse.urlencode(list(form.items()), encoding="utf-8")


def lat_lng(text: str, *, lng_first: bool = False) -> tuple[float, float] | None:
    """``(latitude, longitude)`` of a ``"lat,lng"`` pair (Kdniao ``LatAndLng``), or of a ``"lng,lat"``
    pair with ``lng_first`` (Kuaidi100 ``areaCenter``); ``None`` when missing, unreadable or out of range
    (a bad coordinate never fails a push)."""
    parts = [part.strip() for part in (text or "").split(",")]
    if len(parts) != 2:
        return None
    try:
        first, second = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    latitude, longitude = (second, first) if lng_first else (first, second)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return latitude, longitude
