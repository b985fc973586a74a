"""delivery_facts: the table's stream -> shipments that ended -> delivery facts -> the S3 history and the
scorecards (``parcelhub.app.facts``).

The table's second stream consumer (the event relay is the first), filtered to shipment items whose new
status may end them. ``ReportBatchItemFailures``: the first record whose fact could not be recorded is
reported and Lambda retries the shard from it; a fact recorded before is not counted again (the
scorecards' write is conditional on the fact being new). After the retries the batch's position goes to
the ``OnFailure`` queue.

The same records carry the write that recorded a delivery's proof: the provider's receipt is copied then
(``parcelhub.app.receipts``); a record whose receipt could not be copied is reported the same way.
"""

from __future__ import annotations

from typing import Any

from parcelhub import composition
from parcelhub.app.facts import record_id
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = [record for record in event.get("Records") or [] if isinstance(record, dict)]
    result = composition.fact_recorder().handle(records)
    # a delivered parcel's receipt, copied from its provider (its links expire): retried with the record
    receipts = composition.receipt_copier().handle(records, record_id)
    failed = [r for r in (result.failed_record, receipts.failed_record) if r]
    first = next((record_id(r) for r in records if record_id(r) in failed), None)
    return {"batchItemFailures": [{"itemIdentifier": first}] if first else []}
