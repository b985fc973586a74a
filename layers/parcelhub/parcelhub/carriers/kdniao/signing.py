"""Kdniao signatures (REFERENCE §1.2): the DataSign of our calls and of the pushes we receive."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse


def data_sign(request_data: str, app_key: str) -> str:
    """``Base64(lower_hex(MD5_utf8(RequestData + AppKey)))``: 44 chars ending ``=``.

    Not the raw-digest variant (24 chars ending ``==``) that SF and Cainiao use."""
    hex_digest = hashlib.md5((request_data + app_key).encode("utf-8")).hexdigest()  # Kdniao's DataSign is MD5  # nosec B324
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
