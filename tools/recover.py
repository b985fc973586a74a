"""Ops recovery for the tracking path: inspect and redrive each dead-letter queue, and replay the raw push
archive through the normalizer after a mapping fix. Every action is idempotent.

Against the local stack (reads ``var/local-stack.json``: moto's endpoint and the resources)::

    python -m tools.recover dlq                           # every DLQ: depth, and each message with its reason
    python -m tools.recover redrive tracking              # tracking-updates DLQ -> tracking-updates queue
    python -m tools.recover replay --provider kdniao --since 2026-11-30T00:00 --until 2026-11-30T12:00

Against a deployed stack (standard AWS credentials, region and ``AWS_ENDPOINT_URL``; resources from the
stack's outputs)::

    python -m tools.recover --stack parcelhub-prod dlq

Queues: ``tracking`` (pushes the normalizer could not ingest; the reason is its ``tracking message failed``
log line), ``waybill`` (waybill requests), ``relay`` (committed changes the event relay could not announce:
set-aside records with their reason, or Lambda's pointers to a stream range — redrive within the stream's
24 h retention), ``rules`` (events a rule target did not take; redriven by publishing them again — their
ids are unchanged, consumers dedupe).

Redrive sends each message back where it came from and deletes it only when that worked. The normalizer
stores a scan once per content hash and applies states conditionally, the dispatcher names executions by
shipment id, and events carry deterministic ids: redriving twice changes nothing. ``replay`` re-sends the
archived pushes of one provider received in a time range (``raw/<yyyy>/<mm>/<dd>/*.jsonl.gz``) marked
``replay``: the normalizer replaces the stored scans with their current mapping and re-decides each
parcel's status from its whole timeline — a second replay finds nothing to change.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parcelhub.app.envelopes import day_prefixes, replay_body

#: queue name -> (its DLQ's logical id, where a redrive sends messages)
QUEUES: dict[str, tuple[str, str | None]] = {
    "tracking": ("TrackingUpdatesDLQ", "TrackingUpdatesQueue"),
    "waybill": ("WaybillRequestsDLQ", "WaybillRequestsQueue"),
    "relay": ("EventRelayDLQ", None),
    "rules": ("EventRulesDLQ", None),
}
#: stack outputs -> the logical ids the local handle names
OUTPUTS = {
    "TrackingUpdatesDLQUrl": "TrackingUpdatesDLQ",
    "TrackingUpdatesQueueUrl": "TrackingUpdatesQueue",
    "WaybillRequestsDLQUrl": "WaybillRequestsDLQ",
    "WaybillRequestsQueueUrl": "WaybillRequestsQueue",
    "EventRelayDLQUrl": "EventRelayDLQ",
    "EventRulesDLQUrl": "EventRulesDLQ",
    "DataBucketName": "DataBucket",
    "EventBusName": "EventBus",
    "TableName": "ParcelhubTable",
    "ConfigParameterName": "ConfigParameter",
}
LOG_GROUP = "/aws/lambda/{stack}-tracking-normalizer"


@dataclass
class Stack:
    """Where the stack's resources are and how to reach them."""

    resources: dict[str, str]
    endpoint: str | None = None
    local_log: Path | None = None
    log_group: str | None = None

    def client(self, service: str) -> Any:
        import boto3

        if self.endpoint is None:
            return boto3.client(service)  # type: ignore[call-overload]
        from sandbox.local.stack import moto_client

        return moto_client(service, self.endpoint)

    def get(self, logical: str) -> str:
        if logical not in self.resources:
            raise SystemExit(f"the stack has no {logical}")
        return self.resources[logical]

    @classmethod
    def local(cls, local_dir: Path) -> Stack:
        handle = json.loads((local_dir / "local-stack.json").read_text(encoding="utf-8"))
        return cls(dict(handle["resources"]), str(handle["moto_url"]), local_dir / "runner.log")

    @classmethod
    def deployed(cls, name: str) -> Stack:
        import boto3

        stack = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        resources = {OUTPUTS[key]: value for key, value in outputs.items() if key in OUTPUTS}
        prefix = outputs.get("TableName", name)
        return cls(resources, log_group=LOG_GROUP.format(stack=prefix))


# ------------------------------------------------------------------------------------------- queues


def drain(sqs: Any, url: str, limit: int, *, visibility: int = 30) -> Iterator[dict[str, Any]]:
    """Up to ``limit`` messages (received for ``visibility`` seconds: a failed redrive reappears)."""
    seen = 0
    while seen < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - seen),
            VisibilityTimeout=visibility,
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            return
        for message in batch:
            seen += 1
            yield message


def reason_of(stack: Stack, queue: str, message: Mapping[str, Any]) -> str:
    """Why a message is dead-lettered: its own content, or the normalizer's log line for its id."""
    body = str(message.get("Body", ""))
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and "reason" in document:
        return str(document["reason"])
    if isinstance(document, dict) and "DDBStreamBatchInfo" in document:
        info = document["DDBStreamBatchInfo"]
        condition = document.get("requestContext", {}).get("condition", "")
        return f"{condition}: stream records {info.get('startSequenceNumber')}..{info.get('endSequenceNumber')}"
    if queue != "tracking":
        return ""
    message_id = str(message.get("MessageId", ""))
    for line in _log_lines(stack, message_id):
        if line.get("message") == "tracking message failed" and line.get("message_id") == message_id:
            return f"{line.get('stage')}: {line.get('reason')}"
    return "(no log line found)"


def _log_lines(stack: Stack, needle: str) -> Iterator[dict[str, Any]]:
    if stack.local_log is not None and stack.local_log.exists():
        with stack.local_log.open(encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                if needle in raw and raw.lstrip().startswith("{"):
                    try:
                        yield json.loads(raw)
                    except ValueError:
                        continue
    elif stack.log_group:
        logs = stack.client("logs")
        try:
            events = logs.filter_log_events(logGroupName=stack.log_group, filterPattern=f'"{needle}"', limit=20)
        except Exception:  # no permission or no log group: the reason stays unknown
            return
        for event in events.get("events", []):
            try:
                yield json.loads(event["message"])
            except ValueError:
                continue


def show(stack: Stack, names: list[str], limit: int) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    report = []
    for name in names:
        url = stack.get(QUEUES[name][0])
        depth = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        received = list(drain(sqs, url, limit, visibility=10))  # each message once in this listing
        messages = [
            {
                "message_id": m["MessageId"],
                "receive_count": int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                "reason": reason_of(stack, name, m),
                "summary": _summary(str(m["Body"])),
            }
            for m in received
        ]
        for m in received:  # looking changes nothing: visible again at once (a redrive right after finds them)
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        report.append({"queue": name, "depth": depth, "messages": messages})
    return report


def _summary(body: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {"bytes": len(body)}
    if not isinstance(document, dict):
        return {"bytes": len(body)}
    keys = ("provider", "kind", "received_at", "shipment_id", "detail-type", "replay")
    found = {key: document[key] for key in keys if key in document}
    return found or {"keys": sorted(document)[:8]}


def redrive(stack: Stack, name: str, limit: int) -> dict[str, int]:
    dlq_logical, target_logical = QUEUES[name]
    sqs = stack.client("sqs")
    dlq = stack.get(dlq_logical)
    moved = failed = 0
    for message in list(drain(sqs, dlq, limit)):
        try:
            if target_logical is not None:
                sqs.send_message(QueueUrl=stack.get(target_logical), MessageBody=message["Body"])
            elif name == "relay":
                _redrive_relay(stack, json.loads(message["Body"]))
            else:
                _republish(stack, json.loads(message["Body"]))
        except Exception as exc:
            failed += 1
            print(json.dumps({"message_id": message["MessageId"], "not_redriven": f"{type(exc).__name__}: {exc}"}))
            continue
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
        moved += 1
    return {"redriven": moved, "failed": failed}


def _republish(stack: Stack, event: Mapping[str, Any]) -> None:
    from parcelhub.events.publishing import RETRYABLE_CODES

    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"], ensure_ascii=False),
        "EventBusName": stack.get("EventBus"),
    }
    reply = stack.client("events").put_events(Entries=[entry])
    if reply.get("FailedEntryCount"):
        code = reply["Entries"][0].get("ErrorCode", "")
        raise RuntimeError(f"PutEvents failed: {code}{' (retry later)' if code in RETRYABLE_CODES else ''}")


def _redrive_relay(stack: Stack, document: Mapping[str, Any]) -> None:
    """A set-aside record is relayed again; a Lambda pointer is read back from the stream and relayed."""
    if "record" in document:
        records = [dict(document["record"])]
    else:
        records = _stream_range(stack, dict(document["DDBStreamBatchInfo"]))
    result = _relay(stack).relay(records)
    if result.failed_record or result.quarantined:
        raise RuntimeError(result.reason or "the record still cannot be announced")


def _stream_range(stack: Stack, info: Mapping[str, Any]) -> list[dict[str, Any]]:
    from sandbox.local.streams import lambda_stream_record

    streams = stack.client("dynamodbstreams")
    arn, start, end = str(info["streamArn"]), int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=info["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=str(start)
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        reply = streams.get_records(ShardIterator=iterator, Limit=1000)
        batch = [r for r in reply.get("Records", []) if int(r["dynamodb"]["SequenceNumber"]) <= end]
        records += [lambda_stream_record(r, arn) for r in batch]
        if not reply.get("Records") or len(batch) < len(reply["Records"]):
            break
        iterator = reply.get("NextShardIterator")
    return records


def _relay(stack: Stack) -> Any:
    from parcelhub.adapters.dynamodb.stream import decode_record
    from parcelhub.adapters.eventbridge import EventBridgePublisher
    from parcelhub.app.outbox import OutboxRelay
    from parcelhub.config import HubConfig

    class _Refuse:
        def send(self, bodies: Any) -> None:
            raise RuntimeError("still not derivable: it stays in the DLQ")

    config = HubConfig()
    if "ConfigParameter" in stack.resources:
        value = stack.client("ssm").get_parameter(Name=stack.resources["ConfigParameter"])["Parameter"]["Value"]
        config = HubConfig.model_validate_json(value or "{}")
    events = stack.client("events")
    return OutboxRelay(
        publisher=EventBridgePublisher(stack.get("EventBus"), client_factory=lambda: events),
        decode=decode_record,
        quarantine=_Refuse(),
        config=lambda: config,
        metric=lambda *args, **kwargs: None,
    )


# ------------------------------------------------------------------------------------------- replay


def replay(stack: Stack, provider: str, since: datetime, until: datetime, *, dry_run: bool) -> dict[str, int]:
    """Send the archived pushes of ``provider`` received in [since, until] back through the normalizer."""
    s3, sqs = stack.client("s3"), stack.client("sqs")
    bucket, queue = stack.get("DataBucket"), stack.get("TrackingUpdatesQueue")
    seen: set[str] = set()
    pending: list[str] = []
    counts = {"objects": 0, "lines": 0, "replayed": 0}

    def flush() -> None:
        if pending and not dry_run:
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(pending)]
            reply = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
            if reply.get("Failed"):
                raise RuntimeError(f"{len(reply['Failed'])} replay messages not sent: run the replay again")
        counts["replayed"] += len(pending)
        pending.clear()

    for prefix in day_prefixes(since, until):
        for key in _keys(s3, bucket, prefix):
            counts["objects"] += 1
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for raw in gzip.decompress(data).decode("utf-8").splitlines():
                counts["lines"] += 1
                body = _wanted(raw, provider, since, until)
                if body is None:
                    continue
                digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
                if digest in seen:  # the same push archived twice (a redelivered batch)
                    continue
                seen.add(digest)
                pending.append(body)
                if len(pending) == 10:
                    flush()
    flush()
    return counts


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    token: dict[str, Any] = {}
    while True:
        reply = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **token)
        yield from (item["Key"] for item in reply.get("Contents", []))
        if not reply.get("IsTruncated"):
            return
        token = {"ContinuationToken": reply["NextContinuationToken"]}


def _wanted(line: str, provider: str, since: datetime, until: datetime) -> str | None:
    """The replay message of an archive line when it is one of ``provider``'s pushes received in range."""
    try:
        body = str(json.loads(line)["body"])
        envelope = json.loads(body)
        received = datetime.fromisoformat(str(envelope.get("received_at")))
    except (ValueError, KeyError, TypeError):
        return None
    if envelope.get("provider") != provider or not since <= received <= until:
        return None
    return replay_body(body)


# ------------------------------------------------------------------------------------------- CLI


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.recover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="a deployed stack's name (default: the local stack)")
    parser.add_argument("--local-dir", type=Path, default=Path("var"), help="the local stack's directory")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("dlq", help="each DLQ's depth and messages, with the reason")
    inspect.add_argument("queues", nargs="*", choices=list(QUEUES), default=list(QUEUES))
    inspect.add_argument("--max", type=int, default=10)
    again = commands.add_parser("redrive", help="send a DLQ's messages back (idempotent)")
    again.add_argument("queue", choices=list(QUEUES))
    again.add_argument("--max", type=int, default=1000)
    archive = commands.add_parser("replay", help="replay archived pushes through the normalizer (idempotent)")
    archive.add_argument("--provider", required=True, choices=["kdniao", "sf", "kuaidi100"])
    archive.add_argument("--since", required=True, type=_time, help="ISO time (UTC when no offset)")
    archive.add_argument("--until", required=True, type=_time, help="ISO time (UTC when no offset)")
    archive.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    stack = Stack.deployed(args.stack) if args.stack else Stack.local(args.local_dir)
    if args.command == "dlq":
        result: Any = show(stack, list(args.queues) or list(QUEUES), args.max)
    elif args.command == "redrive":
        result = redrive(stack, args.queue, args.max)
    else:
        result = replay(stack, args.provider, args.since, args.until, dry_run=args.dry_run)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
