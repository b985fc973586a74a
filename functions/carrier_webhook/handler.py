"""Carrier webhooks (issue 6 item 1): ``POST /v1/webhooks/kdniao``, ``/v1/webhooks/kuaidi100``,
``/v1/webhooks/sf/{token}`` behind the HTTP API (payload v2.0).

The ACK path is deliberately short, because carriers time out after a few seconds and re-push:

1. the raw body (base64-decoded when ``isBase64Encoded``) -> :class:`HttpRequest`;
2. ``plugin.verify_push`` — signature or URL token, no I/O, no database;
3. ONE ``SendMessage`` of the raw payload envelope to the tracking-updates queue — *before* the success
   reply, so an acknowledged push is never lost;
4. the provider's exact success reply (``push_ack(True)``).

Bad signature/token: the provider's failure reply with 401 (403 for the SF URL token), nothing enqueued,
a ``WebhookRejected`` metric (dimension ``provider``) and a log line without the payload. Unreadable
body: 400. Queue unavailable: the provider's failure reply with 503, so the carrier pushes again.
Parsing the push into events is the normalizer's job (no pydantic parse of the push here).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from parcelhub.observability import add_metric, instrumented, logger

if TYPE_CHECKING:
    from parcelhub.carriers.base import HttpReply, ProviderPlugin
    from parcelhub.domain.models import Provider

WEBHOOK_PATH = "/v1/webhooks/"
#: SQS's message size limit (the envelope, base64 included)
MAX_MESSAGE_BYTES = 256 * 1024


def _plugin(provider: Provider) -> ProviderPlugin:
    from parcelhub import composition

    return composition.plugin(provider)  # cached per provider, rebuilt when the provider secret changes


def _enqueue(message: str) -> None:
    """One SendMessage on the ACK path's tight timeouts (the ``ack`` client profile)."""
    from parcelhub import composition

    composition.tracking_updates("ack").send([message])


def provider_of(event: dict[str, Any]) -> Provider | None:
    """The provider a request is for, from the route key (``POST /v1/webhooks/sf/{token}``) or the path."""
    from parcelhub.domain.models import Provider

    route = str(event.get("routeKey") or "")
    path = route.partition(" ")[2] if " " in route else str(event.get("rawPath") or "")
    start = path.find(WEBHOOK_PATH)
    if start < 0:
        return None
    name = path[start + len(WEBHOOK_PATH) :].split("/", 1)[0]
    try:
        return Provider(name)
    except ValueError:
        return None


def _raw_body(event: dict[str, Any]) -> bytes | None:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            return None
    return str(body).encode("utf-8")


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


def _readable(body: bytes, content_type: str) -> bool:
    if not body.strip():
        return False
    if "json" in content_type.lower():
        try:
            json.loads(body)
        except ValueError:
            return False
    return True


def receive(event: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 - one answer per outcome
    """Handle one webhook request (an API Gateway HTTP API v2.0 event) and return the HTTP response."""
    from parcelhub.carriers.base import HttpRequest, PushRejected, PushUnreadable
    from parcelhub.domain.models import Provider

    provider = provider_of(event)
    if provider is None:
        return _plain(404, "Not Found")
    try:
        plugin = _plugin(provider)
    except Exception:
        logger().exception("webhook provider not configured", extra={"provider": provider.value})
        return _plain(503, "provider not configured")

    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    path_params = {str(k): str(v) for k, v in (event.get("pathParameters") or {}).items()}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    body = _raw_body(event)
    if body is None or not _readable(body, content_type):
        logger().warning("webhook body unreadable", extra={"provider": provider.value})
        return _response(plugin.push_ack(False, "unreadable body"), 400)

    request = HttpRequest(body=body, headers=headers, path_params=path_params)
    try:
        plugin.verify_push(request)
    except PushRejected as exc:
        add_metric("WebhookRejected", 1, provider=provider.value)
        source_ip = str(((event.get("requestContext") or {}).get("http") or {}).get("sourceIp", ""))
        logger().warning(
            "webhook push rejected", extra={"provider": provider.value, "reason": exc.reason, "source_ip": source_ip}
        )
        return _response(
            plugin.push_ack(False, "signature verification failed", request), 403 if provider is Provider.SF else 401
        )
    except PushUnreadable as exc:
        logger().warning("webhook body unreadable", extra={"provider": provider.value, "reason": exc.reason})
        return _response(plugin.push_ack(False, "unreadable body", request), 400)

    message = envelope_json(provider, body, content_type, path_params, datetime.now(UTC))
    if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        logger().error("webhook push too large to enqueue", extra={"provider": provider.value, "bytes": len(body)})
        return _response(plugin.push_ack(False, "payload too large", request), 413)

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
