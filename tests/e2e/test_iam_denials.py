"""Issue 13: with a permission removed from template.yaml the local stack answers as AWS would, and the
failure names the denied action (the committed template runs every e2e test with zero denials: the
fixtures in conftest.py assert it on every stack they stop)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.local.client import LocalStackClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json"
QUIET = {"PARCELHUB_SANDBOX_STAGE_SECONDS": "600"}


@pytest.fixture
def template_without() -> Iterator[Callable[..., Path]]:
    """``template_without(original, replacement[, count])``: template.yaml with a snippet changed, beside it (its
    CodeUri paths resolve from its directory); removed afterwards."""
    made: list[Path] = []

    def make(original: str, replacement: str, count: int = 1) -> Path:
        text = (ROOT / "template.yaml").read_text(encoding="utf-8")
        assert text.count(original) == count, original
        path = ROOT / f"template.iam-test-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(text.replace(original, replacement), encoding="utf-8")
        made.append(path)
        return path

    yield make
    for path in made:
        path.unlink(missing_ok=True)


def denied(stack: LocalStackClient, timeout: float = 60) -> set[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {(d["principal"], d["action"]) for d in stack.metrics()["iam_denials"]}
        if found:
            return found
        time.sleep(0.5)
    return set()


def an_order() -> dict[str, object]:
    body = json.loads(ORDER.read_text(encoding="utf-8"))
    body["order_id"] = f"E2E-IAM-{uuid.uuid4().hex[:12]}"
    return dict(body)


def test_the_api_role_of_before_issue_13_fails_every_new_shipment_naming_kms_generate_data_key(
    stack_factory: Callable[..., LocalStackClient], template_without: Callable[[str, str], Path]
) -> None:
    # Given the API's role allows kms:Encrypt (the template before issue 13) while the code calls GenerateDataKey
    path = template_without("              Action: kms:GenerateDataKey\n", "              Action: kms:Encrypt\n")
    stack = stack_factory(None, PARCELHUB_TEMPLATE=str(path), **QUIET)
    # When the OMS posts an order
    reply = stack.post_order(an_order())
    # Then the API answers 500, as it would on AWS, and the denial names the function and the action
    assert reply.status_code == 500
    assert ("ShipmentsApiFunction", "kms:GenerateDataKey") in denied(stack)
    assert "kms:GenerateDataKey" in stack.log_path.read_text(encoding="utf-8")


def test_a_state_machine_that_may_not_invoke_its_tasks_fails_naming_lambda_invoke_function(
    stack_factory: Callable[..., LocalStackClient], template_without: Callable[[str, str], Path]
) -> None:
    # Given the state machine's role lost its LambdaInvokePolicy
    path = template_without("        - LambdaInvokePolicy: { FunctionName: !Ref WaybillTasksFunction }\n", "")
    stack = stack_factory(None, PARCELHUB_TEMPLATE=str(path), **QUIET)
    # When an order is accepted, its workflow cannot run a single task
    reply = stack.post_order(an_order())
    assert reply.status_code == 202
    found = denied(stack)
    assert any(principal.startswith("states:") and action == "lambda:InvokeFunction" for principal, action in found)
    time.sleep(3)
    assert stack.shipment(reply.json()["shipment_id"])["status"] == "PENDING"


# the API role's statement for the data bucket's SSE-KMS (label links are signed with the API's role)
API_BUCKET_KEY = """            - Sid: DataBucketKey  # SSE-KMS of the data bucket, through S3 only
              Effect: Allow
              Action: kms:Decrypt  # a label link is signed with this role: reading it decrypts
              Resource: !GetAtt PiiKey.Arn
              Condition:
                StringEquals:
                  kms:ViaService: !Sub "s3.${AWS::Region}.amazonaws.com"
                  kms:EncryptionContext:aws:s3:arn: !GetAtt DataBucket.Arn
"""


def label_link(stack: LocalStackClient) -> str:
    """A shipment's label link once its waybill is issued (the Kdniao sandbox returns a label)."""
    shipment_id = stack.post_order(an_order()).json()["shipment_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = stack.shipment(shipment_id)
        if view.get("label_url"):
            return str(view["label_url"])
        time.sleep(0.5)
    raise AssertionError(f"no label link for {shipment_id}: {view}")


def test_a_label_link_opens_with_the_committed_template_and_is_refused_without_the_api_roles_key_statement(
    stack_factory: Callable[..., LocalStackClient], template_without: Callable[[str, str], Path]
) -> None:
    # Given the committed template: the label (personal data, SSE-KMS under the PII key) opens
    stack = stack_factory(None, **QUIET)
    reply = stack.http.get(label_link(stack), timeout=30)
    assert reply.status_code == 200
    assert reply.content
    # Given the API role without kms:Decrypt on the key through S3
    without = stack_factory(None, PARCELHUB_TEMPLATE=str(template_without(API_BUCKET_KEY, "")), **QUIET)
    # When the OMS follows a label link the API signed
    refused = without.http.get(label_link(without), timeout=30)
    # Then S3 refuses it, as it would on AWS, and the denial names the API and kms:Decrypt
    assert refused.status_code == 403
    assert "AccessDenied" in refused.text
    assert ("ShipmentsApiFunction", "kms:Decrypt") in denied(without)


def test_the_webhook_pointed_at_an_api_credentials_secret_is_denied_reading_it(
    stack_factory: Callable[..., LocalStackClient], template_without: Callable[..., Path]
) -> None:
    # Given the functions told that Kdniao's push material is in its API secret (the local stack runs every
    # function in one process, so the variable changes for all that have it): the webhook's role has no
    # statement for the API secret
    told = "          KDNIAO_PUSH_SECRET_ARN: !Ref KdniaoPushSecret\n"
    path = template_without(told, told.replace("KdniaoPushSecret", "KdniaoApiSecret"), count=3)
    stack = stack_factory(None, PARCELHUB_TEMPLATE=str(path), **QUIET)
    # When Kdniao pushes
    reply = stack.http.post(
        f"{stack.webhooks}/v1/webhooks/kdniao",
        data={"RequestData": "{}", "DataSign": "x", "RequestType": "102"},
        timeout=30,
    )
    # Then the read is denied (the provider is told to push again) and the denial names the webhook
    assert reply.status_code == 503
    assert ("CarrierWebhookFunction", "secretsmanager:GetSecretValue") in denied(stack)
