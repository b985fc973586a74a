"""SQS event sources, polled like Lambda's event source mapping does.

A poller gathers up to ``BatchSize`` records, waiting at most ``MaximumBatchingWindowInSeconds``
after the first one, and invokes the function with an SQS event shaped exactly like Lambda's. Then:

* handler returned normally, no ``ReportBatchItemFailures``: every record is deleted;
* with ``ReportBatchItemFailures``: every record except those in ``batchItemFailures`` is deleted (an
  ``itemIdentifier`` that is empty or not in the batch fails the whole batch, as on AWS);
* handler raised: nothing is deleted.

Records not deleted reappear after the queue's visibility timeout and moto moves them to the DLQ
after ``maxReceiveCount`` receives (its redrive policy).

The SQS requests a batch cost are counted (``count(function, receives, deletes)``): the ReceiveMessage
calls that returned messages (at most 10 each, as SQS allows) and the DeleteMessageBatch calls (10 entries
each). AWS bills the event source mapping's requests as SQS requests; the empty long polls of an idle
queue are a fixed monthly cost, not a batch's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.local.template import REGION, SqsSource

log = logging.getLogger("parcelhub.local")

RECEIVE_LIMIT = 10  # SQS ReceiveMessage maximum


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of Lambda's SQS event from a ReceiveMessage message."""
    attributes = message.get("Attributes") or {}
    record_attributes = {
        key: attributes[key]
        for key in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
            "AWSTraceHeader",
            "DeadLetterQueueSourceArn",
        )
        if key in attributes
    }
    message_attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        converted: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            converted["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            import base64

            raw = value["BinaryValue"]
            converted["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
        message_attributes[name] = converted
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": record_attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_ids(result: Any, batch_ids: set[str]) -> set[str] | None:
    """Message ids to keep from a ReportBatchItemFailures response; None = the whole batch failed."""
    if result is None:
        return set()
    if not isinstance(result, dict):
        return set()
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return None  # Lambda treats an invalid response as a complete failure
        ids.add(identifier)
    return ids


class SqsPoller:
    def __init__(
        self,
        source: SqsSource,
        queue_url: str,
        sqs: Any,
        invoke: Callable[[str, Any], Any],
        stop: threading.Event,
        *,
        index: int = 0,
        redeliver: Callable[[], bool] = lambda: False,
        count: Callable[[str, int, int], None] = lambda function, receives, deletes: None,
    ) -> None:
        self.source = source
        self.count = count
        self._receives = 0
        self.redeliver = redeliver
        self.queue_url = queue_url
        self.sqs = sqs
        self.invoke = invoke
        self.stop = stop
        self.batches = 0
        name = f"sqs-{source.function}-{source.event}-{index}"
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(RECEIVE_LIMIT, count)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = list(response.get("Messages") or [])
        self._receives += bool(messages)
        return messages

    def gather(self) -> list[dict[str, Any]]:
        """One batch: BatchSize records or whatever arrived within the batching window."""
        self._receives = 0
        batch = self._receive(self.source.batch_size, wait=1)
        if not batch:
            return []
        deadline = time.monotonic() + self.source.batching_window_seconds
        while len(batch) < self.source.batch_size and not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = self._receive(self.source.batch_size - len(batch), wait=0)
            if more:
                batch.extend(more)
            else:
                self.stop.wait(min(0.1, remaining))
        return batch

    def process(self, batch: list[dict[str, Any]]) -> tuple[int, int]:
        """Invoke the function with the batch and delete what succeeded. Returns (deleted, kept)."""
        event = {"Records": [lambda_record(m, self.source.queue_arn) for m in batch]}
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in batch}
        try:
            result = self.invoke(self.source.function, event)
        except Exception as exc:
            log.warning("%s failed a batch of %d: %s", self.source.function, len(batch), exc)
            return 0, len(batch)
        if self.source.report_batch_item_failures:
            keep = failed_ids(result, set(handles))
            if keep is None:
                log.warning("%s returned an invalid batchItemFailures: whole batch retried", self.source.function)
                return 0, len(batch)
        else:
            keep = set()
        # at-least-once delivery (a fault the local stack can inject): some processed messages come back once
        first = {
            m["MessageId"] for m in batch if str((m.get("Attributes") or {}).get("ApproximateReceiveCount")) == "1"
        }
        keep |= {mid for mid in handles if mid not in keep and mid in first and self.redeliver()}
        to_delete = [(mid, handle) for mid, handle in handles.items() if mid not in keep]
        self.count(self.source.function, self._receives, -(-len(to_delete) // RECEIVE_LIMIT))
        for start in range(0, len(to_delete), RECEIVE_LIMIT):
            chunk = to_delete[start : start + RECEIVE_LIMIT]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, (_, handle) in enumerate(chunk)],
            )
        return len(to_delete), len(keep)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                batch = self.gather()
                if batch:
                    self.batches += 1
                    self.process(batch)
            except Exception as exc:
                if self.stop.is_set():
                    return
                log.error("poller %s: %s", self.thread.name, exc)
                self.stop.wait(0.5)
