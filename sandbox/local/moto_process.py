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
import functools
import io
import json
import logging
import os
import signal
import sys
import threading
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
    parse_each_definition_once()
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
