"""Which requests reach a carrier webhook: the function URL sends every method and path to the function,
so the function routes them itself; the HTTP API (WebhookFunctionUrl=disabled) routes by its route keys."""

from __future__ import annotations

from typing import Any

import pytest

from functions.carrier_webhook.handler import receive, route_of
from parcelhub.domain.models import Provider

pytestmark = pytest.mark.unit


def url_event(method: str, path: str) -> dict[str, Any]:
    """A Lambda function URL event (payload v2.0)."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path, "sourceIp": "203.0.113.9"}, "stage": "$default"},
        "body": "{}",
        "isBase64Encoded": False,
    }


def api_event(route: str, **params: str) -> dict[str, Any]:
    """An HTTP API event of a named stage (its rawPath carries the stage)."""
    path = "/prod" + route.split(" ", 1)[1].replace("{token}", params.get("token", ""))
    return {**url_event(route.split(" ", 1)[0], path), "routeKey": route, "pathParameters": params or None}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/webhooks/kdniao", (Provider.KDNIAO, {})),
        ("/v1/webhooks/kuaidi100", (Provider.KUAIDI100, {})),
        ("/v1/webhooks/sf/tok-0123456789abcdef", (Provider.SF, {"token": "tok-0123456789abcdef"})),
        ("/v1/webhooks/sf/tok%2Dx", (Provider.SF, {"token": "tok-x"})),
    ],
)
def test_the_three_webhook_paths_are_routed_on_the_function_url(path: str, expected: Any) -> None:
    assert route_of(url_event("POST", path)) == expected


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/webhooks/kdniao"),
        ("PUT", "/v1/webhooks/kuaidi100"),
        ("POST", "/"),
        ("POST", "/v1/shipments"),
        ("POST", "/v1/webhooks/"),
        ("POST", "/v1/webhooks/unknown"),
        ("POST", "/v1/webhooks/kdniao/extra"),
        ("POST", "/v1/webhooks/sf"),
        ("POST", "/v1/webhooks/sf/"),
        ("POST", "/v1/webhooks/sf/a/b"),
        ("POST", "/dev/v1/webhooks/kdniao"),
    ],
)
def test_anything_else_on_the_function_url_is_a_404_before_any_secret_is_read(method: str, path: str) -> None:
    # Given a request the function URL passes on (it routes nothing itself)
    # When the webhook receives it, then it is not found: no provider is loaded, nothing is read
    assert route_of(url_event(method, path)) is None
    reply = receive(url_event(method, path))
    assert (reply["statusCode"], reply["body"]) == (404, '{"message": "Not Found"}')


def test_the_http_api_routes_are_read_from_their_route_keys() -> None:
    assert route_of(api_event("POST /v1/webhooks/kdniao")) == (Provider.KDNIAO, {})
    assert route_of(api_event("POST /v1/webhooks/sf/{token}", token="t0k")) == (Provider.SF, {"token": "t0k"})
    assert route_of(api_event("GET /v1/health")) is None
