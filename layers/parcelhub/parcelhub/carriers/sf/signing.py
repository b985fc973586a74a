"""SF Fengqiao signatures: the ``msgDigest`` of our calls (REFERENCE §0, §2.2) and the URL token that
authenticates SF's pushes (SF does not sign them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse


def java_url_encode(text: str) -> str:
    """``java.net.URLEncoder.encode(text, "UTF-8")``: space -> ``+``, ``*`` kept, ``~`` -> ``%7E``.

    Python's ``quote_plus`` does the opposite on ``*`` and ``~`` (REFERENCE §0)."""
    return urllib.parse.quote_plus(text, safe="*").replace("~", "%7E")


def msg_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """``Base64(MD5_raw(URLEncoder.encode(msgData + timestamp + checkWord, "UTF-8")))`` (§2.2)."""
    encoded = java_url_encode(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(encoded.encode("utf-8")).digest()).decode("ascii")  # SF's msgDigest is MD5  # nosec B324


def push_token_matches(token: str, expected: str) -> bool:
    """Constant-time comparison of our webhook URL's token with the configured one."""
    return bool(token) and hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


def push_token_digest_matches(digest: str, expected: str) -> bool:
    """Constant-time comparison of a stored token digest (``sealed_path_params``) with the configured
    token's."""
    wanted = hashlib.sha256(expected.encode("utf-8")).hexdigest()
    return bool(digest) and hmac.compare_digest(digest.lower().encode("ascii", "replace"), wanted.encode("ascii"))
