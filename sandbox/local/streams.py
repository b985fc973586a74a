"""DynamoDB stream event sources, polled like Lambda's event source mapping does (moto implements
``DescribeStream``/``GetShardIterator``/``GetRecords``).

One poller per stream source and shard reads records in order from ``StartingPosition``, drops those the
source's ``FilterCriteria`` do not match, gathers up to ``BatchSize`` records (waiting at most
``MaximumBatchingWindowInSeconds`` after the first), and invokes the function with an event shaped
exactly like Lambda's. Then, as on AWS:

* the handler returned without failures: the batch is done, the shard moves on;
* with ``ReportBatchItemFailures``: the batch is retried from the lowest reported sequence number (an
  identifier that is not in the batch fails the whole batch);
* the handler raised: the batch is retried; with ``BisectBatchOnFunctionError`` it is split in halves
  first, so a record that keeps failing ends up alone;
* after ``MaximumRetryAttempts`` retries the records are skipped and a Lambda-shaped failure record
  (``DDBStreamBatchInfo``: shard, first and last sequence number) goes to the ``OnFailure`` queue.

Records of one shard are never processed out of order, and a failing batch blocks its shard until it
succeeds or is given up — the property the outbox relay relies on. Retries back off from 0.2 s to 2 s.

moto fidelity: a failed ``TransactWriteItems`` (an order id taken) makes moto put back a copy of the
table, stream shard included, so an iterator taken earlier reads the old copy and never sees another
record. The poller therefore takes a fresh iterator after its last sequence number whenever a read comes
back empty (AWS iterators need no such care; it costs one ``GetShardIterator`` per idle poll).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.local.template import REGION, StreamSource, matches

log = logging.getLogger("parcelhub.local")

GET_RECORDS_LIMIT = 1000
IDLE_WAIT = 0.2
BACKOFF = (0.2, 0.4, 0.8, 1.6, 2.0)


def lambda_stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """One record of Lambda's DynamoDB event from a GetRecords record (times as epoch seconds)."""
    data = dict(record.get("dynamodb") or {})
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion") or REGION,
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


def first_failure(result: Any, sequence_numbers: list[str]) -> int | None:
    """Index of the record to retry from (the lowest reported sequence number); None when nothing failed;
    0 when the response is invalid (Lambda retries the whole batch)."""
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return None
    if not isinstance(failures, list):
        return 0
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in sequence_numbers:
            return 0
        indexes.append(sequence_numbers.index(identifier))
    return min(indexes)


class StreamPoller:
    def __init__(
        self,
        source: StreamSource,
        streams: Any,
        sqs: Any,
        invoke: Callable[[str, Any], Any],
        stop: threading.Event,
        *,
        function_arn: str,
        on_failure_url: str | None,
    ) -> None:
        self.source = source
        self.streams = streams
        self.sqs = sqs
        self.invoke = invoke
        self.stop = stop
        self.function_arn = function_arn
        self.on_failure_url = on_failure_url
        self.batches = 0
        self.given_up = 0
        self.thread = threading.Thread(target=self._run, name=f"stream-{source.function}-{source.event}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # ------------------------------------------------------------------ reading
    def _iterators(self) -> dict[str, str]:
        description = self.streams.describe_stream(StreamArn=self.source.stream_arn)["StreamDescription"]
        position = "TRIM_HORIZON" if self.source.starting_position == "TRIM_HORIZON" else "LATEST"
        return {
            shard["ShardId"]: self.streams.get_shard_iterator(
                StreamArn=self.source.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=position
            )["ShardIterator"]
            for shard in description.get("Shards", [])
        }

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self.source.filters or any(matches(pattern, record) for pattern in self.source.filters)

    def _run(self) -> None:
        iterators: dict[str, str] = {}
        last: dict[str, str] = {}  # shard -> the last sequence number read
        buffers: dict[str, list[dict[str, Any]]] = {}
        first_seen: dict[str, float] = {}
        while not self.stop.is_set():
            try:
                if not iterators:
                    iterators = self._iterators()
                    if not iterators:
                        self.stop.wait(IDLE_WAIT)
                        continue
                idle = True
                for shard, iterator in list(iterators.items()):
                    reply = self.streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
                    iterators[shard] = reply["NextShardIterator"]
                    fresh = [lambda_stream_record(r, self.source.stream_arn) for r in reply.get("Records", [])]
                    if fresh:
                        last[shard] = str(fresh[-1]["dynamodb"]["SequenceNumber"])
                    elif shard in last:  # see "moto fidelity" above
                        iterators[shard] = self.streams.get_shard_iterator(
                            StreamArn=self.source.stream_arn,
                            ShardId=shard,
                            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                            SequenceNumber=last[shard],
                        )["ShardIterator"]
                    buffer = buffers.setdefault(shard, [])
                    buffer += [r for r in fresh if self._wanted(r)]
                    if buffer and shard not in first_seen:
                        first_seen[shard] = time.monotonic()
                    waited = time.monotonic() - first_seen.get(shard, time.monotonic())
                    if buffer and (
                        len(buffer) >= self.source.batch_size or waited >= self.source.batching_window_seconds
                    ):
                        batch, buffers[shard] = buffer[: self.source.batch_size], buffer[self.source.batch_size :]
                        first_seen.pop(shard, None)
                        if buffers[shard]:
                            first_seen[shard] = time.monotonic()
                        self.batches += 1
                        self._deliver(shard, batch, 0)
                        idle = False
                if idle:
                    self.stop.wait(IDLE_WAIT)
            except Exception as exc:
                if self.stop.is_set():
                    return
                log.error("stream poller %s: %s", self.thread.name, exc)
                iterators = {}
                self.stop.wait(0.5)

    # ------------------------------------------------------------------ delivering
    def _attempt(self, records: list[dict[str, Any]]) -> tuple[str, int] | None:
        """Invoke once: None when the batch is done; ``("error", 0)`` when the function raised;
        ``("partial", index)`` when it reported the record to retry from."""
        try:
            result = self.invoke(self.source.function, {"Records": records})
        except Exception as exc:
            log.warning("%s failed a stream batch of %d: %s", self.source.function, len(records), exc)
            return "error", 0
        if not self.source.report_batch_item_failures:
            return None
        index = first_failure(result, [str(r["dynamodb"].get("SequenceNumber")) for r in records])
        return None if index is None else ("partial", index)

    def _deliver(self, shard: str, records: list[dict[str, Any]], attempts: int) -> None:
        while records and not self.stop.is_set():
            outcome = self._attempt(records)
            if outcome is None:
                return
            kind, index = outcome
            records = records[index:]
            attempts += 1
            limit = self.source.maximum_retry_attempts
            if 0 <= limit < attempts:
                self._give_up(shard, records, attempts)
                return
            if kind == "error" and self.source.bisect_on_error and len(records) > 1:
                half = len(records) // 2
                self._deliver(shard, records[:half], attempts)
                self._deliver(shard, records[half:], attempts)
                return
            self.stop.wait(BACKOFF[min(attempts, len(BACKOFF)) - 1])

    def _give_up(self, shard: str, records: list[dict[str, Any]], attempts: int) -> None:
        self.given_up += len(records)
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        log.error("%s: %d stream records given up after %d attempts", self.source.function, len(records), attempts)
        if not self.on_failure_url:
            return

        def arrival(data: dict[str, Any]) -> str:
            return datetime.fromtimestamp(float(data.get("ApproximateCreationDateTime") or 0), UTC).isoformat()

        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": str(first.get("SequenceNumber")),
                "endSequenceNumber": str(last.get("SequenceNumber")),
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": len(records),
                "streamArn": self.source.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=self.on_failure_url, MessageBody=json.dumps(message))
