"""Issue 16 items 2 and 3, over the roles the SAM transform makes of template.yaml: each function reads only
the secrets it uses, the PII key is usable only by the roles that need it (with its encryption context),
and the data bucket's SSE-KMS needs the key through S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox.local.iam import IamModel, Request, Role, translate
from sandbox.local.iam_calls import Enforcer, requests_for, sse_kms_requests
from sandbox.local.metrics import invocation
from sandbox.local.template import Resolver, load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SECRETS = ("OmsSecret", *(f"{p}{part}Secret" for p in ("Sf", "Kdniao", "Kuaidi100") for part in ("Api", "Push")))
API = {"SfApiSecret", "KdniaoApiSecret", "Kuaidi100ApiSecret"}
PUSH = {"SfPushSecret", "KdniaoPushSecret", "Kuaidi100PushSecret"}
#: function -> the secrets it may read (and why, in template.yaml's statements)
READS: dict[str, set[str]] = {
    # keys, links; POST cancel cancels a waybill or a return's pickup with the provider (never push material)
    "ShipmentsApiFunction": {"OmsSecret"} | API,
    "CarrierWebhookFunction": PUSH,  # verification material only
    "WaybillTasksFunction": {"OmsSecret"} | API | PUSH,  # links; waybills; subscriptions register push material
    "TrackingNormalizerFunction": PUSH,  # re-verifies queued pushes
    "TrackingPollerFunction": API,
    "WaybillRecoveryFunction": API,
    "StallDetectorFunction": set(),
    "CapacityPlannerFunction": {"KdniaoApiSecret"},  # Kdniao answers e-waybill balances (1127)
    "WaybillDispatchFunction": set(),
    "EventRelayFunction": set(),
}
BUCKET = "parcelhub-dev-123456789012-us-east-1"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resolver(template: dict[str, Any]) -> Resolver:
    return Resolver(template)


@pytest.fixture(scope="module")
def model(template: dict[str, Any], resolver: Resolver) -> IamModel:
    return IamModel.build(translate(template), resolver)


def role(model: IamModel, function: str) -> Role:
    found = model.role_of_function(function)
    assert found is not None, function
    return found


def allowed(model: IamModel, function: str, service: str, operation: str, params: dict[str, Any]) -> bool:
    """What the local stack's enforcer decides: the role, the key policy for KMS, SSE-KMS through S3."""
    the_role = role(model, function)
    requests = requests_for(service, operation, params)
    if service == "s3":
        requests += sse_kms_requests(operation, params, model.buckets)
    for request in requests:
        decide = model.key_allows if request.action.startswith("kms:") else model.identity_allows
        if decide(the_role, request) != "allow":
            return False
    return True


def test_each_function_may_read_exactly_the_secrets_it_uses(model: IamModel, resolver: Resolver) -> None:
    # Given the roles as `sam deploy` makes them, When each function asks for each secret
    readable = {
        function: {
            secret
            for secret in SECRETS
            if allowed(model, function, "secretsmanager", "GetSecretValue", {"SecretId": resolver.ids(secret)["Ref"]})
        }
        for function in READS
    }
    # Then each reads only what it uses: the webhook only push material, never an API credential
    assert readable == READS
    sf_api = {"SecretId": resolver.ids("SfApiSecret")["Ref"]}
    assert not allowed(model, "CarrierWebhookFunction", "secretsmanager", "GetSecretValue", sf_api)


def test_each_function_is_told_exactly_the_secrets_its_role_may_read(template: dict[str, Any]) -> None:
    # the code reads the secrets it is given the ARN of: the environment and the role agree
    for function, secrets in READS.items():
        variables = ((template["Resources"][function]["Properties"].get("Environment") or {}).get("Variables")) or {}
        named = {value["Ref"] for name, value in variables.items() if name.endswith("_SECRET_ARN")}
        assert named == secrets, function
    assert "PROVIDER_SECRET_ARN" not in str(template["Globals"])


def test_no_secret_has_a_value_or_a_default_in_the_template(template: dict[str, Any]) -> None:
    kinds = {logical: r for logical, r in template["Resources"].items() if r["Type"] == "AWS::SecretsManager::Secret"}
    assert set(kinds) == set(SECRETS)
    for logical, resource in kinds.items():
        assert not {"SecretString", "GenerateSecretString"} & set(resource["Properties"]), logical
    for name, parameter in template["Parameters"].items():
        if str(parameter.get("NoEcho")).lower() == "true":
            assert "Default" not in parameter, name


def test_the_enforcer_refuses_the_webhook_an_api_credentials_secret(
    model: IamModel, resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.local.stack import FAKE_CREDENTIALS

    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        push = client.create_secret(Name="parcelhub/dev/sf/push", SecretString='{"push_token": "t"}')["ARN"]
        api = client.create_secret(Name="parcelhub/dev/sf/api", SecretString='{"partner_id": "p"}')["ARN"]
        # the template's statements name the secrets by ARN: let the model's ARNs be moto's
        statements = role(model, "CarrierWebhookFunction").statements
        pushes = next(s for s in statements if s.get("Sid") == "PushSecrets")
        sf_push = next(r for r in pushes["Resource"] if r == resolver.ids("SfPushSecret")["Ref"])
        monkeypatch.setitem(pushes, "Resource", [push if r == sf_push else r for r in pushes["Resource"]])
        enforcer = Enforcer(model, {"CarrierWebhookFunction": "parcelhub-dev-carrier-webhook"})
        enforcer.register(client.meta.events)
        with invocation("CarrierWebhookFunction"):
            # When the webhook reads SF's push secret, it may; When it reads SF's API secret
            assert client.get_secret_value(SecretId=push)["SecretString"]
            with pytest.raises(ClientError) as refused:
                client.get_secret_value(SecretId=api)
    # Then it is denied as AWS would deny it, and the denial is recorded
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "secretsmanager:GetSecretValue" in refused.value.response["Error"]["Message"]
    assert [(d["principal"], d["resource"]) for d in enforcer.denials] == [("CarrierWebhookFunction", api)]


# ------------------------------------------------------------------------------------------ the PII key


def pii(resolver: Resolver) -> str:
    return resolver.get_att("PiiKey", "Arn")


CONTEXT = {"EncryptionContext": {"app": "parcelhub", "purpose": "pii"}}


def test_the_pii_key_seals_and_opens_personal_data_only_for_the_roles_that_need_it(
    model: IamModel, resolver: Resolver
) -> None:
    key = {"KeyId": pii(resolver)}
    sealers = {f for f in READS if allowed(model, f, "kms", "GenerateDataKey", {**key, **CONTEXT})}
    openers = {f for f in READS if allowed(model, f, "kms", "Decrypt", {**key, **CONTEXT})}
    assert sealers == {"ShipmentsApiFunction"}
    assert openers == {"WaybillTasksFunction", "WaybillRecoveryFunction"}
    # the encryption context is a condition of the key policy too
    assert not allowed(model, "ShipmentsApiFunction", "kms", "GenerateDataKey", key)
    assert not any(allowed(model, f, "kms", "Encrypt", {**key, **CONTEXT}) for f in READS)


def test_the_internet_facing_api_opens_no_personal_data_and_reads_no_push_secret(
    model: IamModel, resolver: Resolver
) -> None:
    """Secrets by need (docs/security.md): a return is asked through the API but booked by the waybill
    tasks, so the API role neither decrypts personal data nor reads the push material subscriptions use."""
    api = role(model, "ShipmentsApiFunction")
    # Given the API role as `sam deploy` makes it, When it asks to open a sealed party with the PII key
    opening = Request(
        "kms:Decrypt", pii(resolver), {f"kms:EncryptionContext:{k}": v for k, v in CONTEXT["EncryptionContext"].items()}
    )
    # Then its own policy does not allow it (only S3 may decrypt for it, to serve a signed label link)
    assert model.identity_allows(api, opening) != "allow"
    for statement in api.statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "kms:Decrypt" in actions:
            assert "kms:ViaService" in statement["Condition"]["StringEquals"], statement.get("Sid")
    # And it reads no provider's push secret
    for secret in sorted(PUSH):
        assert not allowed(
            model, "ShipmentsApiFunction", "secretsmanager", "GetSecretValue", {"SecretId": resolver.ids(secret)["Ref"]}
        ), secret


def test_a_role_not_in_the_key_policy_is_denied_decrypt_whatever_its_own_policy_says(
    model: IamModel, resolver: Resolver
) -> None:
    # Given a role of the account whose own policy allows every KMS action on every key
    request = Request(
        "kms:Decrypt",
        pii(resolver),
        {"kms:EncryptionContext:app": "parcelhub", "kms:EncryptionContext:purpose": "pii"},
    )
    admin = Role(
        logical="OpsRole",
        name="parcelhub-local-OpsRole-ABC",
        arn="arn:aws:iam::123456789012:role/parcelhub-local-OpsRole-ABC",
        trusted=frozenset(),
        statements=[{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
        managed=[],
    )
    # Then the key policy (the account statement administers, never uses) refuses it
    assert model.identity_allows(admin, request) == "allow"
    assert model.key_allows(admin, request) == "implicit"
    # and a role the key policy names is refused too when its own policy does not allow it
    stall = role(model, "StallDetectorFunction")
    named = Role(stall.logical, stall.name, role(model, "WaybillTasksFunction").arn, stall.trusted, [], [])
    assert model.key_allows(named, request) == "implicit"


def test_the_data_bucket_is_encrypted_with_the_pii_key_and_its_readers_need_it_through_s3(
    model: IamModel, resolver: Resolver, template: dict[str, Any]
) -> None:
    encryption = model.buckets[BUCKET]
    assert (encryption.key_arn, encryption.bucket_key) == (pii(resolver), True)
    label, raw = {"Bucket": BUCKET, "Key": "labels/shp_1/SF1.html"}, {"Bucket": BUCKET, "Key": "raw/2026/x.gz"}
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": pii(resolver), "BucketKeyEnabled": True}
    # labels: written by the waybill tasks, read (through presigned links) with the API's role
    assert allowed(model, "WaybillTasksFunction", "s3", "PutObject", {**label, **sse})
    assert allowed(model, "ShipmentsApiFunction", "s3", "GetObject", label)
    # the raw archive: written and read back by the normalizer, parked pushes read by the waybill tasks
    assert allowed(model, "TrackingNormalizerFunction", "s3", "PutObject", {**raw, **sse})
    assert allowed(model, "TrackingNormalizerFunction", "s3", "GetObject", raw)
    assert allowed(model, "WaybillTasksFunction", "s3", "GetObject", raw)
    # nobody else; and the S3 grant is no direct use of the key (kms:ViaService)
    assert not allowed(model, "CarrierWebhookFunction", "s3", "GetObject", raw)
    (via_s3,) = sse_kms_requests("GetObject", raw, model.buckets)
    assert via_s3.context["kms:EncryptionContext:aws:s3:arn"] == f"arn:aws:s3:::{BUCKET}"
    direct = Request("kms:Decrypt", pii(resolver), {"kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{BUCKET}"})
    assert model.key_allows(role(model, "ShipmentsApiFunction"), direct) == "implicit"


def test_without_its_kms_statement_the_api_role_cannot_read_a_label(template: dict[str, Any]) -> None:
    # Given the API role without its DataBucketKey statement
    statements = template["Resources"]["ShipmentsApiFunction"]["Properties"]["Policies"][0]["Statement"]
    stripped = {**template, "Resources": dict(template["Resources"])}
    function = dict(stripped["Resources"]["ShipmentsApiFunction"])
    function["Properties"] = {
        **function["Properties"],
        "Policies": [{"Statement": [s for s in statements if s.get("Sid") != "DataBucketKey"]}],
    }
    stripped["Resources"]["ShipmentsApiFunction"] = function
    resolver = Resolver(stripped)
    model = IamModel.build(translate(stripped), resolver)
    # Then reading a label (what its presigned links do) is refused, on the key
    assert not allowed(model, "ShipmentsApiFunction", "s3", "GetObject", {"Bucket": BUCKET, "Key": "labels/x.html"})
