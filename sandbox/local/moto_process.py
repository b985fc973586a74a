"""moto in its own process, so the emulator and our handlers use both cores.

``python -m sandbox.local.moto_process --callback <runner URL>`` starts moto's threaded server on a
free loopback port, prints ``MOTO_PORT=<port>`` and serves until stdin closes or it gets SIGTERM.
moto's single Lambda invocation point (``LambdaFunction._invoke_lambda``: Step Functions Lambda
tasks, direct invokes, SNS->Lambda) is replaced by an HTTP call back into the runner, which runs the
real handler and answers ``{"payload": <the JSON the function returned or its error>, "error": bool}``
(an error payload carries ``errorType`` = the exception's class name, so ASL Retry/Catch match).
"""

from __future__ import annotations

import argparse
import base64
import calendar
import datetime
import functools
import io
import json
import logging
import os
import signal
import socket
import sys
import threading
import types
from typing import Any

import requests

from sandbox.local.fidelity import serialize_dynamodb, serialize_sqs_receives

INVOKE_TIMEOUT = (5, 900)
#: the header naming the role a Step Functions task invokes its function with (the state machine's)
ROLE_HEADER = "X-Parcelhub-Role-Arn"


def patch_lambda_invocation(callback: str) -> None:
    from moto.awslambda.models import LambdaFunction

    session = requests.Session()

    def _invoke_lambda(fn: Any, event: Any = None) -> tuple[str, bool, str]:
        body = event if isinstance(event, str | bytes) else json.dumps(event if event is not None else {})
        try:
            reply = session.post(f"{callback}/{fn.function_name}", data=body, timeout=INVOKE_TIMEOUT)
            answer = reply.json()
        except (requests.RequestException, ValueError) as exc:
            failure = {"errorType": "Lambda.ServiceException", "errorMessage": f"local runner unreachable: {exc}"}
            return json.dumps(failure), True, ""
        return str(answer["payload"]), bool(answer["error"]), ""

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign,assignment]


class DirectLambdaClient:
    """What moto's Step Functions interpreter uses as its Lambda client: ``invoke`` goes straight to the
    runner (one loopback hop) instead of through moto's own Lambda API and a new boto3 client per task."""

    def __init__(self, callback: str, session: requests.Session | None = None, role_arn: str | None = None) -> None:
        self.callback = callback
        self.session = session or requests.Session()
        self.role_arn = role_arn

    def as_role(self, role_arn: str | None) -> DirectLambdaClient:
        """The same client, invoking with the state machine's role (the runner checks it)."""
        return DirectLambdaClient(self.callback, self.session, role_arn)

    def invoke(self, FunctionName: str, Payload: Any = None, **_: Any) -> dict[str, Any]:
        name = FunctionName.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        body = Payload if isinstance(Payload, str | bytes) else json.dumps(Payload if Payload is not None else {})
        headers = {ROLE_HEADER: self.role_arn} if self.role_arn else {}
        try:
            reply = self.session.post(f"{self.callback}/{name}", data=body, headers=headers, timeout=INVOKE_TIMEOUT)
            answer = reply.json()
            payload, error = str(answer["payload"]), bool(answer["error"])
        except (requests.RequestException, ValueError) as exc:
            payload = json.dumps({"errorType": "Lambda.ServiceException", "errorMessage": f"runner unreachable: {exc}"})
            error = True
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(payload.encode("utf-8"))}
        if error:
            response["FunctionError"] = "Unhandled"
        return response


def direct_step_functions_lambda_tasks(callback: str) -> None:
    """Step Functions Lambda tasks call the runner directly (see :class:`DirectLambdaClient`)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    build = getattr(lambda_eval_utils, "boto_client_for")  # noqa: B009 - not re-exported by moto
    direct = DirectLambdaClient(callback)

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if service == "lambda":
            return direct.as_role(getattr(state_credentials, "role_arn", None))
        return build(region, service, state_credentials)

    setattr(lambda_eval_utils, "boto_client_for", boto_client_for)  # noqa: B010 - not re-exported by moto


def route_requests_by_cached_host() -> None:
    """moto's server picks each request's backend under one process-wide lock, and on the way lists moto's
    package directory and stats each of its ~250 entries (``list_of_moto_modules``) - on every request. Under
    the demo's load that lock was where most of the emulator's request threads waited (profiled: 60 % of
    their samples). The modules do not change while it runs, and a host always maps to the same backend, so
    both are worked out once."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    setattr(backends, "list_of_moto_modules", lambda: modules)  # noqa: B010 - patching moto's module
    resolve = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    @functools.wraps(resolve)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in known:
            known[host] = resolve(self, host)
        return known[host]

    setattr(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)  # noqa: B010


def keep_connections_alive() -> None:
    """moto's server (werkzeug's development server) answers every request with ``Connection: close``, so
    each AWS call of every handler opened a new TCP connection and the server started a new thread for it
    (profiled: connect, ``getaddrinfo`` and the socket teardown were a large share of the runner's AWS-call
    time). AWS endpoints keep HTTPS connections alive and botocore pools them; here too. werkzeug closes
    because ``http.server`` cannot skip an unread request body before the next request line, so the body is
    read whole before moto sees it and the connection is kept only when that was possible (a
    ``Content-Length`` body or none); a chunked upload still closes it. Nagle's algorithm is off, or a
    response's body would wait for the ACK of its headers (a delayed-ACK stall per call)."""
    import werkzeug.serving
    from moto.moto_server import threaded_moto_server
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    # werkzeug drains "any remaining request data" after each response: it selects on the connection and
    # reads it to its end, which on a kept connection would block on (or swallow) the client's next request.
    # Once the body has been read whole there is nothing to drain, so that step is shown a socket already at
    # its end and an empty reader instead of the connection's.
    at_end, peer = socket.socketpair()
    peer.close()
    serving = werkzeug.serving
    import selectors as poll

    class Drain:
        """werkzeug's post-response selector: none at all for a connection already read to its end (an
        epoll set made and closed per request cost four system calls, each a wait for the GIL under load)."""

        def __init__(self) -> None:
            self.selector: Any = None

        def register(self, fileobj: Any, events: int) -> None:
            if fileobj is not at_end:
                self.selector = poll.DefaultSelector()
                self.selector.register(fileobj, events)

        def select(self, timeout: float | None = None) -> list[Any]:
            return self.selector.select(timeout) if self.selector is not None else []

        def close(self) -> None:
            if self.selector is not None:
                self.selector.close()

    setattr(serving, "selectors", types.SimpleNamespace(DefaultSelector=Drain, EVENT_READ=poll.EVENT_READ))  # noqa: B010

    class KeepAliveRequestHandler(MotoRequestHandler):
        disable_nagle_algorithm = True
        _drained = False

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            length = self.headers.get("Content-Length")
            self._drained = not chunked and (length is None or length.isdigit())
            if self._drained:
                environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)) if length else b"")
                self.connection, self.rfile = at_end, io.BytesIO()  # restored by run_wsgi
            return environ

        def run_wsgi(self) -> None:
            connection, rfile = self.connection, self.rfile
            try:
                super().run_wsgi()
            finally:
                self.connection, self.rfile = connection, rfile

        def send_header(self, keyword: str, value: str) -> None:
            closing = keyword.lower() == "connection" and value.lower() == "close"
            asked = (self.headers.get("Connection") or "").lower() == "close"
            if closing and self._drained and not asked and self.request_version == "HTTP/1.1":
                return  # the connection stays open for the client's next request
            super().send_header(keyword, value)

    setattr(threaded_moto_server, "MotoRequestHandler", KeepAliveRequestHandler)  # noqa: B010 - moto's module


def stream_records_as_stored() -> None:
    """``GetRecords`` answered with moto's stream records as JSON. moto keeps each record in DynamoDB's
    wire shape already, then walks the botocore output shape of every attribute of both images to serialize
    it: 74 ms of the emulator's one core per call in the demo (a third of all its CPU; the stream pollers read
    every record of the shipments table, as the event source mapping does before applying its filter). The
    body is the same document: binary values in base64 and ``ApproximateCreationDateTime`` in epoch seconds
    (millisecond precision), as moto's serializer writes them."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    def get_records(self: Any) -> str:
        limit = self._get_param("Limit")
        result = self.backend.get_records(self._get_param("ShardIterator"), 1000 if limit is None else limit)
        return json.dumps(result, default=_wire_value)

    setattr(DynamoDBStreamsHandler, "get_records", get_records)  # noqa: B010 - patching moto's class


class _NotWire(Exception):
    """A value moto holds as an object rather than in DynamoDB's wire shape: its serializer handles it."""


def _as_wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _as_wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_wire(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | bool):
        return value
    raise _NotWire(type(value).__name__)


def attribute_values_as_stored() -> None:
    """moto serializes each DynamoDB response by walking the botocore output shape, and an item's every
    attribute value is an ``AttributeValue`` union of ten members it checks one by one, maps and lists
    recursively: 60 % of an ``UpdateItem`` returning a shipment (profiled), most of a ``GetItem`` or
    ``Query``. moto already holds attribute values in the wire shape (``{"S": ...}``, ``{"M": {...}}``), so an
    ``AttributeValue`` given as such is written as it is (binary in base64, as the serializer writes it); any
    other value, and the rest of every response, goes through moto's serializer as before."""
    from moto.core.serialize import BaseJSONSerializer

    structure = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and isinstance(value, dict):
            try:
                wire = _as_wire(value)
            except _NotWire:
                pass
            else:
                self._default_serialize(serialized, wire, shape, key)
                return
        structure(self, serialized, value, shape, key)

    setattr(BaseJSONSerializer, "_serialize_type_structure", serialize_structure)  # noqa: B010 - moto's class


def _wire_value(value: Any) -> float | str:
    """A record's typed values as the JSON protocol carries them: binary as base64, times as epoch seconds."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime):
        return calendar.timegm(value.timetuple()) + (value.microsecond // 1000) / 1000
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def query_one_partition() -> None:
    """moto answers every ``Query`` by listing *all* the table's items, sorted (``Table.all_items``), and then
    keeping those of the partition or index key asked for: O(n log n) in everything stored, on every query
    (15 ms of the emulator's one core per query by the end of a demo day, growing with the day; DynamoDB
    reads one partition). Within a query, a base-table query lists just its partition and an index query
    lists every item unsorted (moto sorts its candidates by the index's keys afterwards, ties impossible as
    the table's own keys are part of that order); ``Scan`` and every other caller get moto's listing."""
    import inspect

    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items
    signature = inspect.signature(query)
    scope = threading.local()

    def listed(table: Any) -> list[Any]:
        if getattr(scope, "table", None) != id(table):
            return all_items(table)
        if scope.partition is None:  # an index query: every item, in no particular order
            found = list(table.items.values())
        else:
            stored = table.items.get(scope.partition)
            found = [] if stored is None else [stored]
        if not table.range_key_attr:
            return found
        return sorted((item for partition in found for item in partition.values()), key=lambda x: x.range_key)

    def scoped_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        index_name, hash_key = bound.arguments.get("index_name"), bound.arguments.get("hash_key")
        if not index_name and hash_key is None:
            return query(self, *args, **kwargs)
        scope.table, scope.partition = id(self), (None if index_name else hash_key)
        try:
            return query(self, *args, **kwargs)
        finally:
            scope.table = None

    setattr(Table, "all_items", listed)  # noqa: B010 - patching moto's class
    setattr(Table, "query", scoped_query)  # noqa: B010


def parse_each_definition_once() -> None:
    """moto's Step Functions lexes and parses the state machine's definition (ANTLR, pure Python) at the
    start of every execution: about a tenth of the emulator's busy time in the demo. AWS does it once,
    when the state machine is created or updated. The parse tree of each definition is kept; every
    execution still builds its own evaluation components from it (they hold the execution's state)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    parse = AmazonStateLanguageParser.parse
    trees: dict[str, Any] = {}

    def parse_once(definition: str) -> tuple[Any, Any]:
        tree = trees.get(definition)
        if tree is None:
            program, trees[definition] = parse(definition)  # a syntax error raises, and is not kept
            return program, trees[definition]
        return Preprocessor().visit(tree), tree

    setattr(AmazonStateLanguageParser, "parse", staticmethod(parse_once))  # noqa: B010 - patching moto's class


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--callback", required=True, help="the runner's lambda-invoke route")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import ThreadedMotoServer

    serialize_dynamodb()
    serialize_sqs_receives()
    route_requests_by_cached_host()
    keep_connections_alive()
    parse_each_definition_once()
    stream_records_as_stored()
    query_one_partition()
    attribute_values_as_stored()
    direct_step_functions_lambda_tasks(args.callback.rstrip("/"))
    patch_lambda_invocation(args.callback.rstrip("/"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    os.environ["MOTO_PORT"] = str(port)  # moto's Step Functions calls its own Lambda API on this port
    print(f"MOTO_PORT={port}", flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())

    def watch_parent() -> None:  # the runner closes our stdin when it exits, even when it is killed
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
