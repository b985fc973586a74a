"""Faults injected at the local stack's boundaries, for the fault suites (``tests/e2e``: the waybill
faults and the tracking path's fault matrix; the carrier sandboxes have their own faults).

Rules are set at runtime (``POST /_local/faults``, :meth:`sandbox.local.client.LocalStackClient.faults`)
and apply only to AWS calls a *function* makes (the runner's own calls — provisioning, pollers, rule
delivery — are never faulted). Each rule names a ``service`` and ``operation`` (``*`` for any), optionally
a ``function`` (logical id), a ``rate`` (probability per call), a ``count`` (at most that many
injections) and its ``kind``:

* ``error``: the call gets an AWS error response (``code``, HTTP ``status``) in the service's protocol,
  injected below botocore's retry handler, so the SDK retries it exactly as it would a real one
  (DynamoDB throttling, S3 ``SlowDown``, EventBridge ``InternalException``…);
* ``fail``: the call fails as the SDK reports it once its retries are spent (``code``, HTTP ``status``),
  answered before anything is sent - the label store failing for a waybill task, say;
* ``partial``: ``PutEvents`` answers with the sampled entries failed (``code``) and the others delivered;
* ``race``: a concurrent writer commits the same conditional ``UpdateItem`` just before this one, which
  then meets a failed condition — the conflict two invocations racing on one item produce;
* ``kill``: the invocation dies at this call (:class:`FunctionKilled`, not an ``Exception``: no ``except``
  of ours catches it), like a Lambda timeout or crash mid-batch: nothing after that point runs and the
  invocation ends with :data:`KILLED_ERROR` (what Step Functions reports for a task that timed out);
* ``latency``: the call takes ``seconds`` longer (handlers outliving an SQS visibility timeout).

Every injection is counted by ``<kind>:<service>.<Operation>`` (``GET /_local/faults`` -> ``injected``,
and ``/_local/metrics`` -> ``faults_hit``).

``sqs_redelivery`` (0..1) makes the SQS event sources leave that share of successfully processed messages
undeleted, so SQS delivers them again (at-least-once delivery).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sandbox.local.metrics import current_function

#: the Lambda error type of an invocation the runner killed (a timed-out function)
KILLED_ERROR = "Sandbox.Timedout"


class FunctionKilled(BaseException):
    """The invocation was killed at an AWS call (BaseException: the handler's own ``except`` does not see it)."""


KINDS = frozenset({"error", "fail", "partial", "race", "kill", "latency"})


@dataclass
class FaultRule:
    kind: str
    service: str = "*"
    operation: str = "*"
    function: str = "*"
    rate: float = 1.0
    count: int | None = None
    code: str = "InternalFailure"
    status: int = 500
    seconds: float = 0.0

    @classmethod
    def of(cls, raw: dict[str, Any]) -> FaultRule:
        rule = cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})
        if rule.kind not in KINDS:
            raise ValueError(f"unknown fault kind {rule.kind!r} (one of {sorted(KINDS)})")
        return rule

    def applies(self, service: str, operation: str, function: str) -> bool:
        return (
            self.service in ("*", service) and self.operation in ("*", operation) and self.function in ("*", function)
        )


class _RawBody:
    """What botocore's ``AWSResponse`` reads a body from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


class _Http:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    sqs_redelivery: float = 0.0
    injected: Counter[str] = field(default_factory=Counter)
    seed: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._rng = random.Random(self.seed)
        self._spent: Counter[int] = Counter()  # injections per rule (its ``count``)
        self.racer: Any = None  # the runner's own DynamoDB client (a concurrent writer)

    # ------------------------------------------------------------------ control
    def configure(self, document: dict[str, Any]) -> dict[str, Any]:
        rules = [FaultRule.of(dict(raw)) for raw in document.get("rules") or []]
        with self._lock:
            self.rules = rules
            self.sqs_redelivery = float(document.get("sqs_redelivery") or 0.0)
            if document.get("seed") is not None:
                self._rng = random.Random(int(document["seed"]))
            self.injected = Counter()
            self._spent = Counter()
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": [rule.__dict__ for rule in self.rules],
                "sqs_redelivery": self.sqs_redelivery,
                "injected": dict(self.injected),
            }

    def redeliver(self) -> bool:
        """Leave a processed SQS message undeleted (it is delivered again)?"""
        with self._lock:
            hit = self.sqs_redelivery > 0 and self._rng.random() < self.sqs_redelivery
            if hit:
                self.injected["sqs.redelivery"] += 1
            return hit

    def _pick(self, kinds: set[str], service: str, operation: str) -> FaultRule | None:
        function = current_function()
        if function is None or getattr(self._local, "quiet", False):
            return None
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.kind not in kinds or not rule.applies(service, operation, function):
                    continue
                if rule.count is not None and self._spent[index] >= rule.count:
                    continue
                if self._rng.random() < rule.rate:
                    self._spent[index] += 1
                    self.injected[f"{rule.kind}:{service}.{operation}"] += 1
                    return rule
        return None

    # ------------------------------------------------------------------ botocore hooks
    def register(self, events: Any) -> None:
        """Hook a new botocore client's events (called for every client created while the stack runs)."""
        events.register("provide-client-params", self._params)
        events.register("before-call", self._before_call)
        events.register("before-send", self._before_send)
        events.register("after-call.events.PutEvents", self._after_put_events)

    @staticmethod
    def _names(model: Any) -> tuple[str, str]:
        return model.service_model.service_name, model.name

    def _params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> Any:
        service, operation = self._names(model)
        rule = self._pick({"kill", "race", "partial"}, service, operation)
        if rule is None:
            return None
        if rule.kind == "kill":
            raise FunctionKilled(f"killed at {service}.{operation}")
        if rule.kind == "race" and service == "dynamodb" and operation == "UpdateItem":
            if _raceable(params):
                self._race(params, operation)
            return None
        if rule.kind == "race" and service == "dynamodb" and operation == "TransactWriteItems":
            # a transaction's conditional state update (not its hash ADD) committed first by a competitor
            for item in params.get("TransactItems") or []:
                if _raceable(item.get("Update") or {}):
                    self._race(item["Update"], operation)
            return None
        if rule.kind == "partial" and service == "events" and operation == "PutEvents":
            entries = list(params.get("Entries") or [])
            failed = sorted({self._rng.randrange(len(entries)) for _ in range(max(1, len(entries) // 3))})
            context["injected_failures"] = (failed, rule.code, len(entries))
            return {**params, "Entries": [e for i, e in enumerate(entries) if i not in failed]}
        return None

    def _race(self, params: dict[str, Any], operation: str) -> None:
        """Commit the same conditional update first, as a concurrent invocation would (counted as
        ``raced:dynamodb.<operation>`` when the competitor's write committed)."""
        if self.racer is None:
            return
        self._local.quiet = True
        try:
            self.racer.update_item(**{k: v for k, v in params.items() if k != "ReturnValues"})
        except Exception:  # noqa: S110 - the competing write lost its own condition: no race then
            pass
        else:
            with self._lock:
                self.injected[f"raced:dynamodb.{operation}"] += 1
        finally:
            self._local.quiet = False

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        injected = context.get("injected_failures")
        if injected is None:
            service, operation = self._names(model)
            rule = self._pick({"fail"}, service, operation)
            if rule is None:
                return None
            error = {"Code": rule.code, "Message": "injected by the local stack"}
            return _Http(rule.status), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": rule.status}}
        failed, code, total = injected
        if len(failed) < total:
            return None
        # every entry failed: nothing to send, answer as PutEvents would
        context.pop("injected_failures")
        entries = [{"ErrorCode": code, "ErrorMessage": "injected by the local stack"} for _ in range(total)]
        return _Http(200), {"FailedEntryCount": total, "Entries": entries, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def _after_put_events(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        injected = context.pop("injected_failures", None)
        if injected is None or not isinstance(parsed, dict) or "Entries" not in parsed:
            return
        failed, code, total = injected
        delivered = iter(parsed["Entries"])
        entries = [
            {"ErrorCode": code, "ErrorMessage": "injected by the local stack"} if i in failed else next(delivered)
            for i in range(total)
        ]
        parsed["Entries"] = entries
        parsed["FailedEntryCount"] = sum(1 for e in entries if e.get("ErrorCode"))

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> Any:
        service_id, operation = [*event_name.split("."), "", "", ""][1:3]
        service = SERVICE_IDS.get(service_id, service_id)
        rule = self._pick({"error", "latency"}, service, operation)
        if rule is None:
            return None
        if rule.kind == "latency":
            time.sleep(rule.seconds)
            return None
        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        body, fields = _error_body(service, rule.code)
        headers = HTTPHeaders()
        for name, value in fields.items():
            headers[name] = value
        return AWSResponse(request.url, rule.status, headers, _RawBody(body))


#: botocore's hyphenized service ids (in event names) -> service names (in rules)
SERVICE_IDS = {"eventbridge": "events", "dynamodb-streams": "dynamodbstreams"}


def _error_body(service: str, code: str) -> tuple[bytes, dict[str, str]]:
    if service == "s3":
        xml = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>injected</Message></Error>'
        return xml.encode(), {"Content-Type": "application/xml"}
    body = json.dumps({"__type": code, "message": "injected by the local stack"}).encode()
    return body, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}


def _raceable(update: dict[str, Any]) -> bool:
    """A conditional update that sets state (a hash-set ``ADD`` is not raced: it has no competitor to lose to)."""
    return bool(update.get("ConditionExpression")) and " ADD " not in f" {update.get('UpdateExpression', '')}"
