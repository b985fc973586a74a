"""event_relay: the table's stream (``NEW_AND_OLD_IMAGES``) -> the events its committed changes mean ->
EventBridge (``parcelhub.app.outbox``).

A DynamoDB stream event source with ``ReportBatchItemFailures``: the first record whose events could not
all be published is reported, and Lambda retries the shard from it (consumers dedupe on the
deterministic event ids); ``BisectBatchOnFunctionError`` and the ``OnFailure`` queue handle what still
fails after the retries.
"""

from __future__ import annotations

from typing import Any

from parcelhub import composition
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = [record for record in event.get("Records") or [] if isinstance(record, dict)]
    result = composition.outbox_relay().relay(records)
    failures = [{"itemIdentifier": result.failed_record}] if result.failed_record else []
    return {"batchItemFailures": failures}
