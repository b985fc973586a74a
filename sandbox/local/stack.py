"""The whole system on one machine, wired from the template: :class:`LocalStack`.

    with LocalStack(LocalSettings.from_env(PARCELHUB_PORT="0")) as stack:
        requests.get(stack.api_url + "/v1/health")

One ``LocalStack`` per process at a time: moto's backends, ``os.environ`` and the patched moto Lambda
invocation are process-wide (``stop()`` restores the environment and resets moto).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import html
import inspect
import json
import logging
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from sandbox.local.faults import Faults
from sandbox.local.http_api import HttpApiServer, json_response
from sandbox.local.iam_stack import StackIam
from sandbox.local.lambdas import FunctionError, Functions, environment_union
from sandbox.local.metrics import Metrics
from sandbox.local.moto_process import ROLE_HEADER
from sandbox.local.pollers import SqsPoller
from sandbox.local.provision import Provisioner
from sandbox.local.rules import TargetDeliverer, TopicRecorder
from sandbox.local.schedules import Scheduler, scheduled_event
from sandbox.local.settings import LocalSettings
from sandbox.local.streams import StreamPoller
from sandbox.local.template import (
    REGION,
    URL_SUFFIX,
    Plan,
    Resolver,
    Schedule,
    SqsSource,
    build_plan,
    load_template,
)

log = logging.getLogger("parcelhub.local")

#: the function whose URL the carriers push to (``WebhookUrl`` in the template's outputs)
WEBHOOK_FUNCTION = "CarrierWebhookFunction"

SANDBOXES: dict[str, tuple[str, str, str]] = {
    # provider -> (module, class, webhook path under the webhook function's URL)
    "kdniao": ("sandbox.carriers.kdniao", "KdniaoSandbox", "/v1/webhooks/kdniao"),
    # the SF sandbox appends its push token as the last path segment, like the URL set in SF's console
    "sf": ("sandbox.carriers.sf", "SfSandbox", "/v1/webhooks/sf"),
    "kuaidi100": ("sandbox.carriers.kuaidi100", "Kuaidi100Sandbox", "/v1/webhooks/kuaidi100"),
}

#: the template parameter pointed at the runner's own OMS callback sink (when the template has it)
OMS_CALLBACK_PARAMETER = "OmsCallbackUrl"
#: where the moto process sends Lambda invocations (Step Functions tasks) to run our handlers
LAMBDA_CALLBACK = "/_local/lambda-invoke"
#: a presigned S3 URL whose signer may not use it points here (``<REFUSED_PATH>/<denial number>``)
REFUSED_PATH = "/_local/refused"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def moto_session() -> boto3.session.Session:
    """A boto3 session holding moto's placeholder credentials (:data:`FAKE_CREDENTIALS`, the one definition)."""
    import botocore.session
    from botocore.credentials import EnvProvider

    core = botocore.session.Session()
    # read as the environment provider reads variables, but from FAKE_CREDENTIALS, not os.environ
    core.get_component("credential_provider").insert_before("env", EnvProvider(environ=FAKE_CREDENTIALS))
    return boto3.session.Session(botocore_session=core, region_name=REGION)


@contextlib.contextmanager
def in_process_moto() -> Iterator[None]:
    """moto in this process (``mock_aws``) with its placeholder credentials, the environment restored after
    (the benchmarks that measure one adapter's requests without a local stack)."""
    from moto import mock_aws

    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(FAKE_CREDENTIALS)
    try:
        with mock_aws():
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def moto_client(service: str, endpoint_url: str) -> Any:
    """A boto3 client of the moto server at ``endpoint_url``, as any AWS client would talk to it."""
    return moto_session().client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


class LocalStack:
    def __init__(self, settings: LocalSettings | None = None, *, echo: Callable[[str], None] | None = None) -> None:
        self.settings = settings or LocalSettings.from_env()
        self.echo = echo or (lambda text: print(text, flush=True))
        self.metrics = Metrics()
        self.faults = Faults()
        self.stop_event = threading.Event()
        self.started = False
        self.ready_seconds: float | None = None
        self.plan: Plan | None = None
        self.resolver: Resolver | None = None
        self.functions: Functions | None = None
        self.unavailable: dict[str, str] = {}
        self.sandboxes: dict[str, Any] = {}
        self.pollers: list[SqsPoller] = []
        self.stream_pollers: list[StreamPoller] = []
        self.deliverers: list[TargetDeliverer] = []
        self.recorder: TopicRecorder | None = None
        self.scheduler: Scheduler | None = None
        self.iam: StackIam | None = None
        self.http: HttpApiServer | None = None
        self.url_servers: dict[str, HttpApiServer] = {}  # function logical -> its function URL's server
        self.webhook_url = ""
        #: function logical -> how long its SQS event source gathers a batch, on the local clock
        self.batching_windows: dict[str, float] = {}
        self._moto: Any = None
        self._saved_env: dict[str, str] | None = None
        self._http_session = requests.Session()
        self._boto = moto_session()
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._sink_lock = threading.Lock()
        self.moto_url = ""
        self.api_url = ""
        #: signs this stack's tracking-page links: configured, or drawn once per stack (never a fixed default)
        self.tracking_link_secret = self.settings.tracking_link_secret or secrets.token_urlsafe(32)

    # ------------------------------------------------------------------ paths
    @property
    def local_dir(self) -> Path:
        return self.settings.local_dir

    @property
    def alerts_file(self) -> Path:
        return self.local_dir / "alerts.jsonl"

    @property
    def oms_callbacks_file(self) -> Path:
        return self.local_dir / "oms-callbacks.jsonl"

    @property
    def handle_file(self) -> Path:
        return self.local_dir / "local-stack.json"

    # ------------------------------------------------------------------ clients (the runner's own)
    def client(self, service: str) -> Any:
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._boto.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.moto_url,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=50),
                )
            return self._clients[service]

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        self._began = time.monotonic()
        try:
            self._start()
        except BaseException as exc:
            log.error("local stack failed to start: %s: %s", exc.__class__.__name__, exc)
            self.stop()
            raise
        return self

    def _start(self) -> None:  # noqa: PLR0912, PLR0915 - the start sequence reads best in one place
        settings = self.settings
        template_path = settings.template_path.resolve()
        base_dir = template_path.parent
        template = load_template(template_path)
        self.local_dir.mkdir(parents=True, exist_ok=True)

        # 1. our HTTP API socket first: its port is in the webhook URLs, the OMS sink and the env
        self.http = HttpApiServer(settings.port)
        overrides = dict(settings.parameter_overrides)
        if OMS_CALLBACK_PARAMETER in (template.get("Parameters") or {}) and OMS_CALLBACK_PARAMETER not in overrides:
            overrides[OMS_CALLBACK_PARAMETER] = f"{self.http.url}/_local/oms-callbacks"
        preview = build_plan(template, Resolver(template, overrides), base_dir)  # fails fast on drift
        stages = sorted({route.stage for route in preview.routes if route.stage != "$default"})
        self.api_url = self.http.url + (f"/{stages[0]}" if len(stages) == 1 else "")
        # each function URL is a host of its own (every path and method invokes its function)
        self.url_servers = {logical: HttpApiServer(0) for logical in preview.function_urls}
        webhook = self.url_servers.get(WEBHOOK_FUNCTION)
        self.webhook_url = webhook.url if webhook is not None else ""

        # 2. moto in its own process (the second core), Step Functions execution on, this process
        #    pointed at it; its Lambda invocations call back into this runner (moto_process.py)
        self._moto = subprocess.Popen(  # noqa: S603 - our own module, with this interpreter
            [sys.executable, "-m", "sandbox.local.moto_process", "--callback", f"{self.http.url}{LAMBDA_CALLBACK}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **FAKE_CREDENTIALS},
        )
        assert self._moto.stdout is not None
        announced = self._moto.stdout.readline().decode().strip()
        if not announced.startswith("MOTO_PORT="):
            raise RuntimeError(f"moto did not start (exit {self._moto.poll()}): {announced!r}")
        host, port = "127.0.0.1", int(announced.partition("=")[2])
        moto_out = self._moto.stdout
        threading.Thread(target=lambda: [None for _ in moto_out], name="moto-stdout", daemon=True).start()
        self.moto_url = f"http://{host}:{port}"
        self._saved_env = dict(os.environ)
        os.environ.update(FAKE_CREDENTIALS)
        os.environ["AWS_ENDPOINT_URL"] = self.moto_url
        os.environ["MOTO_PORT"] = str(port)
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        self._http_session.post(
            f"{self.moto_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()

        # 3. carrier sandboxes (their URLs go into the provider secrets)
        if settings.with_sandboxes:
            self._start_sandboxes()

        # 4. every resource of the template, then the plan with the real ids
        self.resolver = Resolver(template, overrides)
        # the roles as `sam deploy` makes them (every function's AWS call is checked against its role)
        self.iam = iam = StackIam.translate(template, overrides)
        provisioner = Provisioner(
            template,
            self.resolver,
            self.client,
            time_scale=settings.time_scale,
            config_overrides=settings.config_overrides,
            secret_document=self.secret_document,
            base_dir=base_dir,
            state_machine_roles=iam.state_machine_role_arns(),
        )
        provisioner.provision_resources()
        self.plan = plan = build_plan(template, self.resolver, base_dir)
        self._localize_api_urls(plan)
        provisioner.provision_rules(plan)
        iam.build(self.resolver, plan)
        api_ids = {logical: str(self.resolver.ids(logical)["Ref"]) for logical in plan.http_apis}
        iam.check_deployment(api_ids)

        # 5. functions in-process: shared environment, moto's Lambda invocation -> real handlers
        self.metrics.install(self._register_hooks)
        self.functions = functions = Functions(plan.functions, self.metrics, base_dir, settings.concurrency)
        os.environ.update(environment_union(plan.functions))
        self._reset_parcelhub_caches()
        self.unavailable = functions.preload()
        for logical, problem in self.unavailable.items():
            log.warning("function %s is not runnable yet: %s", logical, problem)

        # 6. HTTP API + runner routes, function URLs
        self.http.configure(plan.routes, functions.invoke, api_ids)
        self.http.on_request = self.metrics.record_http
        for logical, server in self.url_servers.items():
            function_url = plan.function_urls[logical]
            url_id = _url_id(self.resolver, function_url.logical)
            server.configure([function_url.route()], functions.invoke, {function_url.logical: url_id})
            server.on_request = functools.partial(self._record_url_request, logical)
            server.start()
        self.http.local_routes = {
            ("POST", "/_local/invoke/"): self._route_invoke,
            ("POST", f"{LAMBDA_CALLBACK}/"): self._route_lambda_callback,
            ("POST", "/_local/oms-callbacks"): self._route_oms_callback,
            ("GET", "/_local/metrics"): lambda *_: json_response(200, self.metrics_snapshot()),
            ("POST", "/_local/metrics/reset"): self._route_metrics_reset,
            ("POST", "/_local/faults"): self._route_faults,
            ("GET", "/_local/faults"): lambda *_: json_response(200, self.faults.snapshot()),
            ("POST", "/_local/reset-caches"): self._route_reset_caches,
            ("GET", "/_local/stack"): lambda *_: json_response(200, self.handle()),
            ("GET", f"{REFUSED_PATH}/"): self._route_refused,
        }
        if self.iam is not None:
            self.iam.enforcer.refusal_url = self.http.url + REFUSED_PATH
        self.http.start()

        # 7. event sources, rule delivery, topic recorder, schedules
        for declared in plan.sqs_sources:
            if declared.enabled:
                url = self.resolver.ids(declared.queue)["QueueUrl"]
                source = self._windowed(declared, url, settings.batch_window_scale)
                # Lambda's SQS event source polls with several concurrent pollers; so does the runner
                reserved = plan.functions[source.function].reserved_concurrency or settings.concurrency
                for index in range(min(settings.concurrency, reserved)):
                    self.pollers.append(
                        SqsPoller(
                            source,
                            url,
                            self.client("sqs"),
                            functions.invoke,
                            self.stop_event,
                            index=index,
                            redeliver=self.faults.redeliver,
                            count=self.metrics.record_event_source,
                        )
                    )
        for stream in plan.stream_sources:
            if stream.enabled:
                dlq = self.resolver.ids(stream.on_failure_queue)["QueueUrl"] if stream.on_failure_queue else None
                self.stream_pollers.append(
                    StreamPoller(
                        stream,
                        self.client("dynamodbstreams"),
                        self.client("sqs"),
                        functions.invoke,
                        self.stop_event,
                        function_arn=plan.functions[stream.function].arn,
                        on_failure_url=dlq,
                    )
                )
        for rule in plan.rules:
            for target in rule.targets:
                url = provisioner.out.rule_shadow_queues.get((rule.logical, target.id), "")
                self.deliverers.append(
                    TargetDeliverer(
                        rule,
                        target,
                        url,
                        client=self.client,
                        invoke=functions.invoke,
                        api_destinations=provisioner.out.api_destinations,
                        connections=provisioner.out.connections,
                        stop=self.stop_event,
                        http=self._http_session,
                        authorize=iam.authorize_target,
                    )
                )
        self._connections = provisioner.out.connections
        topic_queues = {plan.topics[logical]: url for logical, url in provisioner.out.topic_shadow_queues.items()}
        self.recorder = TopicRecorder(topic_queues, self.client("sqs"), self.alerts_file, self.stop_event, self.echo)
        self.scheduler = Scheduler(plan.schedules, settings.schedule_scale, self._fire)
        for poller in self.pollers:
            poller.start()
        for stream_poller in self.stream_pollers:
            stream_poller.start()
        for deliverer in self.deliverers:
            if deliverer.queue_url:
                deliverer.start()
        self.recorder.start()
        self.scheduler.start()
        self.started = True
        self.ready_seconds = time.monotonic() - self._began
        self.write_handle()

    def stop(self) -> None:
        self.stop_event.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        threads = [p.thread for p in self.pollers] + [p.thread for p in self.stream_pollers]
        threads += [d.thread for d in self.deliverers]
        threads += self.recorder.threads if self.recorder else []
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=3)
        # servers stop in parallel (each shutdown waits for its poll interval)
        stoppers: list[Callable[[], None]] = [sandbox.stop for sandbox in self.sandboxes.values()]
        if self.http is not None:
            stoppers.append(self.http.stop)
        stoppers += [server.stop for server in self.url_servers.values()]
        workers = [threading.Thread(target=_quietly, args=(stop,), daemon=True) for stop in stoppers]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=10)
        self.http = None
        self.url_servers = {}
        self.sandboxes = {}
        self.metrics.uninstall()
        if self._moto is not None:
            try:
                self._http_session.post(f"{self.moto_url}/moto-api/reset", timeout=5)
            except requests.RequestException as exc:
                log.debug("moto reset: %s", exc)
            self._moto.terminate()
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto.kill()
                self._moto.wait(timeout=5)
            self._moto = None
        for client in self._clients.values():
            client.close()
        self._clients = {}
        self._http_session.close()
        if self._saved_env is not None:
            os.environ.clear()
            os.environ.update(self._saved_env)
            self._saved_env = None
            self._reset_parcelhub_caches()
        self.started = False

    # ------------------------------------------------------------------ pieces
    def _start_sandboxes(self) -> None:
        import importlib

        settings = self.settings
        for provider, (module_name, class_name, webhook_path) in SANDBOXES.items():
            credentials = settings.credentials.for_provider(provider)
            try:
                cls = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError) as exc:
                log.warning("carrier sandbox %s not available: %s", provider, exc)
                continue
            accepted = inspect.signature(cls).parameters
            kwargs: dict[str, Any] = {k: v for k, v in credentials.items() if k in accepted}
            webhook = self.webhook_url + webhook_path
            sandbox = cls(
                **kwargs, port=0, webhook_url=webhook, stage_seconds=settings.sandbox_stage_seconds, seed=None
            )
            sandbox.start()
            self.sandboxes[provider] = sandbox

    def secret_document(self, name: str) -> dict[str, Any] | None:
        """The local value of one of the template's secrets (by name): the OMS key hash and tracking-link
        secret, each provider's API or push part with its ``base_url`` pointed at its sandbox."""
        from sandbox.local.secret_parts import secret_values, suffix_of

        providers: dict[str, dict[str, Any]] = {}
        for provider, sandbox in self.sandboxes.items():
            entry: dict[str, Any] = dict(self.settings.credentials.for_provider(provider))
            entry["base_url"] = sandbox.url
            if self.settings.carrier_read_timeout is not None:
                entry["read_timeout"] = self.settings.carrier_read_timeout
            if provider == "kuaidi100":
                entry["callback_url"] = self.webhook_url + SANDBOXES["kuaidi100"][2]
            providers[provider] = entry
        api_key_hash = hashlib.sha256(self.settings.api_key.encode("utf-8")).hexdigest()
        values = secret_values(providers, [{"name": "local", "sha256": api_key_hash}], self.tracking_link_secret)
        return values.get(suffix_of(name))

    def _windowed(self, source: SqsSource, url: str, scale: float) -> SqsSource:
        """The event source with its batching window on the local clock (``PARCELHUB_BATCH_WINDOW_SCALE``),
        its queue's visibility timeout lengthened by that window: the local stack shortens visibility timeouts
        to seconds, and a batch gathered for longer than its messages stay hidden would be received again
        before it is processed (the template keeps AWS's margin: six times the function's timeout)."""
        window = source.batching_window_seconds * scale
        if window > 0:
            sqs = self.client("sqs")
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
            hidden = int(attributes["VisibilityTimeout"]) + math.ceil(window)
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(hidden)})
        self.batching_windows[source.function] = window
        return dataclasses.replace(source, batching_window_seconds=window)

    def _record_url_request(self, function: str, _route_key: str) -> None:
        self.metrics.record_function_url(function)

    def _localize_api_urls(self, plan: Plan) -> None:
        """``https://<api id>.execute-api.<region>.amazonaws.com`` -> this runner's HTTP server; a function
        URL (``https://<url id>.lambda-url.<region>.on.aws/``) -> its own server on loopback."""
        assert self.resolver is not None
        assert self.http is not None
        local = {
            f"https://{self.resolver.ids(logical)['Ref']}.execute-api.{REGION}.{URL_SUFFIX}": self.http.url
            for logical in plan.http_apis
        }
        for logical, url in plan.function_urls.items():
            local[self.resolver.get_att(url.logical, "FunctionUrl")] = self.url_servers[logical].url + "/"
        for deployed, here in local.items():
            for function in plan.functions.values():
                for name, value in function.environment.items():
                    if deployed in value:
                        function.environment[name] = value.replace(deployed, here)

    @staticmethod
    def _reset_parcelhub_caches() -> None:
        try:
            from parcelhub import composition
        except ImportError:
            return
        composition.reset()

    def _fire(self, schedule: Schedule) -> Any:
        assert self.functions is not None
        event = scheduled_event(schedule)
        if schedule.function is not None:
            if self.iam is not None and not self.iam.schedule_may_invoke(schedule):
                log.error("schedule %s may not invoke %s (see iam_denials)", schedule.name, schedule.function)
                return None
            try:
                return self.functions.invoke(schedule.function, event)
            except FunctionError as exc:
                log.warning("scheduled %s raised %s", schedule.function, exc)
                raise
        for deliverer in self.deliverers:
            if deliverer.rule.logical == schedule.rule:
                deliverer.deliver(event)
        return None

    # ------------------------------------------------------------------ runner routes
    def _route_lambda_callback(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """moto's Lambda invocation point (in the moto process) calling a handler of ours; a Step Functions
        task names the state machine's role, which must allow ``lambda:InvokeFunction``."""
        assert self.functions is not None
        function_name = path.rsplit("/", 1)[-1]
        role_arn = {k.lower(): v for k, v in headers.items()}.get(ROLE_HEADER.lower())
        refused = self.iam.state_machine_may_invoke(role_arn, function_name) if self.iam and role_arn else None
        if refused:
            denied = {"errorType": "Lambda.AWSLambdaException", "errorMessage": refused}
            return json_response(200, {"payload": json.dumps(denied), "error": True})
        payload, error = self.functions.invoke_for_moto(function_name, body)
        return json_response(200, {"payload": payload, "error": error})

    def _route_invoke(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.plan is not None
        assert self.functions is not None
        logical = path.rsplit("/", 1)[-1]
        if logical not in self.plan.functions:
            return json_response(404, {"message": f"no function {logical} in the template"})
        if body.strip():
            event: Any = json.loads(body)
        else:
            schedules = [s for s in self.plan.schedules if s.function == logical]
            if not schedules:
                return json_response(400, {"message": f"{logical} has no schedule: send the event as the body"})
            event = scheduled_event(schedules[0])
        started = time.monotonic()
        try:
            result = self.functions.invoke(logical, event)
        except FunctionError as exc:
            return json_response(500, {"function": logical, "error": exc.payload})
        return json_response(
            200, {"function": logical, "result": result, "duration_ms": round((time.monotonic() - started) * 1000, 1)}
        )

    def _route_oms_callback(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        lower = {k.lower(): v for k, v in headers.items()}
        expected = [
            (c["auth"]["ApiKeyAuthParameters"]["ApiKeyName"].lower(), c["auth"]["ApiKeyAuthParameters"]["ApiKeyValue"])
            for c in getattr(self, "_connections", {}).values()
            if c.get("type") == "API_KEY"
        ]
        authorized = any(lower.get(name) == value for name, value in expected) if expected else True
        try:
            event: Any = json.loads(body)
        except ValueError:
            event = body.decode("utf-8", "replace")
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "authorized": authorized,
            "content_type": lower.get("content-type"),
            "event": event,
        }
        with self._sink_lock, self.oms_callbacks_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        if not authorized:
            return json_response(401, {"message": "missing or wrong API key"})
        return json_response(200, {"ok": True})

    def _route_refused(self, method: str, path: str, *_: Any) -> tuple[int, dict[str, str], bytes]:
        """Where a presigned URL its signer's role may not use points: S3's 403 ``AccessDenied``."""
        number = path.rsplit("/", 1)[-1]
        found = self.iam.enforcer.message(int(number)) if self.iam is not None and number.isdigit() else ""
        message = html.escape(found or "Access Denied")
        xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>{message}</Message>"
        xml += "</Error>"
        return 403, {"Content-Type": "application/xml"}, xml.encode("utf-8")

    def _register_hooks(self, events: Any) -> None:
        """The botocore hooks of every client the functions create: IAM checks, then injected faults."""
        if self.iam is not None:
            self.iam.enforcer.register(events)
        self.faults.register(events)

    def metrics_snapshot(self) -> dict[str, Any]:
        """The metrics, with the IAM checks and denials (``iam_checked``, ``iam_denials_total``, ``iam_denials``)
        and the injected faults that struck (``faults_hit``)."""
        iam = self.iam.snapshot() if self.iam else {}
        return {**self.metrics.snapshot(), **iam, "faults_hit": self.faults.snapshot()["injected"]}

    def _route_faults(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Replace the injected faults (see ``sandbox/local/faults.py``); ``{}`` switches them all off."""
        if self.faults.racer is None:
            self.faults.racer = self.client("dynamodb")
        try:
            return json_response(200, self.faults.configure(json.loads(body or b"{}")))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response(400, {"message": f"bad faults: {exc}"})

    def _route_reset_caches(self, *_: Any) -> tuple[int, dict[str, str], bytes]:
        """Forget every function's cached configuration and clients, like a new deployment's cold start."""
        self._reset_parcelhub_caches()
        return json_response(200, {"reset": True})

    def _route_metrics_reset(self, *_: Any) -> tuple[int, dict[str, str], bytes]:
        self.metrics.reset()
        if self.iam is not None:
            self.iam.enforcer.reset()
        return json_response(200, {"reset": True})

    # ------------------------------------------------------------------ the handle
    def handle(self) -> dict[str, Any]:
        assert self.plan is not None
        assert self.resolver is not None
        return {
            "api_url": self.api_url,
            "webhook_url": self.webhook_url,
            "batching_windows": dict(self.batching_windows),
            "api_key": self.settings.api_key,
            "sandboxes": {provider: sandbox.url for provider, sandbox in self.sandboxes.items()},
            "alerts_file": str(self.alerts_file.resolve()),
            "oms_callbacks_file": str(self.oms_callbacks_file.resolve()),
            "moto_url": self.moto_url,
            "pid": os.getpid(),
            "resources": {logical: str(self.resolver.ids(logical)["Ref"]) for logical in self.plan.resources},
            "functions": {logical: f.name for logical, f in self.plan.functions.items()},
            "unavailable_functions": self.unavailable,
            "ready_seconds": self.ready_seconds,
        }

    def write_handle(self) -> None:
        document = self.handle()
        document["ready_seconds"] = self.ready_seconds
        temporary = self.handle_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.handle_file)  # atomic: a reader never sees half a file


def _url_id(resolver: Resolver | None, logical: str) -> str:
    """A function URL's id: the first label of its host (``<url id>.lambda-url.<region>.on.aws``)."""
    assert resolver is not None
    return resolver.get_att(logical, "FunctionUrl").split("//", 1)[1].split(".", 1)[0]


def _quietly(stop: Callable[[], None]) -> None:
    try:
        stop()
    except Exception as exc:  # stopping must go on whatever one server does
        log.warning("stop %s: %s", getattr(stop, "__qualname__", stop), exc)


def run_forever(stack: LocalStack) -> int:
    """Start, print where things are, block until SIGINT/SIGTERM, stop everything."""
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start()
        handle = stack.handle()
        stack.echo(f"parcelhub local stack ready in {stack.ready_seconds:.1f} s")
        # the key itself is in the handle file (mode 0600 is the caller's umask): never in a log
        stack.echo(f"  API        {handle['api_url']}   (x-api-key: PARCELHUB_API_KEY, also in the handle file)")
        stack.echo(f"  webhooks   {handle['webhook_url']}/v1/webhooks/<provider>   (the webhook function's URL)")
        for provider, url in handle["sandboxes"].items():
            stack.echo(f"  sandbox    {provider:<10} {url}")
        stack.echo(f"  moto       {handle['moto_url']}")
        stack.echo(f"  alerts     {handle['alerts_file']}")
        stack.echo(f"  handle     {stack.handle_file.resolve()}")
        if stack.unavailable:
            stack.echo(f"  not yet runnable: {', '.join(sorted(stack.unavailable))}")
        stack.echo("Ctrl-C to stop")
        while not stopping.wait(0.5):
            pass
        return 0
    finally:
        stack.echo("stopping...")
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
