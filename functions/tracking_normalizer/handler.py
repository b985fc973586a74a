"""tracking_normalizer: the tracking-updates queue's consumer (SQS batches, partial failures).

The batch is one unit of work for the use case (one archive object, events grouped by tracking number
across messages, one PutEvents pass), so the handler runs :meth:`Ingestor.process_batch` over the
validated records first and then lets Powertools' ``BatchProcessor`` report the messages the use case
could not ingest (``ReportBatchItemFailures``), also when that is every message of the batch. An
exception from the use case itself (the archive failed) fails the whole batch, which SQS redelivers.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import ValidationError

from parcelhub import composition
from parcelhub.app.ingest import BatchResult, InboundMessage, IngestFailed
from parcelhub.observability import instrumented


def _messages(event: dict[str, Any]) -> list[InboundMessage]:
    messages = []
    for raw in event.get("Records") or []:
        try:
            record = SqsRecordModel.model_validate(raw)
        except ValidationError:
            continue  # the BatchProcessor fails this record with the same model
        messages.append(
            InboundMessage(
                message_id=record.messageId,
                body=str(record.body),
                receive_count=int(record.attributes.ApproximateReceiveCount or 1),
            )
        )
    return messages


def handle(event: dict[str, Any], context: Any, result: BatchResult) -> dict[str, Any]:
    """Report ``result``'s failures through the BatchProcessor."""

    def settle(record: SqsRecordModel) -> None:
        reason = result.failures.get(record.messageId)
        if reason is not None:
            raise IngestFailed(reason)

    # a batch whose every message failed is reported like any other (each message on its own, never an
    # invocation error that would hide which ones failed)
    processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
    return dict(response)


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = composition.ingestor().process_batch(_messages(event))
    return handle(event, context, result)
