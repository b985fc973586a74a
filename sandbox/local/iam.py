"""IAM in the local stack: the roles ``sam deploy`` would create, and the decision AWS would make.

* :func:`translate` runs the SAM translator (``samtranslator``, the version ``sam deploy`` uses) over the
  template, as ``sam validate`` does: policy templates expanded, one role per function, per state machine
  and per ``ScheduleV2`` event, the ``AWS::Lambda::Permission`` resources of every event source.
* :class:`IamModel` resolves those roles against the provisioned resources (``!Ref``/``!GetAtt`` give the
  real ARNs, so a statement scoped to one table does not match another) and keeps the resource-based
  policies (topic, queue and key policies, Lambda permissions).
* :func:`evaluate` is IAM's evaluation logic for one request: an explicit ``Deny`` wins, otherwise an
  ``Allow`` whose ``Action``/``NotAction``, ``Resource``/``NotResource`` and ``Condition`` all match is
  needed. Action patterns are case-insensitive, resource patterns are not; ``*`` and ``?`` are wildcards.
  Conditions: the ``String*``, ``Arn*``, ``Bool``, ``Null`` and ``Numeric*`` operators, ``...IfExists``,
  and the ``ForAnyValue:``/``ForAllValues:`` set operators (``kms:EncryptionContextKeys``).

AWS managed policies are not in the template: the actions of the few a SAM function gets are data in
:data:`MANAGED_POLICIES` (from the AWS Managed Policy Reference Guide, linked per entry).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.local.template import ACCOUNT_ID, REGION, Resolver, generated_role_name

Statement = dict[str, Any]

_MANAGED_GUIDE = "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/"
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
_XRAY = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
]

#: what Lambda's event source mapping calls to read a DynamoDB stream with the function's role
STREAM_ESM_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)

#: AWS managed policy name -> (its statements, where they are documented). Every one is ``Resource: *``.
MANAGED_POLICIES: dict[str, tuple[list[Statement], str]] = {
    "AWSLambdaBasicExecutionRole": (
        [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
        _MANAGED_GUIDE + "AWSLambdaBasicExecutionRole.html",
    ),
    "AWSXrayWriteOnlyAccess": (
        [{"Effect": "Allow", "Action": _XRAY, "Resource": "*"}],
        _MANAGED_GUIDE + "AWSXrayWriteOnlyAccess.html",
    ),
    "AWSXRayDaemonWriteAccess": (
        [{"Effect": "Allow", "Action": _XRAY, "Resource": "*"}],
        _MANAGED_GUIDE + "AWSXRayDaemonWriteAccess.html",
    ),
    "AWSLambdaSQSQueueExecutionRole": (
        [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS],
                "Resource": "*",
            }
        ],
        _MANAGED_GUIDE + "AWSLambdaSQSQueueExecutionRole.html",
    ),
    "AWSLambdaDynamoDBExecutionRole": (
        [
            {
                "Effect": "Allow",
                "Action": [*STREAM_ESM_ACTIONS, *_LOGS],
                "Resource": "*",
            }
        ],
        _MANAGED_GUIDE + "AWSLambdaDynamoDBExecutionRole.html",
    ),
}


class UnknownManagedPolicy(Exception):
    """A role attaches an AWS managed policy whose actions are not in :data:`MANAGED_POLICIES`."""


# -------------------------------------------------------------------------------------- translation


def translate(template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``template`` (local code paths replaced by a
    placeholder S3 location first, as ``sam validate`` does: they do not change any role)."""
    import boto3
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    document = copy.deepcopy(dict(template))
    for resource in (document.get("Resources") or {}).values():
        properties = resource.get("Properties")
        if not isinstance(properties, dict):
            continue
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri", ""), str):
            properties["CodeUri"] = "s3://parcelhub-local/code.zip"
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(properties.get("ContentUri", ""), str):
            properties["ContentUri"] = "s3://parcelhub-local/layer.zip"
        elif kind == "AWS::Serverless::StateMachine" and isinstance(properties.get("DefinitionUri"), str):
            properties["DefinitionUri"] = {"Bucket": "parcelhub-local", "Key": "definition.json"}
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated: dict[str, Any] = translator.translate(
        document, parameter_values=dict(parameters or {}), get_managed_policy_map=dict
    )
    return translated


# -------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Request:
    """One authorization question: may the principal perform ``action`` on ``resource``?"""

    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character; nothing else is special."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matches(patterns: Any, value: str, *, ignore_case: bool) -> bool:
    items = patterns if isinstance(patterns, list) else [patterns]
    return any(_pattern(str(p), ignore_case).fullmatch(value) for p in items)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _compare(operator: str, actual: str, expected: str) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual == expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if operator in ("StringLike", "ArnLike"):
        return _pattern(expected, False).fullmatch(actual) is not None
    if operator == "Bool":
        return actual.lower() == expected.lower()
    if operator.startswith("Numeric"):
        left, right = float(actual), float(expected)
        return {
            "NumericEquals": left == right,
            "NumericLessThan": left < right,
            "NumericLessThanEquals": left <= right,
            "NumericGreaterThan": left > right,
            "NumericGreaterThanEquals": left >= right,
        }.get(operator, False)
    raise ValueError(f"condition operator {operator} is not evaluated locally")


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    """One ``operator: {key: values}`` entry (values are OR-ed)."""
    expected_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(expected)]
    set_operator = ""
    if ":" in operator:
        set_operator, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    present = key in context
    if operator == "Null":
        return (not present) == (expected_values[0].lower() == "true")
    if not present:
        return if_exists or operator in _NEGATED or set_operator == "ForAllValues"
    actual_values = [str(v) for v in _listed(context[key])]
    negated = operator in _NEGATED
    base = _NEGATED.get(operator, operator)

    def one(actual: str) -> bool:
        hit = any(_compare(base, actual, value) for value in expected_values)
        return not hit if negated else hit

    if set_operator == "ForAllValues":
        return all(one(actual) for actual in actual_values)
    if set_operator == "ForAnyValue":
        return any(one(actual) for actual in actual_values)
    return one(actual_values[0]) if len(actual_values) == 1 else any(one(a) for a in actual_values)


def _conditions_hold(conditions: Mapping[str, Any] | None, context: Mapping[str, Any]) -> bool:
    for operator, entries in (conditions or {}).items():
        for key, expected in entries.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def _statement_applies(statement: Statement, request: Request) -> bool:
    if "Action" in statement:
        if not _matches(statement["Action"], request.action, ignore_case=True):
            return False
    elif "NotAction" in statement:
        if _matches(statement["NotAction"], request.action, ignore_case=True):
            return False
    else:
        return False
    if "Resource" in statement:
        if not _matches(statement["Resource"], request.resource, ignore_case=False):
            return False
    elif "NotResource" in statement and _matches(statement["NotResource"], request.resource, ignore_case=False):
        return False
    return _conditions_hold(statement.get("Condition"), request.context)


def evaluate(statements: Sequence[Statement], request: Request) -> str:
    """``"allow"``, ``"deny"`` (an explicit Deny matched) or ``"implicit"`` (nothing allows it)."""
    allowed = False
    for statement in statements:
        if not _statement_applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "implicit"


def principal_matches(statement: Statement, principal: str) -> bool:
    """A resource policy statement's ``Principal`` names ``principal`` (a service or an ARN)."""
    named = statement.get("Principal")
    if named == "*":
        return True
    if not isinstance(named, dict):
        return False
    return any(principal in _listed(values) or "*" in _listed(values) for values in named.values())


def _names_aws(statement: Statement, principal: str) -> bool:
    """A key policy statement's ``Principal`` is ``{"AWS": ...}`` naming ``principal`` (or ``"*"``)."""
    named = statement.get("Principal")
    if named == "*":
        return True
    return isinstance(named, dict) and principal in [str(v) for v in _listed(named.get("AWS", []))]


# -------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class BucketEncryption:
    """A bucket's default SSE-KMS: the key's ARN and whether S3 Bucket Keys are on."""

    key_arn: str
    bucket_key: bool


def bucket_encryption(resources: Mapping[str, Any], resolver: Resolver) -> dict[str, BucketEncryption]:
    """Bucket name -> its default SSE-KMS (key ARN, S3 Bucket Key), for the buckets of the template that
    encrypt with a KMS key."""
    buckets: dict[str, BucketEncryption] = {}
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        encryption = (resource.get("Properties") or {}).get("BucketEncryption") or {}
        for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
            default = rule.get("ServerSideEncryptionByDefault") or {}
            if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
                key = str(resolver.resolve(default["KMSMasterKeyID"]))
                if not key.startswith("arn:"):
                    key = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key}"
                name = str(resolver.ids(logical)["Ref"])
                buckets[name] = BucketEncryption(key, str(rule.get("BucketKeyEnabled", "false")).lower() == "true")
    return buckets


@dataclass
class Role:
    logical: str
    name: str
    arn: str
    trusted: frozenset[str]  # service principals the trust policy lets assume it
    statements: list[Statement]
    managed: list[str]


@dataclass(frozen=True)
class LambdaPermission:
    function: str  # logical id
    principal: str
    source_arn: str | None
    action: str = "lambda:InvokeFunction"
    url_auth_type: str | None = None  # FunctionUrlAuthType: the permission is for the function's URL
    via_function_url: bool = False  # InvokedViaFunctionUrl: InvokeFunction only through the URL


@dataclass
class IamModel:
    """The stack's IAM as deployed: roles by logical id, who uses which, resource-based policies."""

    roles: dict[str, Role] = field(default_factory=dict)
    function_roles: dict[str, str] = field(default_factory=dict)  # function logical -> role logical
    state_machine_roles: dict[str, str] = field(default_factory=dict)
    schedule_roles: dict[str, str] = field(default_factory=dict)  # schedule name -> role logical
    permissions: list[LambdaPermission] = field(default_factory=list)
    resource_policies: dict[str, list[Statement]] = field(default_factory=dict)  # resource ARN -> statements
    buckets: dict[str, BucketEncryption] = field(default_factory=dict)  # bucket name -> its default SSE-KMS

    @classmethod
    def build(cls, translated: Mapping[str, Any], resolver: Resolver) -> IamModel:
        model = cls()
        resources: dict[str, Any] = translated.get("Resources") or {}
        for logical, resource in resources.items():
            kind, properties = resource.get("Type"), resource.get("Properties") or {}
            if kind == "AWS::IAM::Role":
                model.roles[logical] = _role(logical, properties, resolver)
            elif kind == "AWS::Lambda::Function":
                model.function_roles[logical] = _role_logical(properties.get("Role"), resources)
            elif kind == "AWS::StepFunctions::StateMachine":
                model.state_machine_roles[logical] = _role_logical(properties.get("RoleArn"), resources)
            elif kind == "AWS::Scheduler::Schedule":
                target = properties.get("Target") or {}
                model.schedule_roles[str(properties.get("Name") or logical)] = _role_logical(
                    target.get("RoleArn"), resources
                )
            elif kind == "AWS::Lambda::Permission":
                source = properties.get("SourceArn")
                model.permissions.append(
                    LambdaPermission(
                        function=logical_of(properties.get("FunctionName")),
                        principal=str(properties.get("Principal")),
                        source_arn=None if source is None else str(resolver.resolve(source)),
                        action=str(properties.get("Action", "lambda:InvokeFunction")),
                        url_auth_type=properties.get("FunctionUrlAuthType"),
                        via_function_url=str(properties.get("InvokedViaFunctionUrl", "")).lower() == "true",
                    )
                )
            elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
                _resource_policy(model, kind, properties, resolver)
            elif kind == "AWS::KMS::Key" and logical in resolver.resources:
                document = resolver.resolve(properties.get("KeyPolicy") or {})
                model.resource_policies[resolver.get_att(logical, "Arn")] = _listed(document.get("Statement", []))
        model.buckets = bucket_encryption(resources, resolver)
        return model

    # ------------------------------------------------------------------ questions
    def role_of_function(self, function: str) -> Role | None:
        logical = self.function_roles.get(function)
        return self.roles.get(logical) if logical else None

    def role_by_arn(self, arn: str) -> Role | None:
        return next((role for role in self.roles.values() if role.arn == arn), None)

    def identity_allows(self, role: Role, request: Request) -> str:
        return evaluate(role.statements, request)

    def key_allows(self, role: Role, request: Request) -> str:
        """A function's KMS request as KMS decides it: the key policy is always evaluated. A statement that
        names the role allows on its own; one that names the account (``:root``) delegates to IAM, so the
        role's own policy must allow too. A key without a policy in the template has the default one (the
        account: IAM decides). The key policy sees ``aws:PrincipalArn`` (the role's ARN)."""
        identity = self.identity_allows(role, request)
        statements = self.resource_policies.get(request.resource)
        if statements is None:
            return identity
        asked = Request(request.action, request.resource, {**request.context, "aws:PrincipalArn": role.arn})
        root = f"arn:aws:iam::{ACCOUNT_ID}:root"
        direct = evaluate([s for s in statements if _names_aws(s, role.arn)], asked)
        account = evaluate([s for s in statements if _names_aws(s, root) or _names_aws(s, ACCOUNT_ID)], asked)
        if "deny" in (direct, account, identity):
            return "deny"
        if direct == "allow" or (account == "allow" and identity == "allow"):
            return "allow"
        return "implicit"

    def resource_allows(self, resource_arn: str, principal: str, request: Request) -> str:
        """A resource-based policy's answer for a service principal (``"implicit"`` without a policy)."""
        statements = [s for s in self.resource_policies.get(resource_arn, []) if principal_matches(s, principal)]
        return evaluate(statements, request)

    def permission_allows(self, function: str, principal: str, source_arn: str | None) -> bool:
        """An ``AWS::Lambda::Permission`` lets ``principal`` invoke the function (from ``source_arn``)."""
        for permission in self.permissions:
            if permission.function != function or permission.principal != principal:
                continue
            if permission.source_arn is None or (
                source_arn is not None and _matches(permission.source_arn, source_arn, ignore_case=False)
            ):
                return True
        return False

    def function_url_denial(self, function: str, auth_type: str) -> str | None:
        """Why the public cannot call the function's URL (None when it can). Since October 2025 a new function
        URL needs both ``lambda:InvokeFunctionUrl`` (with the URL's auth type) and ``lambda:InvokeFunction``
        limited to calls through the URL (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html)."""
        if auth_type != "NONE":
            return f"auth type {auth_type!r}: the local runner serves public (NONE) function URLs only"
        mine = [p for p in self.permissions if p.function == function and p.principal == "*"]
        if not any(p.action == "lambda:InvokeFunctionUrl" and p.url_auth_type == "NONE" for p in mine):
            return "no lambda:InvokeFunctionUrl permission for * with FunctionUrlAuthType NONE"
        if not any(p.action == "lambda:InvokeFunction" and p.via_function_url for p in mine):
            return "no lambda:InvokeFunction permission for * with InvokedViaFunctionUrl"
        return None


def logical_of(expression: Any) -> str:
    """The logical id of ``!GetAtt X.Arn`` / ``!Ref X``."""
    if isinstance(expression, dict) and len(expression) == 1:
        ((key, arg),) = expression.items()
        if key == "Fn::GetAtt":
            return str(arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0])
        if key == "Ref":
            return str(arg)
    raise ValueError(f"not a reference to a template resource: {expression!r}")


def _role_logical(expression: Any, resources: Mapping[str, Any]) -> str:
    """The logical id of the role a resource names (``""`` for a role outside the template: no permissions
    are known for it, so everything it does is denied)."""
    try:
        logical = logical_of(expression)
    except ValueError:
        return ""
    return logical if logical in resources else ""


def role_name(logical: str) -> str:
    """The name of a role without ``RoleName`` (as CloudFormation generates it, see ``generated_role_name``)."""
    return generated_role_name(logical)


def _role(logical: str, properties: Mapping[str, Any], resolver: Resolver) -> Role:
    name = str(resolver.resolve(properties["RoleName"])) if properties.get("RoleName") else role_name(logical)
    trust = properties.get("AssumeRolePolicyDocument") or {}
    trusted: set[str] = set()
    for statement in _listed(trust.get("Statement", [])):
        if statement.get("Effect") == "Allow":
            trusted.update(str(s) for s in _listed((statement.get("Principal") or {}).get("Service", [])))
    statements: list[Statement] = []
    for policy in properties.get("Policies") or []:
        document = resolver.resolve(policy["PolicyDocument"])
        statements.extend(_listed(document.get("Statement", [])))
    managed: list[str] = []
    for arn in resolver.resolve(properties.get("ManagedPolicyArns") or []):
        policy_name = str(arn).rsplit("/", 1)[-1]
        if policy_name not in MANAGED_POLICIES:
            raise UnknownManagedPolicy(f"{logical}: managed policy {arn} is not in sandbox.local.iam.MANAGED_POLICIES")
        statements.extend(copy.deepcopy(MANAGED_POLICIES[policy_name][0]))
        managed.append(policy_name)
    return Role(
        logical=logical,
        name=name,
        arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
        trusted=frozenset(trusted),
        statements=statements,
        managed=managed,
    )


def _resource_policy(model: IamModel, kind: str, properties: Mapping[str, Any], resolver: Resolver) -> None:
    document = resolver.resolve(properties.get("PolicyDocument") or {})
    statements = _listed(document.get("Statement", []))
    if kind == "AWS::SNS::TopicPolicy":
        targets = [str(t) for t in resolver.resolve(properties.get("Topics") or [])]
    else:
        targets = [_queue_arn(str(url)) for url in resolver.resolve(properties.get("Queues") or [])]
    for arn in targets:
        model.resource_policies.setdefault(arn, []).extend(statements)


def _queue_arn(url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{url.rstrip('/').rsplit('/', 1)[-1]}"
