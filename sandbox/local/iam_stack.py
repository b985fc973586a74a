"""The runner's side of IAM: what AWS's services check before they call a function or a target.

* an SQS event source mapping needs ``sqs:ReceiveMessage``/``DeleteMessage``/``GetQueueAttributes`` in the
  function's role (AWS refuses to create the mapping otherwise: so does the runner, at start); a DynamoDB
  stream mapping needs ``dynamodb:DescribeStream``/``GetRecords``/``GetShardIterator``/``ListStreams`` on
  the stream and, with an ``OnFailure`` queue, ``sqs:SendMessage`` on it;
* an HTTP API route needs a Lambda permission for ``apigateway.amazonaws.com`` matching its route ARN;
* Step Functions invokes a task function with the state machine's role (``lambda:InvokeFunction``);
* a ``ScheduleV2`` event invokes its function with the schedule's role;
* an EventBridge rule reaches an SNS topic or SQS queue (targets, dead-letter queues) through the
  resource's policy for ``events.amazonaws.com`` with ``aws:SourceArn`` = the rule (and, for a
  KMS-encrypted topic, the key policy's ``kms:GenerateDataKey*``/``kms:Decrypt`` for the service),
  an API destination through the target's role (``events:InvokeApiDestination``), a function through
  a Lambda permission.

Everything refused is recorded with the calls the functions were refused (:class:`Enforcer`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sandbox.local.iam import STREAM_ESM_ACTIONS, IamModel, Request, logical_of, role_name, translate
from sandbox.local.iam_calls import Enforcer
from sandbox.local.template import ACCOUNT_ID, REGION, Plan, Resolver, Rule, RuleTarget, Schedule

EVENTS = "events.amazonaws.com"
ESM_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


class DeploymentDenied(Exception):
    """What ``sam deploy`` would fail on: an event source the function's role cannot read."""


class StackIam:
    """Built in two steps: :meth:`translate` before provisioning (the roles' ARNs are known from the
    translation alone), :meth:`build` once the resources exist (statements resolve to their real ARNs)."""

    def __init__(self, translated: Mapping[str, Any]) -> None:
        self.translated = translated
        self.model = IamModel()
        self.enforcer = Enforcer(self.model, {})
        self.resolver: Resolver | None = None
        self.plan = Plan(parameters={})

    @classmethod
    def translate(cls, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> StackIam:
        return cls(translate(template, parameters))

    def state_machine_role_arns(self) -> dict[str, str]:
        """State machine logical id -> the ARN of the role the SAM transform gives it."""
        arns: dict[str, str] = {}
        for logical, resource in (self.translated.get("Resources") or {}).items():
            if resource.get("Type") == "AWS::StepFunctions::StateMachine":
                role = (resource.get("Properties") or {}).get("RoleArn")
                if isinstance(role, dict) and "Fn::GetAtt" in role:
                    arns[logical] = f"arn:aws:iam::{ACCOUNT_ID}:role/{role_name(logical_of(role))}"
                elif isinstance(role, str):
                    arns[logical] = role
        return arns

    def build(self, resolver: Resolver, plan: Plan) -> None:
        self.model = IamModel.build(self.translated, resolver)
        self.resolver = resolver
        self.plan = plan
        self.enforcer = Enforcer(self.model, {logical: f.name for logical, f in plan.functions.items()})

    # ------------------------------------------------------------------ at start
    def check_deployment(self, api_ids: Mapping[str, str]) -> None:
        """Event source mappings and API routes, as AWS checks them when the stack is deployed/called."""
        problems: list[str] = []
        for source in self.plan.sqs_sources:
            role = self.model.role_of_function(source.function)
            for action in ESM_ACTIONS:
                request = Request(action, source.queue_arn)
                if role is None or self.model.identity_allows(role, request) != "allow":
                    self.enforcer.record(source.function, action, source.queue_arn, "event source mapping")
                    problems.append(
                        f"{source.function}.{source.event}: the provided execution role does not have permissions"
                        f" to call {action.split(':')[1]} on SQS ({action} on {source.queue_arn})"
                    )
        for stream in self.plan.stream_sources:
            wanted = [(action, stream.stream_arn) for action in STREAM_ESM_ACTIONS]
            if stream.on_failure_queue and self.resolver is not None:
                wanted.append(("sqs:SendMessage", str(self.resolver.ids(stream.on_failure_queue)["Arn"])))
            role = self.model.role_of_function(stream.function)
            for action, arn in wanted:
                if role is None or self.model.identity_allows(role, Request(action, arn)) != "allow":
                    self.enforcer.record(stream.function, action, arn, "event source mapping")
                    problems.append(
                        f"{stream.function}.{stream.event}: the provided execution role does not have permissions"
                        f" to call {action.split(':')[1]} ({action} on {arn})"
                    )
        for route in self.plan.routes:
            method = "*" if route.method == "ANY" else route.method
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            api = api_ids.get(route.api, "")
            source_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api}/{route.stage}/{method}{path}"
            if not self.model.permission_allows(route.function, "apigateway.amazonaws.com", source_arn):
                self.enforcer.record(route.api, "lambda:InvokeFunction", route.function, source_arn)
                problems.append(f"{route.function}.{route.event}: no Lambda permission for API Gateway ({source_arn})")
        for url in self.plan.function_urls.values():
            denial = self.model.function_url_denial(url.function, url.auth_type)
            if denial is not None:
                self.enforcer.record(url.logical, "lambda:InvokeFunctionUrl", url.function, denial)
                problems.append(f"{url.function}.FunctionUrlConfig: {denial}")
        if problems:
            raise DeploymentDenied("; ".join(problems))

    # ------------------------------------------------------------------ service principals
    def state_machine_may_invoke(self, role_arn: str, function_name: str) -> str | None:
        """Why the state machine's role may not invoke the function (None when it may)."""
        function = next((f for f in self.plan.functions.values() if f.name == function_name), None)
        if function is None:
            return None
        role = self.model.role_by_arn(role_arn)
        if self.enforcer.may_invoke(role, function.logical, function.arn, f"states:{role_arn.rsplit('/', 1)[-1]}"):
            return None
        role_name = role.name if role is not None else role_arn
        return (
            f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/states is not authorized to perform:"
            f" lambda:InvokeFunction on resource: {function.arn} because no identity-based policy allows the"
            " lambda:InvokeFunction action (Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException)"
        )

    def schedule_may_invoke(self, schedule: Schedule) -> bool:
        if schedule.function is None:
            return True
        function = self.plan.functions[schedule.function]
        if schedule.kind == "ScheduleV2":
            roles = self.model.schedule_roles
            logical = roles.get(f"{schedule.function}{schedule.event}") or roles.get(schedule.name)
            role = self.model.roles.get(logical) if logical else None
            if role is not None and "scheduler.amazonaws.com" not in role.trusted:
                role = None
            return self.enforcer.may_invoke(role, schedule.function, function.arn, f"schedule:{schedule.name}")
        rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{schedule.name}"
        if self.model.permission_allows(schedule.function, EVENTS, rule_arn):
            return True
        self.enforcer.record(f"schedule:{schedule.name}", "lambda:InvokeFunction", function.arn, "no Lambda permission")
        return False

    def authorize_target(self, rule: Rule, target: RuleTarget, arn: str) -> str | None:  # noqa: PLR0911 - per target kind
        """Why EventBridge may not deliver to ``arn`` for this rule (None when it may)."""
        rule_arn = self._rule_arn(rule)
        who = f"rule:{rule.name}"
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        if arn == target.arn and target.kind == "api-destination":
            role = self.model.role_by_arn(target.role_arn or "")
            request = Request("events:InvokeApiDestination", arn)
            if role is not None and EVENTS in role.trusted and self.model.identity_allows(role, request) == "allow":
                return None
            self.enforcer.record(who, request.action, arn, f"target role {target.role_arn}")
            return f"role {target.role_arn} may not perform events:InvokeApiDestination on {arn}"
        if arn == target.arn and target.kind == "lambda":
            if target.logical and self.model.permission_allows(target.logical, EVENTS, rule_arn):
                return None
            self.enforcer.record(who, "lambda:InvokeFunction", arn, "no Lambda permission for the rule")
            return f"no Lambda permission lets {rule_arn} invoke {arn}"
        if service == "sns":
            if not self.enforcer.service_may(EVENTS, Request("sns:Publish", arn), arn, who, rule_arn):
                return f"the topic policy of {arn} does not let {EVENTS} (rule {rule_arn}) publish"
            key_arn = self._topic_key(arn)
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                if key_arn and not self.enforcer.service_may(EVENTS, Request(action, key_arn), key_arn, who, rule_arn):
                    return f"the key policy of {key_arn} does not let {EVENTS} perform {action}"
            return None
        if service == "sqs":
            if self.enforcer.service_may(EVENTS, Request("sqs:SendMessage", arn), arn, who, rule_arn):
                return None
            return f"the queue policy of {arn} does not let {EVENTS} (rule {rule_arn}) send messages"
        return None

    # ------------------------------------------------------------------ helpers
    def _rule_arn(self, rule: Rule) -> str:
        assert self.resolver is not None
        if rule.logical in self.resolver.resources:
            return self.resolver.get_att(rule.logical, "Arn")
        path = f"rule/{rule.name}" if rule.bus == "default" else f"rule/{rule.bus}/{rule.name}"
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:{path}"

    def _topic_key(self, topic_arn: str) -> str | None:
        assert self.resolver is not None
        for logical, resource in self.resolver.resources.items():
            if resource.get("Type") != "AWS::SNS::Topic" or self.resolver.ids(logical)["Ref"] != topic_arn:
                continue
            key = (resource.get("Properties") or {}).get("KmsMasterKeyId")
            if isinstance(key, dict) and "Ref" in key and key["Ref"] in self.resolver.resources:
                return self.resolver.get_att(key["Ref"], "Arn")
        return None

    def snapshot(self) -> dict[str, Any]:
        return self.enforcer.snapshot()
