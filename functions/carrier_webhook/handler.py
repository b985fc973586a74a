"""Carrier webhooks (issue 6 item 1): ``POST /v1/webhooks/kdniao``, ``/v1/webhooks/kuaidi100``,
``/v1/webhooks/sf/{token}`` on the function's own URL (Lambda function URL, payload v2.0; issue 21: a push
costs no API Gateway request), or on the HTTP API where function URLs are not available (China regions).
A function URL routes every path and method here, so :func:`route_of` answers 404 for anything but those
three ``POST`` paths.

The ACK path is deliberately short, because carriers time out after a few seconds and re-push:

0. an optional per-provider source-address allowlist (``WebhookSourceAllowlists``; off by default):
   a push from elsewhere is a 403 before any secret is read or any byte parsed;
1. the raw body (base64-decoded when ``isBase64Encoded``) -> :class:`HttpRequest`; a missing or empty
   body is a 400, a body over :data:`MAX_BODY_BYTES` a 413 — before anything reads it;
2. ``plugin.verify_push`` — signature or URL token over the raw bytes, no I/O, no database;
3. a bounded readability check (UTF-8, nesting at most :data:`MAX_NESTING` levels counted in one linear
   pass, then valid JSON for JSON bodies) — the only parsing here, after the signature;
4. ONE ``SendMessage`` of the raw payload envelope to the tracking-updates queue — *before* the success
   reply, so an acknowledged push is never lost;
5. the provider's exact success reply (``push_ack(True)``).

Bad signature/token: the provider's failure reply with 401 (403 for the SF URL token), nothing enqueued,
a ``WebhookRejected`` metric (dimension ``provider``) and a log line without the payload. Every
unreadable or hostile body (null, bad base64 or encoding, too deep, not JSON, anything a plugin raises on
it) gets the provider's failure reply with a 4xx and a ``WebhookUnreadable`` metric — never a 5xx. Queue
unavailable: the failure reply with 503, so the carrier pushes again. Parsing the push into events is the
normalizer's job (no pydantic parse of the push here).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import urllib.parse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from parcelhub.observability import add_metric, instrumented, logger
from parcelhub.security.bodies import MAX_NESTING, nesting_depth

if TYPE_CHECKING:
    from parcelhub.carriers.base import HttpReply, HttpRequest, ProviderPlugin
    from parcelhub.domain.models import Provider

WEBHOOK_PATH = "/v1/webhooks/"
#: SQS's message size limit (the envelope, base64 included)
MAX_MESSAGE_BYTES = 256 * 1024
#: the largest push body read (a 200-scan snapshot is ~60 KiB; base64 in the envelope must fit SQS's limit)
MAX_BODY_BYTES = 128 * 1024
#: the deepest nesting of JSON objects/arrays accepted (real pushes nest 4-6 levels)


class Unreadable(ValueError):
    """The body cannot be read (the provider gets its failure reply with a 4xx)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


def _plugin(provider: Provider) -> ProviderPlugin:
    from parcelhub import composition

    return composition.push_plugin(provider)  # its push secret only; rebuilt when the secret changes


def _enqueue(message: str) -> None:
    """One SendMessage on the ACK path's tight timeouts (the ``ack`` client profile)."""
    from parcelhub import composition

    composition.tracking_updates("ack").send([message])


def route_of(event: dict[str, Any]) -> tuple[Provider, dict[str, str]] | None:
    """The provider a request is for and its path parameters; None (a 404) for anything else.

    On the function's URL (route key ``$default``: every method and path reaches the function) from
    ``POST`` and ``rawPath``: ``/v1/webhooks/kdniao``, ``/v1/webhooks/kuaidi100``, ``/v1/webhooks/sf/{token}``;
    on the HTTP API (``WebhookFunctionUrl=disabled``) from its route key and path parameters."""
    from parcelhub.domain.models import Provider

    route = str(event.get("routeKey") or "")
    if route != "$default":
        method, _, path = route.partition(" ")
        raw = event.get("pathParameters")
        params = {str(k): str(v) for k, v in (raw if isinstance(raw, dict) else {}).items()}
        path = path.replace("{token}", params.get("token", ""))
    else:
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, dict) else None
        method = str(http.get("method") or "") if isinstance(http, dict) else ""
        path = str(event.get("rawPath") or "")
    if method.upper() != "POST" or not path.startswith(WEBHOOK_PATH):
        return None
    name, _, rest = path[len(WEBHOOK_PATH) :].partition("/")
    try:
        provider = Provider(name)
    except ValueError:
        return None
    if provider is Provider.SF:  # the URL token is the SF route's one path parameter
        token = urllib.parse.unquote(rest) if route == "$default" else rest
        return (provider, {"token": token}) if token and "/" not in rest else None
    return (provider, {}) if not rest else None


def _raw_body(event: dict[str, Any]) -> bytes:
    """The request body as bytes; :class:`Unreadable` when absent, empty, too large or not decodable."""
    body = event.get("body")
    if body is None or not isinstance(body, str) or not body.strip():
        raise Unreadable("no body")
    encoded = bool(event.get("isBase64Encoded"))
    if len(body) > (MAX_BODY_BYTES * 4 // 3 + 4 if encoded else MAX_BODY_BYTES * 4):
        raise Unreadable("body too large", 413)  # cheap bound before decoding anything
    if encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Unreadable("body is not base64") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise Unreadable("body is not UTF-8") from None
    if len(raw) > MAX_BODY_BYTES:
        raise Unreadable("body too large", 413)
    if not raw.strip():
        raise Unreadable("empty body")
    return raw


def _check_readable(body: bytes, content_type: str) -> None:
    """Bounded readability: UTF-8, at most :data:`MAX_NESTING` levels (form values decoded first), and a
    JSON body must parse. :class:`Unreadable` otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("body is not UTF-8") from None
    lowered = content_type.lower()
    if "form" in lowered:
        try:
            text = urllib.parse.unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            raise Unreadable("form values are not UTF-8") from None
    if nesting_depth(text) > MAX_NESTING:
        raise Unreadable(f"nested deeper than {MAX_NESTING} levels")
    if "json" in lowered:
        try:
            json.loads(text)
        except ValueError:
            raise Unreadable("body is not JSON") from None


def _response(reply: HttpReply, status_code: int | None = None) -> dict[str, Any]:
    return {
        "statusCode": status_code or reply.status_code,
        "headers": {"Content-Type": reply.content_type},
        "body": reply.body,
        "isBase64Encoded": False,
    }


def _plain(status_code: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }


def envelope_json(
    provider: Provider, body: bytes, content_type: str, path_params: dict[str, str], received_at: datetime
) -> str:
    """The queue message (read by ``parcelhub.app.envelopes.PushEnvelope``): the raw push, byte for byte."""
    return json.dumps(
        {
            "provider": provider.value,
            "received_at": received_at.astimezone(UTC).isoformat(),
            "content_type": content_type,
            "body_b64": base64.b64encode(body).decode("ascii"),
            "path_params": path_params,
        },
        separators=(",", ":"),
    )


def source_allowed(event: dict[str, Any], provider: Provider) -> bool:
    """Whether the push comes from an address the provider's allowlist admits (no allowlist: any).

    The address is the function URL's ``requestContext.http.sourceIp`` (the TCP peer, not a header a
    caller could forge)."""
    from parcelhub.config import environment

    networks = environment().webhook_source_allowlists.get(provider)
    if not networks:
        return True
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    source = http.get("sourceIp") if isinstance(http, dict) else None
    try:
        address = ipaddress.ip_address(str(source))
    except ValueError:
        return False
    return any(address in network for network in networks)


def receive(event: dict[str, Any]) -> dict[str, Any]:
    """Handle one webhook request (a function URL event, payload v2.0) and return the HTTP response."""
    route = route_of(event)
    if route is None:
        return _plain(404, "Not Found")
    provider, path_params = route
    if not source_allowed(event, provider):  # before any secret is read or any byte of the body parsed
        add_metric("WebhookRejected", 1, provider=provider.value)
        logger().warning("webhook source address not allowed", extra={"provider": provider.value})
        return _plain(403, "Forbidden")
    try:
        plugin = _plugin(provider)
    except Exception:
        logger().exception("webhook provider not configured", extra={"provider": provider.value})
        return _plain(503, "provider not configured")
    request = _request(event, path_params)
    try:
        return _receive(event, provider, plugin, request)
    except Exception as exc:  # whatever a hostile body makes a plugin raise: a 4xx, never a 5xx
        status = exc.status if isinstance(exc, Unreadable) else 400
        add_metric("WebhookUnreadable", 1, provider=provider.value)
        logger().warning(
            "webhook body unreadable",
            extra={"provider": provider.value, "error": type(exc).__name__, "reason": str(exc)[:200]},
        )
        reason = "payload too large" if status == 413 else "unreadable body"
        return _response(plugin.push_ack(False, reason, request), status)


def _request(event: dict[str, Any], path_params: dict[str, str]) -> HttpRequest:
    """The request's headers and path parameters, without its body (not read yet): enough for the
    provider to shape its failure reply as the push came in."""
    from parcelhub.carriers.base import HttpRequest

    raw_headers = event.get("headers")
    headers = {str(k): str(v) for k, v in (raw_headers if isinstance(raw_headers, dict) else {}).items()}
    return HttpRequest(body=b"", headers=headers, path_params=path_params)


def _receive(event: dict[str, Any], provider: Provider, plugin: ProviderPlugin, shape: HttpRequest) -> dict[str, Any]:
    from parcelhub.carriers.base import HttpRequest, PushRejected
    from parcelhub.domain.models import Provider

    content_type = shape.header("Content-Type") or ""
    body = _raw_body(event)
    request = HttpRequest(body=body, headers=shape.headers, path_params=shape.path_params)
    try:
        plugin.verify_push(request)  # over the raw bytes, before anything parses the body
    except PushRejected as exc:
        add_metric("WebhookRejected", 1, provider=provider.value)
        context = event.get("requestContext")
        http = (context.get("http") if isinstance(context, dict) else None) or {}
        source_ip = str(http.get("sourceIp", "")) if isinstance(http, dict) else ""
        logger().warning(
            "webhook push rejected", extra={"provider": provider.value, "reason": exc.reason, "source_ip": source_ip}
        )
        return _response(
            plugin.push_ack(False, "signature verification failed", request), 403 if provider is Provider.SF else 401
        )
    _check_readable(body, content_type)

    from parcelhub.carriers.base import sealed_path_params

    # a URL token is a credential: only its digest is queued and archived (the normalizer re-verifies it)
    message = envelope_json(provider, body, content_type, sealed_path_params(shape.path_params), datetime.now(UTC))
    if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise Unreadable("payload too large to enqueue", 413)

    from parcelhub.ports.messaging import NotEnqueued

    try:
        _enqueue(message)
    except NotEnqueued as exc:
        error = type(exc.__cause__ or exc).__name__
        logger().error("webhook push not enqueued", extra={"provider": provider.value, "error": error})
        return _response(plugin.push_ack(False, "temporarily unavailable, push again", request), 503)
    return _response(plugin.push_ack(True, request=request))


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return receive(event)
