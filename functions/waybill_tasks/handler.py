"""The waybill workflow's Lambda task: parse the task input, call one use case, return its JSON result.

Every state of ``infra/statemachines/waybill.asl.json`` calls this function with ``{"action": ...}``;
the result lands at the state's ``ResultPath``. Exceptions are left to propagate: Step Functions
matches Retry/Catch on their class name (``CarrierUnavailable``, ``CarrierRejected`` …).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from parcelhub import composition
from parcelhub.app.waybill import WaybillService
from parcelhub.app.waybill_payloads import Plan, TaskError, WaybillResult
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.observability import instrumented


class _Task(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shipment_id: str = Field(min_length=1, max_length=128)


class SelectCarriers(_Task):
    action: Literal["select_carriers"]


class RegisterTracking(_Task):
    action: Literal["register_tracking"]


class NextCandidate(_Task):
    action: Literal["next_candidate"]
    plan: Plan


class CreateWaybill(_Task):
    action: Literal["create_waybill"]
    candidate: CarrierCandidate
    execution: str = Field(min_length=1, max_length=80)


class RecordFailure(_Task):
    action: Literal["record_failure"]
    candidate: CarrierCandidate
    error: TaskError


class RecordWaybill(_Task):
    action: Literal["record_waybill"]
    waybill: WaybillResult
    execution: str | None = Field(default=None, min_length=1, max_length=80)


class SubscribeTracking(_Task):
    action: Literal["subscribe_tracking"]
    waybill: WaybillResult


class SchedulePoll(_Task):
    action: Literal["schedule_poll"]


class EmitWaybillCreated(_Task):
    action: Literal["emit_waybill_created"]
    plan: Plan | None = None
    execution: str | None = Field(default=None, min_length=1, max_length=80)


class MarkFailed(_Task):
    action: Literal["mark_failed"]
    plan: Plan | None = None
    execution: str | None = None
    error: TaskError | None = None


Task = Annotated[
    SelectCarriers
    | RegisterTracking
    | NextCandidate
    | CreateWaybill
    | RecordFailure
    | RecordWaybill
    | SubscribeTracking
    | SchedulePoll
    | EmitWaybillCreated
    | MarkFailed,
    Field(discriminator="action"),
]
TASK = TypeAdapter[Task](Task)


def run(task: Task, service: WaybillService) -> dict[str, Any]:  # noqa: PLR0911 - one branch per task
    """Dispatch one task to its use case (JSON-able result)."""
    match task:
        case SelectCarriers():
            return service.select_carriers(task.shipment_id).model_dump(mode="json")
        case RegisterTracking():
            return service.register_tracking(task.shipment_id).model_dump(mode="json")
        case NextCandidate():
            return service.next_candidate(task.shipment_id, task.plan).model_dump(mode="json")
        case CreateWaybill():
            return service.create_waybill(task.shipment_id, task.candidate, task.execution).model_dump(mode="json")
        case RecordFailure():
            return service.record_failure(task.shipment_id, task.candidate, task.error)
        case RecordWaybill():
            return service.record_waybill(task.shipment_id, task.waybill, task.execution)
        case SubscribeTracking():
            return service.subscribe_tracking(task.shipment_id, task.waybill)
        case SchedulePoll():
            return service.schedule_poll(task.shipment_id)
        case EmitWaybillCreated():
            return service.emit_waybill_created(task.shipment_id, task.plan, task.execution)
        case MarkFailed():
            return service.mark_failed(task.shipment_id, task.plan, task.execution, task.error)


@instrumented(correlation_id_path="shipment_id")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(TASK.validate_python(event), composition.waybill_service())
