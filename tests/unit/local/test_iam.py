"""The local stack's IAM (sandbox/local/iam.py, iam_calls.py): AWS's evaluation logic, the actions and
resources a call is authorized as, and the roles of template.yaml as the SAM transform makes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.local.iam import IamModel, Request, evaluate, translate
from sandbox.local.iam_calls import requests_for
from sandbox.local.template import Resolver, load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/parcelhub-dev"


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_actions_match_case_insensitively_with_wildcards_and_resources_exactly() -> None:
    statements = [allow("dynamodb:Get*", ARN)]
    assert evaluate(statements, Request("DynamoDB:GetItem", ARN)) == "allow"
    assert evaluate(statements, Request("dynamodb:PutItem", ARN)) == "implicit"
    assert evaluate(statements, Request("dynamodb:GetItem", ARN.upper())) == "implicit"
    assert evaluate(statements, Request("dynamodb:GetItem", ARN + "/index/stall")) == "implicit"
    assert evaluate([allow("dynamodb:Query", ARN + "/index/*")], Request("dynamodb:Query", ARN + "/index/x")) == "allow"


def test_an_explicit_deny_wins_and_not_action_excludes() -> None:
    statements = [allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]
    assert evaluate(statements, Request("s3:GetObject", "arn:aws:s3:::b/k")) == "allow"
    assert evaluate(statements, Request("s3:DeleteObject", "arn:aws:s3:::b/k")) == "deny"
    assert evaluate([{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}], Request("s3:GetObject", "x")) == (
        "implicit"
    )


def test_kms_use_is_conditioned_on_the_encryption_context() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    condition = {"StringEquals": {"kms:EncryptionContext:app": "parcelhub", "kms:EncryptionContext:purpose": "pii"}}
    statements = [allow("kms:Decrypt", key, Condition=condition)]
    pii, other = {"app": "parcelhub", "purpose": "pii"}, {"app": "other", "purpose": "pii"}
    (right,) = requests_for("kms", "Decrypt", {"KeyId": key, "EncryptionContext": pii})
    (wrong,) = requests_for("kms", "Decrypt", {"KeyId": key, "EncryptionContext": other})
    (none,) = requests_for("kms", "Decrypt", {"KeyId": key})
    assert [evaluate(statements, r) for r in (right, wrong, none)] == ["allow", "implicit", "implicit"]


def test_calls_are_authorized_as_aws_does() -> None:
    # a transaction is one action per item; a batch send is SendMessage; HeadObject is GetObject
    transaction = {"TransactItems": [{"Put": {"TableName": "t"}}, {"Update": {"TableName": "t"}}]}
    assert [r.action for r in requests_for("dynamodb", "TransactWriteItems", transaction)] == [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    (batch,) = requests_for("sqs", "SendMessageBatch", {"QueueUrl": "http://localhost:5000/123456789012/q"})
    assert (batch.action, batch.resource) == ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q")
    (head,) = requests_for("s3", "HeadObject", {"Bucket": "b", "Key": "raw/x.gz"})
    assert (head.action, head.resource) == ("s3:GetObject", "arn:aws:s3:::b/raw/x.gz")
    (query,) = requests_for("dynamodb", "Query", {"TableName": "t", "IndexName": "poll"})
    assert query.resource.endswith(":table/t/index/poll")
    (parameter,) = requests_for("ssm", "GetParameter", {"Name": "/parcelhub/dev/config"})
    assert parameter.resource == "arn:aws:ssm:us-east-1:123456789012:parameter/parcelhub/dev/config"


@pytest.fixture(scope="module")
def model() -> IamModel:
    template = load_template(ROOT / "template.yaml")
    return IamModel.build(translate(template), Resolver(template))


def may(model: IamModel, function: str, service: str, operation: str, params: dict[str, Any]) -> bool:
    role = model.role_of_function(function)
    assert role is not None
    return all(model.identity_allows(role, r) == "allow" for r in requests_for(service, operation, params))


def test_the_committed_template_gives_each_function_what_it_calls_and_no_more(model: IamModel) -> None:
    statements = model.roles["ShipmentsApiFunctionRole"].statements
    pii = {"KeyId": next(s for s in statements if s.get("Sid") == "PiiKey")["Resource"]}
    context = {"EncryptionContext": {"app": "parcelhub", "purpose": "pii"}}
    table, bucket = {"TableName": "parcelhub-dev"}, "parcelhub-dev-123456789012-us-east-1"
    # the API seals personal data with a data key (it never called kms:Encrypt)
    assert may(model, "ShipmentsApiFunction", "kms", "GenerateDataKey", {**pii, **context})
    assert not may(model, "ShipmentsApiFunction", "kms", "GenerateDataKey", pii)  # without the context
    # and never opens it (a return's pickup is booked by the waybill tasks, which decrypt)
    assert not may(model, "ShipmentsApiFunction", "kms", "Decrypt", {**pii, **context})
    # the normalizer reads back the pushes it archived (parked pushes), and nothing under labels/
    assert may(model, "TrackingNormalizerFunction", "s3", "GetObject", {"Bucket": bucket, "Key": "raw/2026/x.gz"})
    assert not may(model, "TrackingNormalizerFunction", "s3", "GetObject", {"Bucket": bucket, "Key": "labels/x"})
    # no function may scan the table; the poller queries only its index
    for function in model.function_roles:
        assert not may(model, function, "dynamodb", "Scan", table), function
    assert may(model, "TrackingPollerFunction", "dynamodb", "Query", {**table, "IndexName": "poll"})
    assert not may(model, "TrackingPollerFunction", "dynamodb", "Query", {**table, "IndexName": "stall"})
    # the webhook only enqueues
    assert not may(model, "CarrierWebhookFunction", "dynamodb", "GetItem", table)


def test_the_webhook_functions_url_is_public_only_through_both_permissions_aws_requires() -> None:
    """Given the template's webhook function URL (AuthType NONE), then it grants the two permissions a public
    URL needs since October 2025; without either, the local stack refuses to start it."""
    template = load_template(ROOT / "template.yaml")
    translated = translate(template)
    assert IamModel.build(translated, Resolver(template)).function_url_denial("CarrierWebhookFunction", "NONE") is None
    for action, missing in (
        ("lambda:InvokeFunction", "InvokedViaFunctionUrl"),
        ("lambda:InvokeFunctionUrl", "FunctionUrlAuthType NONE"),
    ):
        resources = {
            logical: resource
            for logical, resource in translated["Resources"].items()
            if not (resource["Type"] == "AWS::Lambda::Permission" and resource["Properties"].get("Action") == action)
        }
        model = IamModel.build({**translated, "Resources": resources}, Resolver(template))
        denial = model.function_url_denial("CarrierWebhookFunction", "NONE")
        assert denial is not None
        assert missing in denial
    # and no other function has a URL: the OMS API stays behind API Gateway with its key check
    urls = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Url"]
    assert [u["Properties"]["TargetFunctionArn"] for u in urls] == [{"Ref": "CarrierWebhookFunction"}]
