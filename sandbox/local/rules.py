"""EventBridge rule delivery and the topic recorder.

moto 5.2 matches event patterns but delivers only to SQS, log groups and buses: an SNS target raises
``NotImplementedError`` inside ``PutEvents`` and its API-destination call sends no body and no auth.
So every rule target is provisioned as a *shadow* SQS queue: moto's (real) pattern matching puts the
full event there, and a :class:`TargetDeliverer` delivers it as the template says:

* ``InputTransformer`` / ``Input`` / ``InputPath`` applied here (placeholders inside a JSON string are
  escaped, so messages with quotes or newlines stay valid - moto's own transformer breaks on them);
* SNS topic -> ``Publish``; API destination -> HTTP with the connection's API-key (or basic) header;
  Lambda -> the real handler; SQS -> ``SendMessage``; event bus -> ``PutEvents``;
* a failed delivery is retried (the message reappears after 1 s) up to ``RetryPolicy.MaximumRetryAttempts``
  / ``MaximumEventAgeInSeconds``, then goes to the target's ``DeadLetterConfig`` queue with the
  ``RULE_ARN``/``TARGET_ARN``/``ERROR_CODE``/``ERROR_MESSAGE`` attributes EventBridge sets.

:class:`TopicRecorder` reads each topic's shadow subscription and appends every published message
to ``alerts.jsonl`` (and prints it), whoever published it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from sandbox.local.template import ACCOUNT_ID, REGION, Rule, RuleTarget

log = logging.getLogger("parcelhub.local")


# ------------------------------------------------------------------------------------- transformer


def json_path(document: Any, path: str) -> Any:
    """A value by a simple JSONPath (``$.detail.alert.message``, ``$.resources[0]``); None if absent."""
    if path == "$":
        return document
    if not path.startswith("$."):
        raise ValueError(f"unsupported JSONPath {path!r}")
    current = document
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", path[2:]):
        if token.startswith("["):
            index = int(token[1:-1])
            if not isinstance(current, list) or index >= len(current):
                return None
            current = current[index]
        else:
            if not isinstance(current, dict) or token not in current:
                return None
            current = current[token]
    return current


def transform(event: dict[str, Any], target: RuleTarget, rule_name: str) -> str:
    """The text EventBridge sends to the target for this event."""
    if target.input is not None:
        return target.input if isinstance(target.input, str) else json.dumps(target.input)
    if target.input_path:
        return json.dumps(json_path(event, target.input_path))
    transformer = target.input_transformer
    if not transformer:
        return json.dumps(event)
    values: dict[str, Any] = {
        name: json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values["aws.events.rule-arn"] = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"
    values["aws.events.rule-name"] = rule_name
    values["aws.events.event"] = {k: v for k, v in event.items() if k != "detail"}
    values["aws.events.event.json"] = event
    values["aws.events.event.ingestion-time"] = event.get("time")
    template = transformer.get("InputTemplate") or json.dumps(event)
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        if char == "<":
            end = template.find(">", i)
            name = template[i + 1 : end] if end > 0 else ""
            if name in values:
                out.append(_placeholder(values[name], in_string))
                i = end + 1
                continue
        if char == '"' and (i == 0 or template[i - 1] != "\\"):
            in_string = not in_string
        out.append(char)
        i += 1
    return "".join(out)


def _placeholder(value: Any, in_string: bool) -> str:
    if in_string:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return json.dumps(text, ensure_ascii=False)[1:-1]
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False)


# ------------------------------------------------------------------------------------- delivery


class DeliveryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TargetDeliverer:
    """Reads one rule target's shadow queue and delivers each event to the real target."""

    def __init__(
        self,
        rule: Rule,
        target: RuleTarget,
        queue_url: str,
        *,
        client: Callable[[str], Any],
        invoke: Callable[[str, Any], Any],
        api_destinations: dict[str, dict[str, Any]],
        connections: dict[str, dict[str, Any]],
        stop: threading.Event,
        http: requests.Session,
        authorize: Callable[[Rule, RuleTarget, str], str | None] | None = None,
    ) -> None:
        self.rule = rule
        #: ``authorize(rule, target, arn)``: why EventBridge may not deliver to ``arn`` (None: it may)
        self.authorize = authorize
        self.target = target
        self.queue_url = queue_url
        self.client = client
        self.sqs = client("sqs")
        self.invoke = invoke
        self.api_destinations = api_destinations
        self.connections = connections
        self.stop = stop
        self.http = http
        self.thread = threading.Thread(target=self._run, name=f"rule-{rule.name}-{target.id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
                ).get("Messages", [])
            except Exception as exc:
                if self.stop.is_set():
                    return
                log.error("rule %s: %s", self.rule.name, exc)
                self.stop.wait(0.5)
                continue
            for message in messages:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        event = json.loads(message["Body"])
        event.setdefault("account", ACCOUNT_ID)
        event.pop("ingestion-time", None)
        attempts = int(message["Attributes"].get("ApproximateReceiveCount", "1"))
        age = time.time() - int(message["Attributes"].get("SentTimestamp", "0")) / 1000
        try:
            self.deliver(event)
        except Exception as exc:
            error = exc if isinstance(exc, DeliveryError) else DeliveryError(exc.__class__.__name__, str(exc))
            retries_left = attempts <= self.target.retry_attempts and age < self.target.max_event_age_seconds
            log.warning("rule %s -> %s failed (attempt %d): %s", self.rule.name, self.target.id, attempts, error)
            if retries_left:
                return  # reappears after the shadow queue's 1 s visibility timeout
            self._dead_letter(event, error)
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _dead_letter(self, event: dict[str, Any], error: DeliveryError) -> None:
        if not self.target.dead_letter_arn:
            log.error("rule %s -> %s: event %s dropped", self.rule.name, self.target.id, event.get("id"))
            return
        refused = self.authorize(self.rule, self.target, self.target.dead_letter_arn) if self.authorize else None
        if refused:
            log.error("rule %s -> %s: event %s dropped, %s", self.rule.name, self.target.id, event.get("id"), refused)
            return
        queue_name = self.target.dead_letter_arn.rsplit(":", 1)[-1]
        url = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.rule.bus}/{self.rule.name}"
        attributes = {
            "RULE_ARN": rule_arn,
            "TARGET_ARN": self.target.arn,
            "ERROR_CODE": error.code,
            "ERROR_MESSAGE": error.message[:256] or "-",
        }
        self.sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(event),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    def deliver(self, event: dict[str, Any]) -> None:
        refused = self.authorize(self.rule, self.target, self.target.arn) if self.authorize else None
        if refused:
            raise DeliveryError("NO_PERMISSIONS", refused)
        payload = transform(event, self.target, self.rule.name)
        kind = self.target.kind
        if kind == "sns":
            self.client("sns").publish(TopicArn=self.target.arn, Message=payload)
        elif kind == "sqs":
            name = self.target.arn.rsplit(":", 1)[-1]
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=payload)
        elif kind == "lambda":
            if self.target.logical is None:
                raise DeliveryError("ResourceNotFoundException", f"{self.target.arn} is not a template function")
            self.invoke(self.target.logical, json.loads(payload))
        elif kind == "events":
            body = json.loads(payload)
            self.client("events").put_events(
                Entries=[
                    {
                        "Source": body["source"],
                        "DetailType": body["detail-type"],
                        "Detail": json.dumps(body["detail"]),
                        "EventBusName": self.target.arn,
                    }
                ]
            )
        elif kind == "api-destination":
            self._http(payload)
        else:  # pragma: no cover - the plan only builds the kinds above
            raise DeliveryError("UnsupportedTarget", kind)

    def _http(self, payload: str) -> None:
        destination = self.api_destinations.get(self.target.arn)
        if destination is None:
            raise DeliveryError("ResourceNotFoundException", f"api destination {self.target.arn}")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Amazon/EventBridge/ApiDestinations",
        }
        connection = self.connections.get(destination["connection"], {})
        auth = connection.get("auth") or {}
        if connection.get("type") == "API_KEY":
            key = auth["ApiKeyAuthParameters"]
            headers[key["ApiKeyName"]] = key["ApiKeyValue"]
        elif connection.get("type") == "BASIC":
            import base64

            basic = auth["BasicAuthParameters"]
            token = base64.b64encode(f"{basic['Username']}:{basic['Password']}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        parameters = self.target.http_parameters or {}
        headers.update(parameters.get("HeaderParameters") or {})
        url = destination["endpoint"]
        for value in parameters.get("PathParameterValues") or []:
            url = url.replace("*", value, 1)
        response = self.http.request(
            destination["method"],
            url,
            params=parameters.get("QueryStringParameters") or None,
            data=payload.encode("utf-8"),
            headers=headers,
            timeout=5,
        )
        # EventBridge retries 429 and 5xx; other 4xx are final
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError("SDK_CLIENT_ERROR", f"HTTP {response.status_code}")
        if response.status_code >= 400:
            log.error("api destination %s answered %d: not retried", url, response.status_code)


# ------------------------------------------------------------------------------------- topic recorder


class TopicRecorder:
    """Appends every message published to the topics to ``alerts.jsonl`` and prints it."""

    def __init__(
        self,
        queues: dict[str, str],  # topic arn -> shadow queue url
        sqs: Any,
        alerts_file: Path,
        stop: threading.Event,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.queues = queues
        self.sqs = sqs
        self.alerts_file = alerts_file
        self.stop = stop
        self.echo = echo
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(url,), name=f"topic-{arn.rsplit(':', 1)[-1]}", daemon=True)
            for arn, url in queues.items()
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, url: str) -> None:
        while not self.stop.is_set():
            try:
                messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                )
                for message in messages:
                    self.record(json.loads(message["Body"]))
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except Exception as exc:
                if self.stop.is_set():
                    return
                log.error("topic recorder: %s", exc)
                self.stop.wait(0.5)

    def record(self, envelope: dict[str, Any]) -> dict[str, Any]:
        message = str(envelope.get("Message", ""))
        line: dict[str, Any] = {
            "time": envelope.get("Timestamp") or datetime.now(UTC).isoformat(),
            "topic": str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1],
            "subject": envelope.get("Subject"),
            "message": message,
        }
        try:
            decoded = json.loads(message)
        except ValueError:
            decoded = None
        if isinstance(decoded, str):
            line["text"] = decoded  # an InputTransformer template like '"<message>"' publishes a JSON string
        with self._lock:
            self.alerts_file.parent.mkdir(parents=True, exist_ok=True)
            with self.alerts_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.echo(f"[alert] {line['topic']}: {line.get('text', message)}")
        return line
