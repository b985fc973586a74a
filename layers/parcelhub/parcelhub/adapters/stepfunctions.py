"""Step Functions: starting the waybill workflow (one execution per run, named so a duplicate start is a
no-op)."""

from __future__ import annotations

import json

from parcelhub.adapters import aws


class StepFunctionsStarter:
    """The adapter of :class:`~parcelhub.ports.messaging.WorkflowStarter` for one state machine."""

    def __init__(self, state_machine_arn: str) -> None:
        if not state_machine_arn:
            raise ValueError("a state machine ARN is required")
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, shipment_id: str) -> bool:
        client = aws.client("stepfunctions")
        try:
            client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps({"shipment_id": shipment_id})
            )
        except client.exceptions.ExecutionAlreadyExists:
            return False
        return True
