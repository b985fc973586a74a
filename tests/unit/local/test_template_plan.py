"""The local runner reads template.yaml into its wiring plan (intrinsics, conditions, no drift)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.local.lambdas import EnvironmentConflict, environment_union
from sandbox.local.template import (
    Resolver,
    UnsupportedTemplate,
    build_plan,
    iter_event_sources,
    load_template,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def plan_of(template: dict[str, Any], **overrides: str) -> Any:
    return build_plan(template, Resolver(template, overrides), ROOT)


def test_short_forms_become_long_forms(tmp_path: Path) -> None:
    """Given the CloudFormation short tags, when loaded, then they are the long forms."""
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  A:\n    Type: X\n    Properties:\n"
        "      R: !Ref B\n      G: !GetAtt B.Arn\n      S: !Sub 'x-${B}'\n"
        "      I: !If [C, 1, 2]\n      N: !Not [!Equals [!Ref P, '']]\n      J: !Join ['-', [a, b]]\n"
    )
    props = load_template(path)["Resources"]["A"]["Properties"]
    assert props == {
        "R": {"Ref": "B"},
        "G": {"Fn::GetAtt": ["B", "Arn"]},
        "S": {"Fn::Sub": "x-${B}"},
        "I": {"Fn::If": ["C", 1, 2]},
        "N": {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]},
        "J": {"Fn::Join": ["-", ["a", "b"]]},
    }


def test_intrinsics_resolve_against_parameters_conditions_and_resources(template: dict[str, Any]) -> None:
    """Given parameter overrides, then Ref/Sub/GetAtt/If/conditions resolve as CloudFormation would."""
    resolver = Resolver(template, {"Stage": "qa", "OpsAlertEmail": "ops@example.com"})
    assert resolver.resolve({"Ref": "Stage"}) == "qa"
    assert resolver.resolve({"Ref": "ParcelhubTable"}) == "parcelhub-qa"
    assert resolver.resolve({"Fn::GetAtt": ["WaybillRequestsQueue", "Arn"]}) == (
        "arn:aws:sqs:us-east-1:123456789012:parcelhub-qa-waybill-requests"
    )
    assert resolver.resolve({"Fn::Sub": "${AWS::Region}/${ParcelhubTable}/${!Literal}"}) == (
        "us-east-1/parcelhub-qa/${Literal}"
    )
    assert resolver.resolve({"Fn::Sub": ["${X}-${Stage}", {"X": {"Ref": "LogLevel"}}]}) == "INFO-qa"
    assert resolver.condition("HasOpsAlertEmail") is True
    assert Resolver(template).condition("HasOpsAlertEmail") is False
    assert resolver.resolve({"Fn::If": ["HasOpsAlertEmail", "yes", {"Ref": "AWS::NoValue"}]}) == "yes"
    assert Resolver(template).resolve({"k": {"Fn::If": ["HasOpsAlertEmail", "yes", {"Ref": "AWS::NoValue"}]}}) == {}
    with pytest.raises(UnsupportedTemplate):
        Resolver(template, {"LogLevel": "LOUD"})  # not in AllowedValues
    with pytest.raises(UnsupportedTemplate):
        Resolver(template, {"NoSuchParameter": "x"})


def test_recorded_physical_ids_win_over_predictions(template: dict[str, Any]) -> None:
    """Given ids only AWS knows (a KMS key id), when the provisioner records them, then refs use them."""
    resolver = Resolver(template)
    predicted = resolver.ref("PiiKey")
    resolver.physical["PiiKey"] = {"Ref": "real-key-id"}
    assert predicted != "real-key-id"
    assert plan_of_env(template, resolver)["ShipmentsApiFunction"]["PII_KEY_ID"] == "real-key-id"


def plan_of_env(template: dict[str, Any], resolver: Resolver) -> dict[str, dict[str, str]]:
    plan = build_plan(template, resolver, ROOT)
    return {logical: f.environment for logical, f in plan.functions.items()}


def test_no_drift_every_declared_thing_is_wired(template: dict[str, Any]) -> None:
    """Given template.yaml, then every function, event source, queue, rule, topic, state machine and
    table it declares is in the runner's plan."""
    plan = plan_of(template)
    resources = template["Resources"]

    def of_type(rtype: str) -> set[str]:
        return {logical for logical, r in resources.items() if r["Type"] == rtype}

    assert set(plan.functions) == of_type("AWS::Serverless::Function")
    assert set(plan.tables) == of_type("AWS::DynamoDB::Table")
    assert set(plan.queues) == of_type("AWS::SQS::Queue")
    assert set(plan.topics) == of_type("AWS::SNS::Topic")
    assert set(plan.buses) == of_type("AWS::Events::EventBus")
    assert set(plan.state_machines) == of_type("AWS::Serverless::StateMachine")
    assert {r.logical for r in plan.rules if r.source == "resource"} == of_type("AWS::Events::Rule")
    assert set(plan.http_apis) == of_type("AWS::Serverless::HttpApi")

    wired_events = {(r.function, r.event) for r in plan.routes}
    wired_events |= {(s.function, s.event) for s in plan.sqs_sources}
    wired_events |= {(s.function, s.event) for s in plan.stream_sources}
    wired_events |= {(s.function, s.event) for s in plan.schedules if s.function}
    rule_events = {r.logical for r in plan.rules if r.source == "function-event"}
    for function, event, event_type in iter_event_sources(template):
        wired = (
            f"{function}{event}" in rule_events
            if event_type == "EventBridgeRule"
            else (function, event) in wired_events
        )
        assert wired, f"{function}.{event} ({event_type}) is not wired"
    assert len(plan.routes) == sum(1 for *_, t in iter_event_sources(template) if t == "HttpApi")

    for rule in plan.rules:
        declared_targets = resources[rule.logical]["Properties"]["Targets"] if rule.source == "resource" else []
        assert len(rule.targets) == len(declared_targets) or rule.source == "function-event"
    # every other resource is provisioned or deliberately skipped, with a reason
    assert set(plan.resources) | set(plan.skipped) == set(resources)
    assert all(plan.skipped.values())


def test_plan_details_match_the_template(template: dict[str, Any]) -> None:
    """Given template.yaml, then handlers, batch settings, schedules and substitutions are taken from it."""
    plan = plan_of(template)
    assert plan.functions["WaybillTasksFunction"].module == "functions.waybill_tasks.handler"
    assert plan.functions["WaybillTasksFunction"].timeout == 30
    assert plan.functions["CarrierWebhookFunction"].memory == 256
    dispatch = next(s for s in plan.sqs_sources if s.function == "WaybillDispatchFunction")
    assert (dispatch.batch_size, dispatch.batching_window_seconds, dispatch.report_batch_item_failures) == (
        10,
        1.0,
        True,
    )
    assert {s.expression for s in plan.schedules} == {
        "rate(30 minutes)",
        "rate(15 minutes)",
        "rate(5 minutes)",
        "rate(1 hour)",
    }
    definition = plan.state_machines["WaybillStateMachine"].definition
    assert "${" not in definition
    assert "function:parcelhub-dev-waybill-tasks" in definition
    route_keys = {r.route_key for r in plan.routes}
    assert "GET /v1/health" in route_keys
    assert "POST /v1/webhooks/sf/{token}" in route_keys  # kept for WebhookFunctionUrl=disabled (China regions)
    url = plan.function_urls["CarrierWebhookFunction"]
    assert (url.logical, url.auth_type, url.invoke_mode) == ("CarrierWebhookFunctionUrl", "NONE", "BUFFERED")
    assert plan.functions["CarrierWebhookFunction"].reserved_concurrency is None  # WebhookConcurrencyLimit 0
    tasks = plan.functions["WaybillTasksFunction"].environment["WEBHOOK_BASE_URL"]
    assert tasks.startswith("https://")
    assert tasks.endswith(".lambda-url.us-east-1.on.aws/")
    # where function URLs are not available, the URL resources are not made and the carriers push to the API
    china = plan_of(template, WebhookFunctionUrl="disabled")
    assert china.function_urls == {}
    assert {"CarrierWebhookFunctionUrl", "CarrierWebhookFunctionUrlInvoke"} <= set(china.skipped)
    assert china.functions["WaybillTasksFunction"].environment["WEBHOOK_BASE_URL"].endswith(".amazonaws.com/dev")
    assert plan.queues["TrackingUpdatesQueue"].max_receive_count == 5
    relay = next(s for s in plan.stream_sources if s.function == "EventRelayFunction")
    assert (relay.table, relay.starting_position, relay.batch_size, relay.on_failure_queue) == (
        "ParcelhubTable",
        "TRIM_HORIZON",
        100,
        "EventRelayDLQ",
    )
    assert relay.report_batch_item_failures
    assert relay.bisect_on_error
    assert relay.filters[0]["dynamodb"]["Keys"]["sk"]["S"] == ["META", "HEALTH", "OUTBOX"]
    ops = next(r for r in plan.rules if r.logical == "OpsAlertsRule")
    assert ops.targets[0].kind == "sns"
    assert ops.targets[0].input_transformer is not None


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda t: t["Resources"].__setitem__("Stream", {"Type": "AWS::Kinesis::Stream", "Properties": {}}), "Kinesis"),
        (
            lambda t: t["Resources"]["StallDetectorFunction"]["Properties"]["Events"].__setitem__(
                "Stream", {"Type": "DynamoDB", "Properties": {"Stream": "arn"}}
            ),
            "Stream must be a table of this template",
        ),
        (
            lambda t: t["Resources"]["OpsAlertsRule"]["Properties"]["Targets"].append(
                {"Id": "x", "Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:x"}
            ),
            "not delivered",
        ),
    ],
)
def test_no_drift_unknown_things_fail_the_plan(template: dict[str, Any], mutation: Any, message: str) -> None:
    """Given a template that gains something the runner does not wire, then building the plan fails."""
    changed = copy.deepcopy(template)
    mutation(changed)
    with pytest.raises(UnsupportedTemplate, match=message):
        plan_of(changed)


def test_environment_union_has_no_conflicts(template: dict[str, Any]) -> None:
    """Given all functions share one process, then no variable has two different values across them."""
    plan = plan_of(template)
    union = environment_union(plan.functions)
    for function in plan.functions.values():
        for name, value in function.environment.items():
            assert union[name] == value
    assert union["TABLE_NAME"] == "parcelhub-dev"


def test_environment_union_refuses_a_conflict(template: dict[str, Any]) -> None:
    """Given two functions that set one variable differently, then the union is refused."""
    changed = copy.deepcopy(template)
    changed["Resources"]["EventRelayFunction"]["Properties"]["Environment"]["Variables"]["TABLE_NAME"] = "other"
    with pytest.raises(EnvironmentConflict, match="TABLE_NAME"):
        environment_union(plan_of(changed).functions)


def test_globals_merge_like_sam() -> None:
    """Given Globals and a function's own properties, then maps merge, lists append, scalars are replaced."""
    from sandbox.local.template import merge_globals

    merged = merge_globals(
        {"Timeout": 10, "Layers": ["a"], "Environment": {"Variables": {"A": "1", "B": "1"}}},
        {"Timeout": 30, "Layers": ["b"], "Environment": {"Variables": {"B": "2"}}},
    )
    assert merged == {"Timeout": 30, "Layers": ["a", "b"], "Environment": {"Variables": {"A": "1", "B": "2"}}}


def test_template_is_plain_yaml_for_other_tools() -> None:
    """Sanity: the CFN loader does not leak into yaml's global SafeLoader."""
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load("a: !Ref B")


def test_a_secret_parameter_without_default_gets_a_fresh_random_value_per_local_start() -> None:
    # Given the committed template, whose OMS callback key has no default (it is a secret)
    template = load_template(ROOT / "template.yaml")
    assert "Default" not in template["Parameters"]["OmsCallbackApiKey"]
    # When the local stack resolves its parameters twice, Then each start draws its own strong value
    first = Resolver(template).parameters["OmsCallbackApiKey"]
    second = Resolver(template).parameters["OmsCallbackApiKey"]
    assert first != second
    assert len(first) >= 16


def test_every_sqs_source_queue_hides_a_batch_longer_than_lambda_can_hold_it(template: dict[str, Any]) -> None:
    """Given the template's SQS event sources, then each queue's visibility timeout is at least six times its
    function's timeout, as AWS asks ("the extra time allows Lambda to retry if your function is throttled while
    processing a previous batch": https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html);
    below it a batch still being processed becomes visible again and is delivered twice."""
    plan = plan_of(template)
    assert plan.sqs_sources
    for source in plan.sqs_sources:
        queue = plan.queues[source.queue]
        needed = 6 * plan.functions[source.function].timeout
        assert int(queue.attributes["VisibilityTimeout"]) >= needed, (source.queue, source.function, needed)
