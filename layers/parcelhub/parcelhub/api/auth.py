"""OMS authentication: the ``x-api-key`` header, checked against SHA-256 hashes in the provider secret.

The keys themselves are never stored; comparison is constant-time. Deployed stacks can additionally
put IAM authorization on the HTTP API routes.
"""

from __future__ import annotations

import hashlib
import hmac

from parcelhub.composition import secrets
from parcelhub.observability import add_metric

#: routes that need no key: liveness, and the customer tracking page (``/t/<token>``) and its lookup form
PUBLIC_PREFIXES = ("/v1/health", "/t/")
PUBLIC_PATHS = frozenset({"/track"})


#: the OpenAPI security requirement of every route that is not public (``x-api-key``)
API_KEY_REQUIRED: list[dict[str, list[str]]] = [{"apiKey": []}]


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class Unauthorized(Exception):
    pass


def authenticate(api_key: str | None) -> str:
    """Return the key's name; raise :class:`Unauthorized` otherwise."""
    if not api_key:
        add_metric("ApiAuthRejected", reason="missing")
        raise Unauthorized("missing x-api-key header")
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
    for known in secrets().api_keys:
        if hmac.compare_digest(digest, known.sha256.lower()):
            return known.name
    add_metric("ApiAuthRejected", reason="unknown")
    raise Unauthorized("invalid API key")
