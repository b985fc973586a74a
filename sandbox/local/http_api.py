"""The template's HTTP API on loopback: requests become API Gateway HTTP API payload v2.0 events.

Paths are served under the stage like the deployed API (``<api_url>`` = ``http://127.0.0.1:<port>/<stage>``,
so ``rawPath`` carries the stage prefix as API Gateway sends it for a named stage); a request without
the prefix is served as if it had it. Route selection follows API Gateway: the most specific match wins
(literal segments before ``{param}`` before ``{proxy+}``), ``ANY`` matches every method, and a request
no route matches gets ``404 {"message":"Not Found"}``.

Bodies: text types (``text/*``, JSON, XML, JavaScript) are passed as text; anything else, including
``application/x-www-form-urlencoded``, is base64-encoded with ``isBase64Encoded: true``, as HTTP APIs
do. A handler exception answers ``500 {"message":"Internal Server Error"}``.

Runner routes live under ``/_local/`` (see :class:`LocalRoutes`).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.local.template import ACCOUNT_ID, HttpRoute

log = logging.getLogger("parcelhub.local")

TEXT_TYPES = re.compile(r"^(text/.*|application/(json|xml|javascript|.*\+json|.*\+xml))$")

#: (method, path, headers, body) -> (status, headers, body)
LocalRoute = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class _Compiled:
    route: HttpRoute
    pattern: re.Pattern[str]
    specificity: tuple[int, int, int]


def _compile(route: HttpRoute) -> _Compiled:
    if route.path == "$default":
        return _Compiled(route, re.compile(r"^/.*$"), (-1, 0, 0))
    parts = []
    literal = params = greedy = 0
    for segment in route.path.strip("/").split("/"):
        match = re.fullmatch(r"\{([A-Za-z0-9_]+)(\+?)\}", segment)
        if match and match.group(2):
            parts.append(f"(?P<{match.group(1)}>.+)")
            greedy += 1
        elif match:
            parts.append(f"(?P<{match.group(1)}>[^/]+)")
            params += 1
        else:
            parts.append(re.escape(segment))
            literal += 1
    return _Compiled(route, re.compile("^/" + "/".join(parts) + "$"), (literal, params, -greedy))


class RouteTable:
    def __init__(self, routes: list[HttpRoute]) -> None:
        self.routes = sorted((_compile(r) for r in routes), key=lambda c: c.specificity, reverse=True)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for wanted in (method, "ANY"):
            for compiled in self.routes:
                if compiled.route.method != wanted:
                    continue
                found = compiled.pattern.match(path)
                if found:
                    return compiled.route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        return None


def build_event(
    route: HttpRoute,
    path_parameters: dict[str, str],
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    api_id: str,
    host: str,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    query: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    content_type = merged.get("content-type", "").split(";")[0].strip().lower()
    is_text = not body or bool(TEXT_TYPES.match(content_type))
    if is_text:
        try:
            text_body: str | None = body.decode("utf-8") if body else None
            encoded = False
        except UnicodeDecodeError:
            text_body, encoded = base64.b64encode(body).decode(), True
    else:
        text_body, encoded = base64.b64encode(body).decode(), True
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16] + "=",
            "routeKey": route.route_key,
            "stage": route.stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if text_body is not None:
        event["body"] = text_body
    return event


def build_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A handler result (format 2.0) as an HTTP response, as API Gateway interprets it."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # format 2.0 without statusCode: the result is the JSON body of a 200
        body = result if isinstance(result, str) else json.dumps(result)
        return 200, [("content-type", "application/json")], body.encode("utf-8")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(raw)
    else:
        data = (raw if isinstance(raw, str) else json.dumps(raw)).encode("utf-8")
    if not any(k.lower() == "content-type" for k, _ in headers) and data:
        headers.append(("content-type", "application/json"))
    return int(result["statusCode"]), headers, data


class HttpApiServer:
    """``ThreadingHTTPServer`` on 127.0.0.1 serving the template's routes plus the runner's ``/_local``."""

    def __init__(self, port: int) -> None:
        self.routes = RouteTable([])
        self.invoke: Callable[[str, Any], Any] | None = None
        self.local_routes: dict[tuple[str, str], LocalRoute] = {}  # (method, path prefix) -> handler
        self.stages: set[str] = set()
        self.api_ids: dict[str, str] = {}
        self.on_request: Callable[[str], None] = lambda _key: None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self, routes: list[HttpRoute], invoke: Callable[[str, Any], Any], api_ids: dict[str, str]) -> None:
        self.routes = RouteTable(routes)
        self.invoke = invoke
        self.stages = {r.stage for r in routes if r.stage != "$default"}
        self.api_ids = api_ids

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-http-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever: only call it when serving
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    # ------------------------------------------------------------------ request handling
    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        parsed = urllib.parse.urlsplit(target)
        path = parsed.path or "/"
        if path.startswith("/_local/"):
            for (route_method, prefix), local in self.local_routes.items():
                if route_method == method and (path == prefix or (prefix.endswith("/") and path.startswith(prefix))):
                    status, out_headers, data = local(method, path, dict(headers), body)
                    return status, list(out_headers.items()), data
            return _json(404, {"message": "Not Found"})
        raw_path, route_path = path, path
        first = path.split("/")[1] if path.count("/") >= 1 else ""
        if first in self.stages:
            route_path = path[len(first) + 1 :] or "/"
        elif len(self.stages) == 1:
            raw_path = "/" + next(iter(self.stages)) + path
        matched = self.routes.match(method, route_path)
        if matched is None or self.invoke is None:
            return _json(404, {"message": "Not Found"})
        route, path_parameters = matched
        self.on_request(route.route_key)
        host = next((v for k, v in headers if k.lower() == "host"), f"127.0.0.1:{self.port}")
        event = build_event(
            route,
            path_parameters,
            method=method,
            raw_path=raw_path if route.stage != "$default" else route_path,
            raw_query=parsed.query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            api_id=self.api_ids.get(route.api, "local"),
            host=host,
        )
        started = time.monotonic()
        try:
            result = self.invoke(route.function, event)
        except Exception as exc:
            log.error("%s %s -> %s raised %s", method, path, route.function, exc)
            return _json(500, {"message": "Internal Server Error"})
        finally:
            log.debug("%s %s -> %s in %.0f ms", method, path, route.function, (time.monotonic() - started) * 1000)
        try:
            return build_response(result)
        except (TypeError, ValueError) as exc:
            log.error("%s returned a malformed response: %s", route.function, exc)
            return _json(500, {"message": "Internal Server Error"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = server.handle(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def _json(status: int, body: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return status, [("content-type", "application/json")], data


def json_response(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(body, ensure_ascii=False, default=str).encode()
