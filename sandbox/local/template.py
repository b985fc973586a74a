"""Read a SAM template into a wiring plan: the single source of truth for the local stack.

* :func:`load_template` parses the YAML with the CloudFormation short forms (``!Ref``, ``!Sub``,
  ``!GetAtt``, ``!If``, ``!Not``, ``!Equals``...) into the long forms (``{"Ref": ...}``,
  ``{"Fn::Sub": ...}``).
* :class:`Resolver` evaluates intrinsics against parameters (defaults + overrides), conditions,
  pseudo parameters and the physical identifiers of the resources (predicted, or recorded by the
  provisioner as it creates them: KMS key ids and secret ARNs are only known then).
* :func:`build_plan` turns the template into a :class:`Plan`: every function with its handler module,
  resolved environment and events (HTTP API routes, SQS sources, schedules, rules), and every queue,
  table, topic, rule and state machine. A resource type or event type the runner cannot wire raises
  :class:`UnsupportedTemplate` - the no-drift guarantee.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
STACK_NAME = "parcelhub-local"

NO_VALUE = object()
#: a function's URL: served by the runner on a loopback port of its own
FUNCTION_URL_TYPE = "AWS::Lambda::Url"


class UnsupportedTemplate(Exception):
    """The template declares something the local runner does not wire."""


# ----------------------------------------------------------------------------------------- YAML


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        logical, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path | str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise UnsupportedTemplate(f"{path}: not a CloudFormation/SAM template")
    return document


# ----------------------------------------------------------------------------------------- physical ids


def _short_id(*parts: str, length: int = 10) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 2 * length, 2))


def generated_role_name(logical: str) -> str:
    """CloudFormation names a role without ``RoleName`` ``<stack>-<logical>-<suffix>`` (a random suffix of
    12 upper-case characters; locally a stable one), so a key policy can name it by pattern."""
    return f"{STACK_NAME}-{logical}-{_short_id(logical, length=12).upper()}"[:64]


#: resource type -> the property holding its name (absent: a generated ``<stack>-<logical>`` name)
NAME_PROPERTIES: dict[str, str] = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Events::Connection": "Name",
    "AWS::Events::ApiDestination": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::Serverless::LayerVersion": "LayerName",
}


def predict_physical(logical: str, rtype: str, name: str) -> dict[str, str]:  # noqa: PLR0911, PLR0912 - a table
    """``{"Ref": ..., <attribute>: ...}`` as CloudFormation would give them (ids that AWS generates are
    predicted deterministically; the provisioner overwrites them with moto's)."""
    arn = f"arn:{PARTITION}:{{service}}:{REGION}:{ACCOUNT_ID}:{{resource}}"
    if rtype == "AWS::DynamoDB::Table":
        table_arn = arn.format(service="dynamodb", resource=f"table/{name}")
        return {"Ref": name, "Arn": table_arn, "StreamArn": f"{table_arn}/stream/2000-01-01T00:00:00.000"}
    if rtype == "AWS::SQS::Queue":
        url = f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT_ID}/{name}"
        return {"Ref": url, "QueueUrl": url, "QueueName": name, "Arn": arn.format(service="sqs", resource=name)}
    if rtype == "AWS::SNS::Topic":
        topic_arn = arn.format(service="sns", resource=name)
        return {"Ref": topic_arn, "TopicArn": topic_arn, "TopicName": name}
    if rtype == "AWS::Events::EventBus":
        return {"Ref": name, "Name": name, "Arn": arn.format(service="events", resource=f"event-bus/{name}")}
    if rtype == "AWS::Events::Connection":
        resource = f"connection/{name}/{uuid.uuid5(uuid.NAMESPACE_URL, logical)}"
        return {"Ref": name, "Arn": arn.format(service="events", resource=resource)}
    if rtype == "AWS::Events::ApiDestination":
        resource = f"api-destination/{name}/{uuid.uuid5(uuid.NAMESPACE_URL, logical)}"
        return {"Ref": name, "Arn": arn.format(service="events", resource=resource)}
    if rtype == "AWS::KMS::Key":
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{STACK_NAME}/{logical}"))
        return {"Ref": key_id, "KeyId": key_id, "Arn": arn.format(service="kms", resource=f"key/{key_id}")}
    if rtype == "AWS::SSM::Parameter":
        return {"Ref": name, "Type": "String"}
    if rtype == "AWS::SecretsManager::Secret":
        secret_arn = arn.format(service="secretsmanager", resource=f"secret:{name}-{_short_id(logical, length=6)}")
        return {"Ref": secret_arn, "Id": secret_arn}
    if rtype == "AWS::S3::Bucket":
        return {
            "Ref": name,
            "Arn": f"arn:{PARTITION}:s3:::{name}",
            "DomainName": f"{name}.s3.{URL_SUFFIX}",
            "RegionalDomainName": f"{name}.s3.{REGION}.{URL_SUFFIX}",
        }
    if rtype == "AWS::IAM::Role":
        return {"Ref": name, "Arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}", "RoleId": _short_id(name)}
    if rtype == "AWS::Logs::LogGroup":
        return {"Ref": name, "Arn": arn.format(service="logs", resource=f"log-group:{name}:*")}
    if rtype == "AWS::CloudWatch::Alarm":
        return {"Ref": name, "Arn": arn.format(service="cloudwatch", resource=f"alarm:{name}")}
    if rtype == "AWS::Serverless::Function":
        return {"Ref": name, "Arn": arn.format(service="lambda", resource=f"function:{name}")}
    if rtype == "AWS::Serverless::StateMachine":
        sm_arn = arn.format(service="states", resource=f"stateMachine:{name}")
        return {"Ref": sm_arn, "Arn": sm_arn, "Name": name}
    if rtype == "AWS::Serverless::LayerVersion":
        return {"Ref": arn.format(service="lambda", resource=f"layer:{name}:1")}
    if rtype in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api"):
        return {"Ref": _short_id(STACK_NAME, logical)}
    if rtype == FUNCTION_URL_TYPE:
        url_id = _short_id(STACK_NAME, logical, length=32).lower()
        function_arn = arn.format(service="lambda", resource=f"function:{name}")
        return {
            "Ref": function_arn,
            "FunctionArn": function_arn,
            "FunctionUrl": f"https://{url_id}.lambda-url.{REGION}.on.aws/",
        }
    if rtype == "AWS::Events::Rule":
        return {"Ref": name, "Arn": arn.format(service="events", resource=f"rule/{name}")}
    return {"Ref": f"{STACK_NAME}-{logical}"}


# ----------------------------------------------------------------------------------------- intrinsics


class Resolver:
    """Evaluates CloudFormation intrinsics. ``physical`` holds ids recorded by the provisioner."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameter_overrides: Mapping[str, str] | None = None,
        physical: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = dict(template.get("Resources") or {})
        self.physical: dict[str, dict[str, str]] = physical if physical is not None else {}
        self.parameters = self._parameters(parameter_overrides or {})
        self._conditions: dict[str, bool] = {}
        self._resolving: set[str] = set()

    # ---- parameters and conditions
    def _parameters(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        declared = self.template.get("Parameters") or {}
        unknown = set(overrides) - set(declared)
        if unknown:
            raise UnsupportedTemplate(f"unknown parameter overrides: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            elif str(spec.get("NoEcho")).lower() == "true":
                # a secret the template leaves to the deployer (no default): a random one per local start
                value = secrets.token_urlsafe(24)
            else:
                raise UnsupportedTemplate(f"parameter {name} has no Default and no override")
            if str(spec.get("Type", "String")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                values[name] = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            else:
                values[name] = str(value)
            allowed = spec.get("AllowedValues")
            if allowed is not None and str(values[name]) not in [str(a) for a in allowed]:
                raise UnsupportedTemplate(f"parameter {name}={values[name]!r} not in AllowedValues")
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise UnsupportedTemplate(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def resource_enabled(self, logical: str) -> bool:
        condition = self.resources[logical].get("Condition")
        return True if condition is None else self.condition(condition)

    # ---- refs
    def pseudo(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/"
            + str(uuid.uuid5(uuid.NAMESPACE_URL, STACK_NAME)),
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in pseudo:
            raise UnsupportedTemplate(f"unknown pseudo parameter {name}")
        return pseudo[name]

    def name_of(self, logical: str) -> str:
        """The physical name of a resource: its name property, or ``<stack>-<logical>``."""
        resource = self.resources[logical]
        rtype = resource["Type"]
        prop = NAME_PROPERTIES.get(rtype)
        properties = resource.get("Properties") or {}
        if prop and prop in properties:
            if logical in self._resolving:
                raise UnsupportedTemplate(f"{logical}: its name refers to itself")
            self._resolving.add(logical)
            try:
                return str(self.resolve(properties[prop]))
            finally:
                self._resolving.discard(logical)
        if rtype == "AWS::IAM::Role":
            return generated_role_name(logical)
        if rtype == FUNCTION_URL_TYPE:  # named by its function
            return self.name_of(str(properties["TargetFunctionArn"]["Ref"]))
        generated = f"{STACK_NAME}-{logical}"
        if rtype == "AWS::SQS::Queue" and properties.get("FifoQueue"):
            generated += ".fifo"
        return generated

    def ids(self, logical: str) -> dict[str, str]:
        if logical not in self.resources:
            raise UnsupportedTemplate(f"reference to unknown resource {logical}")
        predicted = predict_physical(logical, self.resources[logical]["Type"], self.name_of(logical))
        return {**predicted, **self.physical.get(logical, {})}

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        return self.ids(name)["Ref"]

    def get_att(self, logical: str, attribute: str) -> str:
        ids = self.ids(logical)
        if attribute not in ids:
            raise UnsupportedTemplate(f"!GetAtt {logical}.{attribute} is not known to the local runner")
        return ids[attribute]

    # ---- evaluation
    def resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(self.resolve(logical), self.resolve(attribute))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(a) for a in arg)
                return self.resolve(self.template["Mappings"][mapping][top][second])
            if key == "Fn::Base64":
                import base64

                return base64.b64encode(str(self.resolve(arg)).encode()).decode()
            if key == "Fn::GetAZs":
                return [f"{REGION}{zone}" for zone in "abcdef"]
            if key.startswith("Fn::"):
                raise UnsupportedTemplate(f"intrinsic {key} is not supported by the local runner")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical, attribute = expression.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


# ----------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class HttpRoute:
    function: str  # logical id
    event: str
    api: str  # logical id of the HttpApi
    method: str  # upper-case, or ANY
    path: str  # /v1/shipments/{shipment_id}
    stage: str

    @property
    def route_key(self) -> str:
        """``POST /v1/shipments``; the catch-all route (and a function URL's) is ``$default`` itself."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class FunctionUrl:
    """A function's URL (an ``AWS::Lambda::Url`` resource): every method and path of its host invokes it."""

    function: str  # logical id
    logical: str  # the ``AWS::Lambda::Url`` resource's logical id
    auth_type: str  # NONE or AWS_IAM
    invoke_mode: str  # BUFFERED or RESPONSE_STREAM

    def route(self) -> HttpRoute:
        """The one route a function URL has: ``$default`` (its events' route key and stage)."""
        return HttpRoute(
            function=self.function,
            event="FunctionUrl",
            api=self.logical,
            method="ANY",
            path="$default",
            stage="$default",
        )


@dataclass(frozen=True)
class SqsSource:
    function: str
    event: str
    queue: str  # logical id
    queue_arn: str
    batch_size: int
    batching_window_seconds: float
    report_batch_item_failures: bool
    enabled: bool = True


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB stream event source (``Type: DynamoDB``), polled like Lambda's event source mapping."""

    function: str
    event: str
    table: str  # logical id
    stream_arn: str
    starting_position: str  # TRIM_HORIZON | LATEST
    batch_size: int
    batching_window_seconds: float
    report_batch_item_failures: bool
    bisect_on_error: bool
    maximum_retry_attempts: int  # -1: until the record expires
    on_failure_queue: str | None  # logical id of the OnFailure SQS destination
    filters: tuple[dict[str, Any], ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class Schedule:
    function: str | None  # None: a rule-level schedule with targets
    event: str
    expression: str
    kind: str  # "Schedule" | "ScheduleV2" | "Rule"
    name: str
    enabled: bool = True
    input: str | None = None
    rule: str | None = None  # logical id when kind == "Rule"


@dataclass(frozen=True)
class RuleTarget:
    id: str
    kind: str  # "sns" | "api-destination" | "lambda" | "sqs" | "events"
    arn: str
    logical: str | None  # the target resource's logical id when in this template
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    retry_attempts: int = 185
    max_event_age_seconds: int = 86400
    dead_letter_arn: str | None = None
    http_parameters: dict[str, Any] | None = None
    role_arn: str | None = None  # the role EventBridge assumes to reach the target (API destinations)


@dataclass(frozen=True)
class Rule:
    logical: str
    name: str
    bus: str
    event_pattern: dict[str, Any] | None
    enabled: bool
    targets: tuple[RuleTarget, ...]
    source: str  # "resource" | "function-event"


@dataclass(frozen=True)
class Function:
    logical: str
    name: str
    arn: str
    code_uri: str
    handler: str
    module: str
    attribute: str
    source: str  # the handler file, relative to the template's folder
    timeout: int
    memory: int
    environment: dict[str, str]
    reserved_concurrency: int | None


@dataclass(frozen=True)
class Queue:
    logical: str
    name: str
    arn: str
    url: str
    attributes: dict[str, str]  # as CreateQueue takes them (unscaled)
    max_receive_count: int | None


@dataclass(frozen=True)
class StateMachine:
    logical: str
    name: str
    arn: str
    type: str
    definition: str


@dataclass
class Plan:
    parameters: dict[str, Any]
    functions: dict[str, Function] = field(default_factory=dict)
    routes: list[HttpRoute] = field(default_factory=list)
    sqs_sources: list[SqsSource] = field(default_factory=list)
    stream_sources: list[StreamSource] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    queues: dict[str, Queue] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)  # logical -> name
    topics: dict[str, str] = field(default_factory=dict)  # logical -> arn
    buses: dict[str, str] = field(default_factory=dict)  # logical -> name
    state_machines: dict[str, StateMachine] = field(default_factory=dict)
    http_apis: dict[str, str] = field(default_factory=dict)  # logical -> stage
    function_urls: dict[str, FunctionUrl] = field(default_factory=dict)  # function logical -> its URL
    resources: dict[str, str] = field(default_factory=dict)  # logical -> type (enabled ones)
    skipped: dict[str, str] = field(default_factory=dict)  # logical -> why it is not wired locally


#: resource types provisioned in moto (see provision.py) or served by the runner itself
WIRED_TYPES = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
        "AWS::Events::Connection",
        "AWS::Events::ApiDestination",
        "AWS::KMS::Key",
        "AWS::SSM::Parameter",
        "AWS::SecretsManager::Secret",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::Serverless::Function",
        "AWS::Serverless::StateMachine",
        "AWS::Serverless::HttpApi",
        FUNCTION_URL_TYPE,
        "AWS::Lambda::Permission",  # checked by the local IAM model (iam.py) where a caller invokes
    }
)

#: resource types deliberately not wired, and why
SKIPPED_TYPES: dict[str, str] = {
    "AWS::CloudWatch::Alarm": "alarms are not evaluated locally (moto does not evaluate metrics)",
    "AWS::Serverless::LayerVersion": "the layer is installed editable into the venv (same process)",
    "AWS::Glue::Database": "Athena is not emulated: tools.history queries the same S3 files with DuckDB",
    "AWS::Glue::Table": "Athena is not emulated: tools.history queries the same S3 files with DuckDB",
}


SUPPORTED_EVENT_TYPES = frozenset({"HttpApi", "SQS", "DynamoDB", "Schedule", "ScheduleV2", "EventBridgeRule"})
LAMBDA_DEFAULTS = {"Timeout": 3, "MemorySize": 128, "Runtime": "python3.13", "Handler": "handler.lambda_handler"}


def merge_globals(global_section: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge (the resource wins), lists append, primitives are replaced."""
    merged: dict[str, Any] = {}
    for key in set(global_section) | set(properties):
        if key not in properties:
            merged[key] = global_section[key]
        elif key not in global_section:
            merged[key] = properties[key]
        else:
            g, p = global_section[key], properties[key]
            if isinstance(g, dict) and isinstance(p, dict) and not _is_intrinsic(g) and not _is_intrinsic(p):
                merged[key] = merge_globals(g, p)
            elif isinstance(g, list) and isinstance(p, list):
                merged[key] = g + p
            else:
                merged[key] = p
    return merged


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref", "Condition"))


def function_properties(template: Mapping[str, Any], logical: str) -> dict[str, Any]:
    global_function = ((template.get("Globals") or {}).get("Function")) or {}
    properties = template["Resources"][logical].get("Properties") or {}
    return merge_globals(global_function, properties)


def _logical_of_arn_expression(expression: Any) -> str | None:
    """The logical id an ``!Ref X`` / ``!GetAtt X.Arn`` points at (None for literals)."""
    if isinstance(expression, dict) and len(expression) == 1:
        ((key, arg),) = expression.items()
        if key == "Ref" and isinstance(arg, str) and not arg.startswith("AWS::"):
            return arg
        if key == "Fn::GetAtt":
            return arg.split(".", 1)[0] if isinstance(arg, str) else str(arg[0])
    return None


def build_plan(template: Mapping[str, Any], resolver: Resolver, base_dir: Path | None = None) -> Plan:  # noqa: PLR0912
    """Every resource of the template, wired (or raising :class:`UnsupportedTemplate`)."""
    base_dir = base_dir or Path.cwd()
    plan = Plan(parameters=dict(resolver.parameters))
    resources: dict[str, Any] = template["Resources"]

    for logical, resource in resources.items():
        rtype = resource.get("Type", "")
        if not resolver.resource_enabled(logical):
            plan.skipped[logical] = f"condition {resource['Condition']} is false"
            continue
        if rtype in SKIPPED_TYPES:
            plan.skipped[logical] = SKIPPED_TYPES[rtype]
            continue
        if rtype not in WIRED_TYPES:
            raise UnsupportedTemplate(f"{logical}: resource type {rtype} is not wired by the local runner")
        plan.resources[logical] = rtype
        properties = resource.get("Properties") or {}
        ids = resolver.ids(logical)
        if rtype == "AWS::DynamoDB::Table":
            plan.tables[logical] = ids["Ref"]
        elif rtype == "AWS::SQS::Queue":
            plan.queues[logical] = _queue(logical, properties, resolver)
        elif rtype == "AWS::SNS::Topic":
            plan.topics[logical] = ids["Ref"]
        elif rtype == "AWS::Events::EventBus":
            plan.buses[logical] = ids["Ref"]
        elif rtype == "AWS::Events::Rule":
            plan.rules.append(_rule(logical, properties, resolver, resources))
            if properties.get("ScheduleExpression"):
                plan.schedules.append(
                    Schedule(
                        function=None,
                        event=logical,
                        expression=str(resolver.resolve(properties["ScheduleExpression"])),
                        kind="Rule",
                        name=resolver.name_of(logical),
                        enabled=str(resolver.resolve(properties.get("State", "ENABLED"))) == "ENABLED",
                        rule=logical,
                    )
                )
        elif rtype == "AWS::Serverless::HttpApi":
            plan.http_apis[logical] = str(resolver.resolve(properties.get("StageName", "$default")))
        elif rtype == FUNCTION_URL_TYPE:
            if "Qualifier" in properties:
                raise UnsupportedTemplate(f"{logical}: a function URL of an alias is not served locally")
            function = _logical_of_arn_expression(properties.get("TargetFunctionArn")) or ""
            if resources.get(function, {}).get("Type") != "AWS::Serverless::Function":
                raise UnsupportedTemplate(f"{logical}: TargetFunctionArn must be a function of this template")
            plan.function_urls[function] = FunctionUrl(
                function=function,
                logical=logical,
                auth_type=str(resolver.resolve(properties.get("AuthType", ""))),
                invoke_mode=str(resolver.resolve(properties.get("InvokeMode", "BUFFERED"))),
            )
        elif rtype == "AWS::Serverless::StateMachine":
            plan.state_machines[logical] = _state_machine(logical, properties, resolver, base_dir)

    for logical, rtype in list(plan.resources.items()):
        if rtype == "AWS::Serverless::Function":
            _function(template, logical, resolver, plan)
    return plan


def _queue(logical: str, properties: Mapping[str, Any], resolver: Resolver) -> Queue:
    ids = resolver.ids(logical)
    resolved = resolver.resolve(dict(properties))
    attributes: dict[str, str] = {}
    for prop in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
    ):
        if prop in resolved:
            value = resolved[prop]
            attributes[prop] = str(value).lower() if isinstance(value, bool) else str(value)
    redrive = resolved.get("RedrivePolicy")
    max_receive: int | None = None
    if redrive:
        max_receive = int(redrive["maxReceiveCount"])
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": redrive["deadLetterTargetArn"], "maxReceiveCount": str(max_receive)}
        )
    return Queue(
        logical=logical,
        name=ids["QueueName"],
        arn=ids["Arn"],
        url=ids["QueueUrl"],
        attributes=attributes,
        max_receive_count=max_receive,
    )


def _target_kind(arn: str) -> str:
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
    if service == "events" and resource.startswith("api-destination/"):
        return "api-destination"
    if service in ("sns", "sqs", "lambda"):
        return service
    if service == "events" and resource.startswith("event-bus/"):
        return "events"
    raise UnsupportedTemplate(f"rule target {arn} is not delivered by the local runner")


def _rule_target(raw: Mapping[str, Any], resolver: Resolver) -> RuleTarget:
    target = resolver.resolve(dict(raw))
    arn = str(target["Arn"])
    retry = target.get("RetryPolicy") or {}
    return RuleTarget(
        id=str(target["Id"]),
        kind=_target_kind(arn),
        arn=arn,
        logical=_logical_of_arn_expression(raw["Arn"]),
        input=target.get("Input"),
        input_path=target.get("InputPath"),
        input_transformer=target.get("InputTransformer"),
        retry_attempts=int(retry.get("MaximumRetryAttempts", 185)),
        max_event_age_seconds=int(retry.get("MaximumEventAgeInSeconds", 86400)),
        dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
        http_parameters=target.get("HttpParameters"),
        role_arn=target.get("RoleArn"),
    )


def _rule(logical: str, properties: Mapping[str, Any], resolver: Resolver, resources: Mapping[str, Any]) -> Rule:
    bus_expression = properties.get("EventBusName", "default")
    bus = str(resolver.resolve(bus_expression))
    if bus.startswith("arn:"):
        bus = bus.rsplit("/", 1)[-1]
    pattern = resolver.resolve(properties.get("EventPattern")) if properties.get("EventPattern") else None
    return Rule(
        logical=logical,
        name=resolver.name_of(logical),
        bus=bus,
        event_pattern=pattern,
        enabled=str(resolver.resolve(properties.get("State", "ENABLED"))) == "ENABLED",
        targets=tuple(_rule_target(t, resolver) for t in properties.get("Targets") or []),
        source="resource",
    )


def _state_machine(logical: str, properties: Mapping[str, Any], resolver: Resolver, base_dir: Path) -> StateMachine:
    ids = resolver.ids(logical)
    if "Definition" in properties:
        definition = json.dumps(resolver.resolve(properties["Definition"]))
    elif "DefinitionUri" in properties:
        uri = resolver.resolve(properties["DefinitionUri"])
        if not isinstance(uri, str):
            raise UnsupportedTemplate(f"{logical}: DefinitionUri must be a local file")
        definition = (base_dir / uri).read_text(encoding="utf-8")
    else:
        raise UnsupportedTemplate(f"{logical}: no Definition or DefinitionUri")
    substitutions = resolver.resolve(properties.get("DefinitionSubstitutions") or {})
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", str(value))
    leftover = re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition)
    if leftover:
        raise UnsupportedTemplate(f"{logical}: DefinitionSubstitutions missing for {sorted(set(leftover))}")
    json.loads(definition)  # a broken definition fails here, not at StartExecution
    return StateMachine(
        logical=logical,
        name=ids["Name"],
        arn=ids["Arn"],
        type=str(resolver.resolve(properties.get("Type", "STANDARD"))),
        definition=definition,
    )


def _function(template: Mapping[str, Any], logical: str, resolver: Resolver, plan: Plan) -> None:
    properties = function_properties(template, logical)
    if properties.get("InlineCode") or properties.get("PackageType") == "Image":
        raise UnsupportedTemplate(f"{logical}: only CodeUri functions are run locally")
    code_uri = str(resolver.resolve(properties.get("CodeUri", "")))
    handler = str(resolver.resolve(properties.get("Handler", LAMBDA_DEFAULTS["Handler"])))
    module_file, _, attribute = handler.rpartition(".")
    if not code_uri or not module_file or Path(code_uri).is_absolute() or ".." in Path(code_uri).parts:
        raise UnsupportedTemplate(f"{logical}: CodeUri {code_uri!r} / Handler {handler!r} not runnable locally")
    module = ".".join([*Path(code_uri).parts, *module_file.split("/")])
    variables = resolver.resolve((properties.get("Environment") or {}).get("Variables") or {})
    ids = resolver.ids(logical)
    reserved = resolver.resolve(properties.get("ReservedConcurrentExecutions", NO_VALUE))
    plan.functions[logical] = Function(
        logical=logical,
        name=ids["Ref"],
        arn=ids["Arn"],
        code_uri=code_uri,
        handler=handler,
        module=module,
        attribute=attribute,
        source=str(Path(code_uri, module_file + ".py")),
        timeout=int(resolver.resolve(properties.get("Timeout", LAMBDA_DEFAULTS["Timeout"]))),
        memory=int(resolver.resolve(properties.get("MemorySize", LAMBDA_DEFAULTS["MemorySize"]))),
        environment={str(k): str(v) for k, v in variables.items()},
        reserved_concurrency=None if reserved is NO_VALUE else int(reserved),
    )
    if properties.get("FunctionUrlConfig") is not None:
        raise UnsupportedTemplate(f"{logical}: declare its URL as an AWS::Lambda::Url resource (FunctionUrlConfig)")
    for event_name, event in (properties.get("Events") or {}).items():
        etype = event.get("Type")
        if etype not in SUPPORTED_EVENT_TYPES:
            raise UnsupportedTemplate(f"{logical}.{event_name}: event type {etype} is not wired by the local runner")
        raw = event.get("Properties") or {}
        props = resolver.resolve(raw)
        if etype == "HttpApi":
            api = _logical_of_arn_expression(raw.get("ApiId")) or "ServerlessHttpApi"
            if api not in plan.http_apis:
                plan.http_apis.setdefault(api, "$default")
            plan.routes.append(
                HttpRoute(
                    function=logical,
                    event=event_name,
                    api=api,
                    method=str(props.get("Method", "ANY")).upper().replace("X-AMAZON-APIGATEWAY-ANY-METHOD", "ANY"),
                    path=str(props.get("Path", "$default")),
                    stage=plan.http_apis[api],
                )
            )
        elif etype == "SQS":
            queue = _logical_of_arn_expression(raw.get("Queue"))
            if queue is None or queue not in plan.queues:
                raise UnsupportedTemplate(f"{logical}.{event_name}: SQS Queue must be a queue of this template")
            plan.sqs_sources.append(
                SqsSource(
                    function=logical,
                    event=event_name,
                    queue=queue,
                    queue_arn=str(props["Queue"]),
                    batch_size=int(props.get("BatchSize", 10)),
                    batching_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    enabled=bool(props.get("Enabled", True)),
                )
            )
        elif etype == "DynamoDB":
            plan.stream_sources.append(_stream_source(logical, event_name, raw, props, plan))
        elif etype in ("Schedule", "ScheduleV2"):
            enabled = bool(props.get("Enabled", True)) and str(props.get("State", "ENABLED")) == "ENABLED"
            plan.schedules.append(
                Schedule(
                    function=logical,
                    event=event_name,
                    expression=str(props["Schedule"] if etype == "Schedule" else props["ScheduleExpression"]),
                    kind=etype,
                    name=str(props.get("Name") or f"{ids['Ref']}-{event_name}"),
                    enabled=enabled,
                    input=props.get("Input"),
                )
            )
        elif etype == "EventBridgeRule":
            bus = str(props.get("EventBusName", "default"))
            plan.rules.append(
                Rule(
                    logical=f"{logical}{event_name}",
                    name=str(props.get("RuleName") or f"{ids['Ref']}-{event_name}"),
                    bus=bus.rsplit("/", 1)[-1],
                    event_pattern=props.get("Pattern"),
                    enabled=str(props.get("State", "ENABLED")) == "ENABLED",
                    targets=(
                        RuleTarget(
                            id=str((props.get("Target") or {}).get("Id") or f"{logical}{event_name}Target"),
                            kind="lambda",
                            arn=ids["Arn"],
                            logical=logical,
                            input=props.get("Input"),
                            input_path=props.get("InputPath"),
                            input_transformer=props.get("InputTransformer"),
                        ),
                    ),
                    source="function-event",
                )
            )


def _stream_source(
    logical: str, event_name: str, raw: Mapping[str, Any], props: Mapping[str, Any], plan: Plan
) -> StreamSource:
    table = _logical_of_arn_expression(raw.get("Stream"))
    if table is None or table not in plan.tables:
        raise UnsupportedTemplate(
            f"{logical}.{event_name}: Stream must be a table of this template (!GetAtt T.StreamArn)"
        )
    on_failure = ((raw.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    queue = _logical_of_arn_expression(on_failure) if on_failure is not None else None
    if on_failure is not None and (queue is None or queue not in plan.queues):
        raise UnsupportedTemplate(f"{logical}.{event_name}: the OnFailure destination must be a queue of this template")
    filters = tuple(
        json.loads(entry["Pattern"]) if isinstance(entry["Pattern"], str) else dict(entry["Pattern"])
        for entry in (props.get("FilterCriteria") or {}).get("Filters") or []
    )
    for pattern in filters:
        check_pattern(pattern)
    return StreamSource(
        function=logical,
        event=event_name,
        table=table,
        stream_arn=str(props["Stream"]),
        starting_position=str(props.get("StartingPosition", "LATEST")),
        batch_size=int(props.get("BatchSize", 100)),
        batching_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
        maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
        on_failure_queue=queue,
        filters=filters,
        enabled=bool(props.get("Enabled", True)),
    )


def check_pattern(pattern: Any) -> None:
    """The filter patterns the runner matches: nested objects whose leaves are lists of exact values."""
    if not isinstance(pattern, dict):
        raise UnsupportedTemplate(f"filter pattern {pattern!r} is not an object")
    for value in pattern.values():
        if isinstance(value, dict):
            check_pattern(value)
        elif not (isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value)):
            raise UnsupportedTemplate(f"filter pattern value {value!r}: only lists of exact values are matched locally")


def matches(pattern: Mapping[str, Any], document: Any) -> bool:
    """Whether an event source filter pattern (of :func:`check_pattern`'s kind) matches a record."""
    if not isinstance(document, Mapping):
        return False
    for key, expected in pattern.items():
        if key not in document:
            return False
        if isinstance(expected, Mapping):
            if not matches(expected, document[key]):
                return False
        elif document[key] not in expected:
            return False
    return True


def iter_event_sources(template: Mapping[str, Any]) -> Iterable[tuple[str, str, str]]:
    """``(function logical id, event name, event type)`` for every function event in the template."""
    for logical, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            for name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
                yield logical, name, str(event.get("Type"))
