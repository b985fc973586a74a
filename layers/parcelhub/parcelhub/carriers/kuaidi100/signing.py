"""Kuaidi100 signatures (REFERENCE §3.1, §3.3): the ``sign`` of a real-time query and of a push.

Subscriptions are not signed (the key travels inside ``param``). Every sign is computed over the exact
``param`` string that is sent or received."""

from __future__ import annotations

import hashlib
import hmac


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()  # Kuaidi100's sign is MD5  # nosec B324


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


def print_sign(param: str, t: str, key: str, secret: str) -> str:
    """The label/print API's ``sign``: ``UPPER(MD5(param + t + key + secret))`` (the official SDK's
    ``SignUtils.printSign``)."""
    return md5_upper(param + t + key + secret)
