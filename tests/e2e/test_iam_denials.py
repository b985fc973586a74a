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
def template_without() -> Iterator[Callable[[str, str], Path]]:
    """``template_without(original, replacement)``: template.yaml with one snippet changed, beside it (its
    CodeUri paths resolve from its directory); removed afterwards."""
    made: list[Path] = []

    def make(original: str, replacement: str) -> Path:
        text = (ROOT / "template.yaml").read_text(encoding="utf-8")
        assert text.count(original) == 1, original
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
