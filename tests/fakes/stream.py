"""A driver of the table's stream for in-process tests on moto: like Lambda's event source mapping, it
hands the records not relayed yet to the real ``event_relay`` handler (the transactional outbox's relay),
in order, retrying from a reported failure."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from sandbox.local.streams import first_failure, lambda_stream_record

REGION = "us-east-1"


class _Context:
    """What Powertools reads from a Lambda context."""

    function_name = "event-relay"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:event-relay"
    log_group_name = "/aws/lambda/event-relay"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class StreamRelay:
    """``relay()`` runs the relay over every record committed since the last call; returns how many."""

    def __init__(self, table: str, batch_size: int = 100) -> None:
        self.table = table
        self.batch_size = batch_size
        self._iterators: dict[str, str] = {}
        self._last: dict[str, str] = {}
        self._arn = ""

    @staticmethod
    def _streams() -> Any:
        # moto (decorator mode) does not serve botocore's account-based stream endpoints: name the regional one
        return boto3.client(
            "dynamodbstreams", region_name=REGION, endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com"
        )

    def records(self) -> list[dict[str, Any]]:
        """The records committed since the last call, shaped like Lambda's."""
        streams = self._streams()
        if not self._iterators:
            table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=self.table)["Table"]
            self._arn = table["LatestStreamArn"]
            for shard in streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]:
                self._iterators[shard["ShardId"]] = streams.get_shard_iterator(
                    StreamArn=self._arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        found: list[dict[str, Any]] = []
        for shard in list(self._iterators):
            if shard in self._last:  # moto puts back a copy of the table after a failed transaction: re-take
                self._iterators[shard] = streams.get_shard_iterator(
                    StreamArn=self._arn,
                    ShardId=shard,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=self._last[shard],
                )["ShardIterator"]
            while True:
                reply = streams.get_records(ShardIterator=self._iterators[shard], Limit=1000)
                self._iterators[shard] = reply["NextShardIterator"]
                if not reply["Records"]:
                    break
                found += [lambda_stream_record(r, self._arn) for r in reply["Records"]]
                self._last[shard] = str(reply["Records"][-1]["dynamodb"]["SequenceNumber"])
        return found

    def relay(self, attempts: int = 5) -> int:
        from functions.event_relay.handler import lambda_handler

        records = self.records()
        for start in range(0, len(records), self.batch_size):
            batch = records[start : start + self.batch_size]
            for _ in range(attempts):
                result = lambda_handler({"Records": batch}, _Context())
                index = first_failure(result, [str(r["dynamodb"]["SequenceNumber"]) for r in batch])
                if index is None:
                    break
                batch = batch[index:]
            else:
                raise AssertionError(f"the relay kept failing: {result}")
        return len(records)
