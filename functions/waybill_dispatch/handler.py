"""SQS ``waybill-requests`` -> ``StartExecution`` of the waybill workflow, one per shipment.

The execution is named by the shipment id (or the ``execution_name`` the message carries, e.g. a
``/retry``'s ``<shipment_id>-r<n>``). The workflow is EXPRESS: a duplicated or redelivered message starts
a second run of the same name, which the waybill claim (a lease per run) keeps from a second carrier order
and which stops at once when the run it duplicates has ended (``infra/statemachines/waybill.asl.json``).
``ExecutionAlreadyExists`` (a Standard machine, or moto) still counts as success. Any other failure fails
only its own record (``ReportBatchItemFailures``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json

from parcelhub import composition
from parcelhub.observability import add_metric, instrumented, logger

#: Step Functions execution names: 1-80 characters of letters, digits, ``-`` and ``_``.
EXECUTION_NAME = r"^[A-Za-z0-9_\-]{1,80}$"


class WaybillRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    shipment_id: str = Field(pattern=EXECUTION_NAME)
    execution_name: str | None = Field(default=None, pattern=EXECUTION_NAME)


class WaybillRequestRecord(SqsRecordModel):
    body: Json[WaybillRequest]  # type: ignore[assignment]


def processor() -> BatchProcessor:
    """A processor per invocation: it holds the batch's records and outcomes."""
    return BatchProcessor(event_type=EventType.SQS, model=WaybillRequestRecord)


def start_workflow(record: WaybillRequestRecord) -> str:
    """Start (or find already started) the shipment's execution; returns ``started`` or ``duplicate``."""
    request = record.body
    name = request.execution_name or request.shipment_id
    if not composition.workflow().start(name, request.shipment_id):
        logger().info("duplicate waybill request", extra={"shipment_id": request.shipment_id, "execution": name})
        add_metric("WaybillRequestDuplicate")
        return "duplicate"
    add_metric("WaybillWorkflowStarted")
    return "started"


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=start_workflow, processor=processor(), context=context
    )
    return dict(response)
