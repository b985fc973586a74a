"""Create every resource of the template in moto with boto3 (moto's CloudFormation is not a faithful
target for SAM output: it drops subscriptions and schedules and ignores DefinitionSubstitutions and TTL).

Resources are created in dependency order; each one's properties are resolved just before it is
created, so ids only AWS knows (KMS key ids, secret ARNs, connection ARNs) are the real moto ones
wherever they are referenced. Local adjustments (all documented in README.md):

* SQS ``VisibilityTimeout`` is multiplied by ``PARCELHUB_TIME_SCALE`` (min 1 s) so failed records
  reappear in seconds;
* the SSM config parameter's value is deep-merged with ``$PARCELHUB_CONFIG``/``$PARCELHUB_CONFIG_FILE``;
* the secrets get the local values (:mod:`sandbox.local.secret_parts`: OMS key hash, tracking-link secret,
  each provider's credentials with its ``base_url`` pointed at its sandbox); one with none stays unset;
* every rule target is replaced by a *shadow* SQS queue (moto matches the pattern and delivers there;
  :mod:`sandbox.local.rules` delivers to the real target), and every topic gets a shadow SQS
  subscription (the ops alert log);
* every function also exists as a moto Lambda function (dummy code) so Step Functions and SNS have an
  ARN to invoke; moto's invocation is redirected to the real handler (:mod:`sandbox.local.lambdas`).
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.local.settings import deep_merge
from sandbox.local.template import ACCOUNT_ID, REGION, Plan, Resolver, UnsupportedTemplate, function_properties

log = logging.getLogger("parcelhub.local")

LAMBDA_ROLE = "parcelhub-local-lambda"
STATES_ROLE = "parcelhub-local-states"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


def scaled_visibility(seconds: int | str, scale: float) -> int:
    """A queue's VisibilityTimeout on the local clock (at least 1 s)."""
    return max(1, math.ceil(int(seconds) * scale))


def references(value: Any) -> set[str]:
    """Logical ids (or parameter names) a property value refers to."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.split(".", 1)[0] if isinstance(arg, str) else str(arg[0]))
            elif key == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) else arg
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", str(text))}
                if isinstance(arg, list):
                    found |= references(arg[1])
            else:
                found |= references(arg)
    return found


def creation_order(template: Mapping[str, Any]) -> list[str]:
    """Resources in dependency order (a cycle falls back to template order for its members)."""
    resources: dict[str, Any] = template["Resources"]
    deps: dict[str, set[str]] = {}
    for logical, resource in resources.items():
        properties = (
            function_properties(template, logical)
            if resource.get("Type") == "AWS::Serverless::Function"
            else resource.get("Properties") or {}
        )
        depends_on = resource.get("DependsOn") or []
        depends = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        deps[logical] = {d for d in references(properties) | depends if d in resources and d != logical}
    ordered: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(node: str) -> None:
        if node in done or node in visiting:
            return
        visiting.add(node)
        for dep in sorted(deps[node]):
            visit(dep)
        visiting.discard(node)
        done.add(node)
        ordered.append(node)

    for logical in resources:
        visit(logical)
    return ordered


def dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    raise RuntimeError('run locally')\n")
    return buffer.getvalue()


@dataclass
class Provisioned:
    """What the provisioner created beyond the template's own ids."""

    rule_shadow_queues: dict[tuple[str, str], str] = field(default_factory=dict)  # (rule, target id) -> url
    topic_shadow_queues: dict[str, str] = field(default_factory=dict)  # topic logical -> url
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)  # connection arn -> auth params
    api_destinations: dict[str, dict[str, Any]] = field(default_factory=dict)  # arn -> {endpoint, method, connection}


class Provisioner:
    def __init__(
        self,
        template: Mapping[str, Any],
        resolver: Resolver,
        client: Callable[[str], Any],
        *,
        time_scale: float,
        config_overrides: Mapping[str, Any],
        secret_document: Callable[[str], Mapping[str, Any] | None],
        base_dir: Any,
        state_machine_roles: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.resolver = resolver
        self.client = client
        self.time_scale = time_scale
        self.config_overrides = dict(config_overrides)
        self.secret_document = secret_document
        self.base_dir = base_dir
        #: state machine logical id -> its role's ARN as deployed (Step Functions passes it to each task)
        self.state_machine_roles = dict(state_machine_roles or {})
        self.out = Provisioned()

    # ------------------------------------------------------------------ entry points
    def provision_resources(self) -> None:
        """Create every enabled resource except the rules' targets (see :meth:`provision_rules`)."""
        self._roles()
        for logical in creation_order(self.template):
            resource = self.template["Resources"][logical]
            if not self.resolver.resource_enabled(logical):
                continue
            create = getattr(self, "_" + resource["Type"].replace("::", "_").replace("AWS_", "", 1), None)
            if create is None:
                continue  # skipped types (alarms, layer) - see template.SKIPPED_TYPES
            if resource["Type"] == "AWS::Serverless::Function":
                properties = function_properties(self.template, logical)
            else:
                properties = resource.get("Properties") or {}
            create(logical, properties)

    def provision_rules(self, plan: Plan) -> None:
        """Rules from the plan (resources and function events): the pattern goes to moto, each target
        is a shadow SQS queue the rule deliverer reads."""
        events = self.client("events")
        sqs = self.client("sqs")
        for rule in plan.rules:
            if rule.event_pattern is None:
                continue  # schedule-only rules are fired by the scheduler
            events.put_rule(
                Name=rule.name,
                EventBusName=rule.bus,
                EventPattern=json.dumps(rule.event_pattern),
                State="ENABLED" if rule.enabled else "DISABLED",
            )
            targets = []
            for target in rule.targets:
                name = _queue_name(f"parcelhub-local-rule-{rule.name}-{target.id}")
                url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.out.rule_shadow_queues[(rule.logical, target.id)] = url
                targets.append({"Id": target.id, "Arn": arn})
            if targets:
                events.put_targets(Rule=rule.name, EventBusName=rule.bus, Targets=targets)

    # ------------------------------------------------------------------ helpers
    def _record(self, logical: str, **ids: str) -> None:
        self.resolver.physical.setdefault(logical, {}).update(ids)

    def _roles(self) -> None:
        iam = self.client("iam")
        for name in (LAMBDA_ROLE, STATES_ROLE):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"

    # ------------------------------------------------------------------ one method per resource type
    def _KMS_Key(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        kms = self.client("kms")
        kwargs: dict[str, Any] = {"Description": props.get("Description", "")}
        if props.get("KeyPolicy"):
            kwargs["Policy"] = json.dumps(props["KeyPolicy"])
        if props.get("KeySpec"):
            kwargs["KeySpec"] = props["KeySpec"]
        if props.get("KeyUsage"):
            kwargs["KeyUsage"] = props["KeyUsage"]
        meta = kms.create_key(**kwargs)["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        self._record(logical, Ref=meta["KeyId"], KeyId=meta["KeyId"], Arn=meta["Arn"])

    def _DynamoDB_Table(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        ddb = self.client("dynamodb")
        kwargs = create_table_request(
            props, props["TableName"] if "TableName" in props else self.resolver.name_of(logical)
        )
        table = ddb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=kwargs["TableName"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            ddb.update_continuous_backups(
                TableName=kwargs["TableName"],
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        ids = {"Ref": kwargs["TableName"], "Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            ids["StreamArn"] = table["LatestStreamArn"]
        self._record(logical, **ids)

    def _S3_Bucket(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        s3 = self.client("s3")
        name = props.get("BucketName") or self.resolver.name_of(logical).lower()
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        if props.get("BucketEncryption"):
            rules = [
                {
                    ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                    for k, v in rule.items()
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if props.get("OwnershipControls"):
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        lifecycle = props.get("LifecycleConfiguration")
        if lifecycle:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle["Rules"]]}
            )
        self._record(logical, Ref=name, Arn=f"arn:aws:s3:::{name}")

    def _S3_BucketPolicy(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        policy = dict(props["PolicyDocument"])
        # moto evaluates bucket policies and the local endpoint is plain HTTP: a statement conditioned
        # on aws:SecureTransport would deny every request, so it is left out locally.
        policy["Statement"] = [s for s in policy.get("Statement", []) if "aws:SecureTransport" not in json.dumps(s)]
        if policy["Statement"]:
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(policy))

    def _SSM_Parameter(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        value = props["Value"]
        if self.config_overrides:
            try:
                document = json.loads(value)
            except json.JSONDecodeError:
                document = None
            if isinstance(document, dict):
                value = json.dumps(deep_merge(document, self.config_overrides), ensure_ascii=False)
        name = props.get("Name") or self.resolver.name_of(logical)
        self.client("ssm").put_parameter(
            Name=name,
            Value=value,
            Type=props.get("Type", "String"),
            Description=props.get("Description", ""),
            Overwrite=True,
        )
        self._record(logical, Ref=name)

    def _SecretsManager_Secret(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        name = props.get("Name") or self.resolver.name_of(logical)
        document = self.secret_document(str(name))
        kwargs: dict[str, Any] = {"Name": name, "Description": props.get("Description", "")}
        if document is not None:
            kwargs["SecretString"] = json.dumps(document, ensure_ascii=False)
        elif "SecretString" in props:
            kwargs["SecretString"] = props["SecretString"]
        if props.get("KmsKeyId"):
            kwargs["KmsKeyId"] = props["KmsKeyId"]
        arn = self.client("secretsmanager").create_secret(**kwargs)["ARN"]
        self._record(logical, Ref=arn, Id=arn)

    def _SQS_Queue(self, logical: str, properties: Mapping[str, Any]) -> None:
        from sandbox.local.template import _queue

        queue = _queue(logical, properties, self.resolver)
        attributes = dict(queue.attributes)
        attributes["VisibilityTimeout"] = str(
            scaled_visibility(attributes.get("VisibilityTimeout", "30"), self.time_scale)
        )
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._record(logical, Ref=url, QueueUrl=url, Arn=arn, QueueName=queue.name)

    def _SQS_QueuePolicy(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )

    def _SNS_Topic(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        name = props.get("TopicName") or self.resolver.name_of(logical)
        attributes = {}
        if props.get("DisplayName"):
            attributes["DisplayName"] = props["DisplayName"]
        if props.get("KmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = props["KmsMasterKeyId"]
        if props.get("FifoTopic"):
            attributes["FifoTopic"] = "true"
        sns = self.client("sns")
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for subscription in props.get("Subscription") or []:
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
        self._record(logical, Ref=arn, TopicArn=arn, TopicName=name)
        # the shadow subscription: every message published to the topic, whoever publishes it
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=_queue_name(f"parcelhub-local-topic-{name}"))["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        self.out.topic_shadow_queues[logical] = url

    def _SNS_Subscription(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        attributes = {
            key: json.dumps(props[key]) if isinstance(props[key], dict) else str(props[key]).lower()
            for key in ("FilterPolicy", "RawMessageDelivery", "RedrivePolicy")
            if key in props
        }
        arn = self.client("sns").subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self._record(logical, Ref=arn)

    def _SNS_TopicPolicy(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        for topic in props["Topics"]:
            self.client("sns").set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
            )

    def _Events_EventBus(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        self._record(logical, Ref=props["Name"], Name=props["Name"], Arn=arn)

    def _Events_Rule(self, logical: str, properties: Mapping[str, Any]) -> None:
        # The rule itself is created by provision_rules (with shadow targets); record its ARN now.
        name = self.resolver.name_of(logical)
        bus = str(self.resolver.resolve(properties.get("EventBusName", "default"))).rsplit("/", 1)[-1]
        path = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
        self._record(logical, Ref=name if bus == "default" else f"{bus}|{name}")
        self._record(logical, Arn=f"arn:aws:events:{REGION}:{ACCOUNT_ID}:{path}")

    def _Events_Connection(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        name = props.get("Name") or self.resolver.name_of(logical)
        arn = self.client("events").create_connection(
            Name=name, AuthorizationType=props["AuthorizationType"], AuthParameters=props["AuthParameters"]
        )["ConnectionArn"]
        self.out.connections[arn] = {"type": props["AuthorizationType"], "auth": props["AuthParameters"]}
        self._record(logical, Ref=name, Arn=arn)

    def _Events_ApiDestination(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        name = props.get("Name") or self.resolver.name_of(logical)
        kwargs: dict[str, Any] = {
            "Name": name,
            "ConnectionArn": props["ConnectionArn"],
            "InvocationEndpoint": props["InvocationEndpoint"],
            "HttpMethod": props["HttpMethod"],
        }
        if props.get("InvocationRateLimitPerSecond"):
            kwargs["InvocationRateLimitPerSecond"] = int(props["InvocationRateLimitPerSecond"])
        arn = self.client("events").create_api_destination(**kwargs)["ApiDestinationArn"]
        self.out.api_destinations[arn] = {
            "endpoint": props["InvocationEndpoint"],
            "method": props["HttpMethod"],
            "connection": props["ConnectionArn"],
        }
        self._record(logical, Ref=name, Arn=arn)

    def _IAM_Role(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        name = props.get("RoleName") or self.resolver.name_of(logical)
        arn = self.client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
        )["Role"]["Arn"]
        for policy in props.get("Policies") or []:
            self.client("iam").put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        self._record(logical, Ref=name, Arn=arn)

    def _Logs_LogGroup(self, logical: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(dict(properties))
        name = props.get("LogGroupName") or self.resolver.name_of(logical)
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if props.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))

    def _Serverless_HttpApi(self, logical: str, properties: Mapping[str, Any]) -> None:
        return  # served by the runner's HTTP server (http_api.py)

    def _Serverless_Function(self, logical: str, properties: Mapping[str, Any]) -> None:
        name = self.resolver.name_of(logical)
        variables = self.resolver.resolve((properties.get("Environment") or {}).get("Variables") or {})
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": str(self.resolver.resolve(properties.get("Runtime", "python3.13"))),
            "Role": self.role_arn(LAMBDA_ROLE),
            "Handler": str(self.resolver.resolve(properties.get("Handler", "handler.lambda_handler"))),
            "Code": {"ZipFile": dummy_zip()},
            "Timeout": int(self.resolver.resolve(properties.get("Timeout", 3))),
            "MemorySize": int(self.resolver.resolve(properties.get("MemorySize", 128))),
            "Environment": {"Variables": {str(k): str(v) for k, v in variables.items()}},
        }
        arn = self.client("lambda").create_function(**kwargs)["FunctionArn"]
        self._record(logical, Ref=name, Arn=arn)

    def _Serverless_StateMachine(self, logical: str, properties: Mapping[str, Any]) -> None:
        from sandbox.local.template import _state_machine

        machine = _state_machine(logical, properties, self.resolver, self.base_dir)
        if machine.type not in ("STANDARD", "EXPRESS"):
            raise UnsupportedTemplate(f"{logical}: state machine type {machine.type}")
        arn = self.client("stepfunctions").create_state_machine(
            name=machine.name,
            definition=machine.definition,
            roleArn=self.state_machine_roles.get(logical) or self.role_arn(STATES_ROLE),
            type=machine.type,
        )["stateMachineArn"]
        self._record(logical, Ref=arn, Arn=arn, Name=machine.name)


def _queue_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    if len(cleaned) <= 80:
        return cleaned
    import hashlib

    return cleaned[:71] + "-" + hashlib.sha256(cleaned.encode()).hexdigest()[:8]


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    api: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        api["ID"] = rule["Id"]
    api["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "NoncurrentVersionExpirationInDays" in rule:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return api


def create_table_request(props: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for an ``AWS::DynamoDB::Table``'s (resolved) properties; the tests use it
    too, so every table they create is the one the template declares."""
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = props.get("ProvisionedThroughput") or {
            "ReadCapacityUnits": 5,
            "WriteCapacityUnits": 5,
        }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            indexes = [dict(index) for index in props[key]]
            if kwargs["BillingMode"] == "PROVISIONED" and key == "GlobalSecondaryIndexes":
                for index in indexes:
                    index.setdefault("ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
            kwargs[key] = indexes
    if props.get("StreamSpecification"):
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    sse = props.get("SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))}
    return kwargs
