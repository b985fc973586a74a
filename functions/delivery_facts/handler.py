"""delivery_facts: the table's stream -> shipments that ended -> delivery facts -> the S3 history and the
scorecards (``parcelhub.app.facts``).

The table's second stream consumer (the event relay is the first), filtered to shipment items whose new
status may end them. ``ReportBatchItemFailures``: the first record whose fact could not be recorded is
reported and Lambda retries the shard from it; a fact recorded before is not counted again (the
scorecards' write is conditional on the fact being new). After the retries the batch's position goes to
the ``OnFailure`` queue.
"""

from __future__ import annotations

from typing import Any

from parcelhub import composition
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = [record for record in event.get("Records") or [] if isinstance(record, dict)]
    result = composition.fact_recorder().handle(records)
    failures = [{"itemIdentifier": result.failed_record}] if result.failed_record else []
    return {"batchItemFailures": failures}
