"""Tracking-page links and lookup digests: HMAC-SHA256 with the tracking-link secret (pure, no I/O).

A link is ``<base>/t/<token>`` with ``token = <shipment id>.<mac>``, where ``mac`` is the first 128 bits
of ``HMAC-SHA256(secret, "parcelhub/track/v1" NUL shipment id)`` in base64url (22 characters). The
shipment id in the clear lets the page be served with one read and no token index; the MAC is what
makes the link unguessable: without the secret nobody can make the token of another shipment (a
shipment id alone opens nothing here), and a forged or altered token is refused before any read.

The lookup form checks the last four digits of the receiver's phone against a digest stored with the
shipment at creation, ``HMAC-SHA256(secret, "parcelhub/lookup/v1" NUL shipment id NUL digits)``, so the
check needs no decryption and the digits are not stored (10,000 candidates are trivial to enumerate
against a plain hash; against an HMAC they are not, without the secret). Rotating the secret
invalidates every link and digest issued before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_LINK_CONTEXT = b"parcelhub/track/v1\x00"
_LOOKUP_CONTEXT = b"parcelhub/lookup/v1\x00"
_MAC_BYTES = 16
_MAC_CHARS = 22  # base64url of 16 bytes, unpadded
#: what a shipment id may look like inside a token (the hub's ids: ``shp_<hex>``)
_SHIPMENT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MIN_SECRET_BYTES = 32


def last_digits(phone: str, count: int = 4) -> str | None:
    """The last ``count`` digits of a phone number, ``None`` when it has fewer."""
    digits = re.sub(r"\D", "", phone)
    return digits[-count:] if len(digits) >= count else None


class TrackingLinks:
    """Issues and verifies tracking tokens; builds links under ``base_url`` (no trailing slash)."""

    def __init__(self, secret: str | bytes, base_url: str = "") -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"the tracking-link secret must be at least {MIN_SECRET_BYTES} bytes")
        self._key = key
        self.base_url = base_url.rstrip("/")

    def _mac(self, context: bytes, *parts: str) -> bytes:
        message = context + b"\x00".join(part.encode("utf-8") for part in parts)
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def token(self, shipment_id: str) -> str:
        if not _SHIPMENT_ID.match(shipment_id):
            raise ValueError(f"unexpected shipment id {shipment_id!r}")
        mac = base64.urlsafe_b64encode(self._mac(_LINK_CONTEXT, shipment_id)[:_MAC_BYTES]).rstrip(b"=")
        return f"{shipment_id}.{mac.decode('ascii')}"

    def verify(self, token: str) -> str | None:
        """The shipment id of an authentic token; ``None`` for anything else (constant-time compare)."""
        shipment_id, dot, mac = token.rpartition(".")
        if not dot or len(mac) != _MAC_CHARS or not _SHIPMENT_ID.match(shipment_id):
            return None
        return shipment_id if hmac.compare_digest(self.token(shipment_id), token) else None

    def url(self, shipment_id: str) -> str:
        return f"{self.base_url}/t/{self.token(shipment_id)}"

    def lookup_digest(self, shipment_id: str, digits: str) -> str:
        """What the shipment keeps to check the lookup form's digits (hex, 128 bits)."""
        return self._mac(_LOOKUP_CONTEXT, shipment_id, digits).hex()[: 2 * _MAC_BYTES]

    def digits_match(self, shipment_id: str, digits: str, digest: str | None) -> bool:
        """Constant-time; computes the HMAC even when there is no digest to compare (uniform timing)."""
        candidate = self.lookup_digest(shipment_id or "-", digits)
        return hmac.compare_digest(candidate, digest or "0" * len(candidate)) and digest is not None
