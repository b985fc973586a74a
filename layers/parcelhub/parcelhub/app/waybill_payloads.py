"""The waybill workflow's task payloads: what Step Functions state carries between the tasks of
``infra/statemachines/waybill.asl.json`` (no personal data, no label data), and how a caught task error
becomes an attempt's outcome."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from parcelhub.carriers.base import CarrierAuthError, CarrierError, CarrierRejected, CarrierUnavailable
from parcelhub.domain.models import Carrier, Provider, Waybill
from parcelhub.domain.policy import CarrierCandidate

Outcome = Literal[
    "created", "rejected", "unavailable", "auth_error", "skipped_circuit_open", "cancelled", "cancel_failed"
]
#: error messages kept in an attempt are cut to this length
MESSAGE_LIMIT = 300


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Plan(_Payload):
    """``$.plan`` of the workflow: the candidates still to try and the one being tried."""

    rule: str
    started_at: datetime
    candidate: CarrierCandidate | None = None
    remaining: list[CarrierCandidate] = Field(default_factory=list)
    #: a tracked number (``ShipmentKind.TRACKING``): the workflow registers it instead of creating a waybill
    tracking_only: bool = False


class WaybillResult(_Payload):
    """``$.waybill``: the waybill as issued (no label data: that is in S3 under ``label_ref``)."""

    provider: Provider
    carrier: Carrier
    tracking_number: str
    provider_order_id: str | None = None
    label_ref: str | None = None
    sort_code: str | None = None
    origin_code: str | None = None
    destination_code: str | None = None
    package_code: str | None = None
    reused: bool = False
    #: counted against the carrier's capacity when its create was admitted (``app.capacity``)
    counted: bool = False
    #: a tracked number registered, not a waybill issued: no carrier order, no attempt, no capacity count
    registered: bool = False

    def waybill(self) -> Waybill:
        return Waybill.model_validate(self.model_dump(exclude={"reused", "counted", "registered"}))

    @classmethod
    def of(
        cls, waybill: Waybill, *, reused: bool = False, counted: bool = False, registered: bool = False
    ) -> WaybillResult:
        extra = {"reused": reused, "counted": counted, "registered": registered}
        return cls.model_validate({**waybill.model_dump(), **extra})


class TaskError(_Payload):
    """What a Catch puts at ``ResultPath``: ``{"Error": <class name>, "Cause": <JSON or text>}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    Error: str
    Cause: str | None = None


OUTCOME_OF_ERROR: dict[str, Outcome] = {
    "CarrierRejected": "rejected",
    "CarrierUnavailable": "unavailable",
    "CarrierAuthError": "auth_error",
    "CircuitOpen": "skipped_circuit_open",
}
_CARRIER_MESSAGE = re.compile(r"^(?P<provider>[A-Za-z0-9_]+): (?P<message>.*?)(?: \[(?P<code>[^\]]+)\])?$", re.S)


def describe_error(error: TaskError) -> tuple[Outcome, str | None, str | None]:
    """``(outcome, error_code, error_message)`` of a caught task error (pure)."""
    outcome = OUTCOME_OF_ERROR.get(error.Error, "unavailable")
    text = error.Cause or ""
    try:
        cause = json.loads(text)
        if isinstance(cause, dict):
            text = str(cause.get("errorMessage", "") or "")
    except ValueError:
        pass
    text = text.strip()
    match = _CARRIER_MESSAGE.match(text)
    if error.Error in OUTCOME_OF_ERROR and match:
        code, message = match.group("code"), match.group("message")
    else:
        code, message = (None if error.Error in OUTCOME_OF_ERROR else error.Error), text
    return outcome, code, (message[:MESSAGE_LIMIT] or None)


def exact(error: CarrierError) -> CarrierError:
    """The error as the exact class the ASL matches on (``CarrierDuplicateOrder`` -> ``CarrierRejected`` …)."""
    for base in (CarrierUnavailable, CarrierAuthError, CarrierRejected):
        if isinstance(error, base):
            if type(error) is base:
                return error
            return base(error.provider, error.message, error.code)
    return error
