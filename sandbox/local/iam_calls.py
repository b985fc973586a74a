"""Every AWS call a function makes locally, checked against its role (:mod:`sandbox.local.iam`).

:class:`Enforcer` hooks botocore on every client created while the stack runs (the same
``create_client`` wrapper as the metrics): ``before-parameter-build`` keeps the call's parameters,
``before-call`` asks the model. A call made on a thread that runs a function (the thread-local set around
each handler invocation, :func:`sandbox.local.metrics.invocation`) is checked against that function's
role; the runner's own calls (provisioning, pollers, rule delivery) are not.

A denied call never reaches moto: botocore gets the error response AWS would send and raises it as AWS's
client would - ``AccessDeniedException`` (HTTP 400, JSON services), ``AccessDenied`` (HTTP 403, S3 and SQS),
``AuthorizationError`` (SNS) - with AWS's message naming the principal, the action and the resource.
Every denial is kept (``/_local/metrics`` -> ``iam_denials``) and logged.

:func:`requests_for` maps an operation to the IAM actions and resource ARNs AWS authorizes it as (a
``TransactWriteItems`` is one ``PutItem``/``UpdateItem``/``DeleteItem``/``ConditionCheckItem`` per item; a
``SendMessageBatch`` is ``sqs:SendMessage``; ``HeadObject`` is ``s3:GetObject`` ...).

SSE-KMS (:func:`sse_kms_requests`): S3 encrypts and decrypts with the caller's permissions, so writing an
object under a KMS key is also ``kms:GenerateDataKey`` and reading it ``kms:Decrypt`` on that key, asked
with ``kms:ViaService`` = ``s3.<region>.amazonaws.com`` and the encryption context ``aws:s3:arn`` (the
bucket with an S3 Bucket Key, else the object). The key is the one the write names, else the bucket's
default (a read is assumed to find an object written under the bucket's default key). Every KMS request
of a function is decided by the key policy as well as the role (``IamModel.key_allows``).

A presigned URL carries its signer's permissions: S3 checks them when the URL is used. A function that
presigns a request its role may not make (a label link the API may not decrypt) gets a URL that answers
as S3 would - 403 ``AccessDenied`` - from the runner (``refusal_url``), and the denial is recorded.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.local.iam import BucketEncryption, IamModel, Request, Role
from sandbox.local.metrics import current_function
from sandbox.local.template import ACCOUNT_ID, REGION

log = logging.getLogger("parcelhub.local")

_PARAMS = "parcelhub.api_params"

#: botocore operation -> IAM action, where they differ (by signing name)
ACTION_ALIASES: dict[str, dict[str, str]] = {
    "sqs": {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    },
    "s3": {
        "HeadObject": "GetObject",
        "ListObjectsV2": "ListBucket",
        "ListObjects": "ListBucket",
        "HeadBucket": "ListBucket",
        "CopyObject": "PutObject",
        "DeleteObjects": "DeleteObject",
        "ListObjectVersions": "ListBucketVersions",
    },
    "lambda": {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"},
    "sns": {"PublishBatch": "Publish"},
}
#: a TransactWriteItems item kind -> the action AWS authorizes it as
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
#: calls AWS does not authorize with IAM
UNAUTHORIZED_CALLS = frozenset({"sts.GetCallerIdentity"})


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{resource}"


def _queue(url_or_name: str) -> str:
    return _arn("sqs", str(url_or_name).rstrip("/").rsplit("/", 1)[-1])


def _kms_key(key_id: str | None) -> str:
    if not key_id:
        return "*"
    if key_id.startswith("arn:"):
        return key_id
    if key_id.startswith("alias/"):
        return _arn("kms", key_id)
    return _arn("kms", f"key/{key_id}")


def _table(name: str) -> str:
    return name if name.startswith("arn:") else _arn("dynamodb", f"table/{name}")


def _bus(name: str | None) -> str:
    bus = name or "default"
    return bus if bus.startswith("arn:") else _arn("events", f"event-bus/{bus}")


def _secret(secret_id: str) -> str:
    return secret_id if secret_id.startswith("arn:") else _arn("secretsmanager", f"secret:{secret_id}")


def _parameter(name: str) -> str:
    return name if name.startswith("arn:") else _arn("ssm", f"parameter/{name.lstrip('/')}")


def _function(name: str) -> str:
    return name if name.startswith("arn:") else _arn("lambda", f"function:{name}")


def requests_for(signing_name: str, operation: str, params: dict[str, Any]) -> list[Request]:  # noqa: PLR0911, PLR0912
    """The authorization requests one API call is (an empty list for calls IAM does not authorize)."""
    if f"{signing_name}.{operation}" in UNAUTHORIZED_CALLS:
        return []
    action = f"{signing_name}:{ACTION_ALIASES.get(signing_name, {}).get(operation, operation)}"
    if signing_name == "dynamodb":
        if operation == "TransactWriteItems":
            requests = []
            for item in params.get("TransactItems", []):
                ((kind, body),) = item.items()
                name = TRANSACT_ACTIONS.get(kind, "ConditionCheckItem")
                requests.append(Request(f"dynamodb:{name}", _table(body["TableName"])))
            return requests
        if operation == "TransactGetItems":
            return [Request("dynamodb:GetItem", _table(i["Get"]["TableName"])) for i in params.get("TransactItems", [])]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [Request(action, _table(name)) for name in params.get("RequestItems", {})]
        table = _table(str(params.get("TableName", "*")))
        if params.get("IndexName"):
            table = f"{table}/index/{params['IndexName']}"
        return [Request(action, table)]
    if signing_name == "sqs":
        if "QueueUrl" in params:
            return [Request(action, _queue(params["QueueUrl"]))]
        return [Request(action, _queue(params["QueueName"]) if "QueueName" in params else "*")]
    if signing_name == "states":
        arn = params.get("stateMachineArn") or params.get("executionArn") or "*"
        return [Request(action, str(arn))]
    if signing_name == "events":
        if operation == "PutEvents":
            buses = {_bus(entry.get("EventBusName")) for entry in params.get("Entries", [])} or {_bus(None)}
            return [Request(action, bus) for bus in sorted(buses)]
        return [Request(action, "*")]
    if signing_name == "kms":
        context: dict[str, Any] = {
            f"kms:EncryptionContext:{k}": v for k, v in (params.get("EncryptionContext") or {}).items()
        }
        if params.get("EncryptionContext"):
            context["kms:EncryptionContextKeys"] = sorted(params["EncryptionContext"])
        return [Request(action, _kms_key(params.get("KeyId")), context)]
    if signing_name == "s3":
        bucket = params.get("Bucket", "*")
        if "Key" in params:
            resource = f"arn:aws:s3:::{bucket}/{params['Key']}"
            if operation in ("GetObject", "HeadObject") and params.get("VersionId"):
                action = "s3:GetObjectVersion"
        else:
            resource = f"arn:aws:s3:::{bucket}"
        return [Request(action, resource)]
    if signing_name == "ssm":
        names = params.get("Names") or ([params["Name"]] if "Name" in params else [])
        if "Path" in params:
            names = [params["Path"]]
        return [Request(action, _parameter(str(n))) for n in names] or [Request(action, "*")]
    if signing_name == "secretsmanager":
        return [Request(action, _secret(str(params.get("SecretId", "*"))))]
    if signing_name == "sns":
        return [Request(action, str(params.get("TopicArn") or params.get("TargetArn") or "*"))]
    if signing_name == "lambda":
        return [Request(action, _function(str(params.get("FunctionName", "*"))))]
    return [Request(action, "*")]


def sse_kms_requests(operation: str, params: dict[str, Any], buckets: Mapping[str, BucketEncryption]) -> list[Request]:
    """The KMS requests S3 makes with the caller's permissions for a ``PutObject``/``GetObject``."""
    if operation not in ("PutObject", "GetObject") or "Key" not in params:
        return []
    bucket = str(params.get("Bucket", ""))
    default = buckets.get(bucket)
    if operation == "PutObject" and params.get("ServerSideEncryption") == "aws:kms" and params.get("SSEKMSKeyId"):
        key_arn = _kms_key(str(params["SSEKMSKeyId"]))
        bucket_key = bool(params.get("BucketKeyEnabled", default.bucket_key if default else False))
    elif default is not None:
        key_arn, bucket_key = default.key_arn, bool(params.get("BucketKeyEnabled", default.bucket_key))
    else:
        return []
    arn = f"arn:aws:s3:::{bucket}" if bucket_key else f"arn:aws:s3:::{bucket}/{params['Key']}"
    context = {
        "kms:ViaService": f"s3.{REGION}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": arn,
        "kms:EncryptionContextKeys": ["aws:s3:arn"],
    }
    action = "kms:GenerateDataKey" if operation == "PutObject" else "kms:Decrypt"
    return [Request(action, key_arn, context)]


#: error code and HTTP status of a denial, per signing name (everything else: AccessDeniedException/400)
DENIAL_SHAPE: dict[str, tuple[str, int]] = {
    "s3": ("AccessDenied", 403),
    "sqs": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
}


def denial_message(role: Role, session: str, request: Request, explicit: bool, service: str) -> str:
    principal = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.name}/{session}"
    resource = f'"{request.resource}"' if service == "s3" else request.resource
    policy = (
        "a key policy or an identity-based policy" if request.action.startswith("kms:") else "identity-based policy"
    )
    why = (
        f"with an explicit deny in {policy}" if explicit else f"because no {policy} allows the {request.action} action"
    )
    return f"User: {principal} is not authorized to perform: {request.action} on resource: {resource} {why}"


class Enforcer:
    """Checks each function's AWS calls against its role; keeps the denials (see the module docstring)."""

    def __init__(self, model: IamModel, function_names: dict[str, str]) -> None:
        self.model = model
        self.function_names = function_names  # logical -> physical name (the role session name)
        #: where a presigned URL its signer may not use points (the runner answers 403 there)
        self.refusal_url = ""
        self._lock = threading.Lock()
        self.denials: list[dict[str, Any]] = []
        self.checked = 0

    # ------------------------------------------------------------------ botocore hooks
    def register(self, events: Any) -> None:
        events.register("before-parameter-build", self._keep_params)
        events.register("before-call", self._before_call)
        events.register("before-sign.s3", self._before_presign)

    def _decide(
        self, function: str, service: str, operation: str, params: dict[str, Any]
    ) -> tuple[Request, str] | None:
        """The first request of the call the function's role may not make, with the decision (None: all may)."""
        role = self.model.role_of_function(function)
        requests = requests_for(service, operation, params)
        if service == "s3":
            requests += sse_kms_requests(operation, params, self.model.buckets)
        for request in requests:
            if role is None:
                decision = "implicit"
            elif request.action.startswith("kms:"):
                decision = self.model.key_allows(role, request)
            else:
                decision = self.model.identity_allows(role, request)
            with self._lock:
                self.checked += 1
            if decision != "allow":
                return request, decision
        return None

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context[_PARAMS] = params

    def _before_call(self, model: Any = None, context: dict[str, Any] | None = None, **_: Any) -> Any:
        function = current_function()
        if function is None or model is None:
            return None
        params = (context or {}).get(_PARAMS) or {}
        service = str(model.service_model.signing_name)
        refused = self._decide(function, service, str(model.name), params)
        if refused is None:
            return None
        request, decision = refused
        return self._deny(function, request, decision == "deny", service)

    def _before_presign(self, request: Any = None, operation_name: str = "", **_: Any) -> None:
        """A presigned S3 request the signing function's role may not make: its URL answers 403."""
        function = current_function()
        context = getattr(request, "context", None) or {}
        if function is None or not context.get("is_presign_request"):
            return
        refused = self._decide(function, "s3", operation_name, context.get(_PARAMS) or {})
        if refused is None:
            return
        denied, decision = refused
        self._record_denial(function, denied, decision == "deny", "s3")
        if self.refusal_url:
            with self._lock:
                number = len(self.denials) - 1
            request.url = f"{self.refusal_url.rstrip('/')}/{number}"

    def _record_denial(self, function: str, request: Request, explicit: bool, service: str) -> str:
        role = self.model.role_of_function(function)
        session = self.function_names.get(function, function)
        message = (
            denial_message(role, session, request, explicit, service)
            if role is not None
            else f"{function} has no execution role: {request.action} on {request.resource} denied"
        )
        self.record(function, request.action, request.resource, message)
        return message

    def _deny(self, function: str, request: Request, explicit: bool, service: str) -> Any:
        from botocore.awsrequest import AWSResponse

        message = self._record_denial(function, request, explicit, service)
        code, status = DENIAL_SHAPE.get(service, ("AccessDeniedException", 400))
        request_id = str(uuid.uuid4())
        http = AWSResponse("https://local.invalid/", status, {"x-amzn-RequestId": request_id}, None)  # type: ignore[arg-type]
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": status, "HTTPHeaders": {}},
        }
        return http, parsed

    # ------------------------------------------------------------------ the record
    def record(self, principal: str, action: str, resource: str, message: str) -> None:
        entry = {
            "time": time.time(),
            "principal": principal,
            "action": action,
            "resource": resource,
            "message": message,
        }
        with self._lock:
            self.denials.append(entry)
        log.error("IAM denied %s: %s", principal, message)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            denials = list(self.denials)
        return {"iam_checked": self.checked, "iam_denials_total": len(denials), "iam_denials": denials}

    def message(self, number: int) -> str:
        """The message of the ``number``-th denial (``""`` when there is none)."""
        with self._lock:
            return str(self.denials[number]["message"]) if 0 <= number < len(self.denials) else ""

    def reset(self) -> None:
        with self._lock:
            self.denials.clear()
            self.checked = 0

    # ------------------------------------------------------------------ service principals
    def may_invoke(self, principal_role: Role | None, function: str, function_arn: str, who: str) -> bool:
        """A role (Step Functions', a schedule's) may call ``lambda:InvokeFunction`` on the function."""
        request = Request("lambda:InvokeFunction", function_arn)
        if principal_role is not None and self.model.identity_allows(principal_role, request) == "allow":
            return True
        role = principal_role.name if principal_role else "(no role)"
        self.record(who, request.action, function_arn, f"{who} (role {role}) may not invoke {function}")
        return False

    def service_may(self, principal: str, request: Request, resource_arn: str, who: str, source_arn: str) -> bool:
        """A service principal (``events.amazonaws.com``) may act on a resource through its resource policy."""
        context = {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT_ID}
        asked = Request(request.action, request.resource, {**context, **request.context})
        if self.model.resource_allows(resource_arn, principal, asked) == "allow":
            return True
        self.record(who, request.action, request.resource, f"no resource policy of {resource_arn} lets {principal}")
        return False


def guarded(check: Callable[[], bool], action: str) -> None:
    """Raise :class:`PermissionError` naming ``action`` when ``check`` says no (runner-side deliveries)."""
    if not check():
        raise PermissionError(f"AccessDenied: {action}")
