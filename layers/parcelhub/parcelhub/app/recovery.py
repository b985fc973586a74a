"""The recovery sweep: nothing stays PENDING or mid-workflow, no order that is not kept stays live.

Every shipment enters the sparse recovery index when it is accepted (due ``pending_limit_seconds``
later) and leaves it when its waybill workflow has settled it (``WaybillCreated`` published, or
WAYBILL_FAILED, or CANCELLED) with no carrier order left to cancel. The scheduled sweep reads only
what is due, and for each shipment, while holding its waybill claim (so no running execution is
overtaken; a busy one is looked at again later):

1. cancels the orders that are not kept (``abandoned``; ``open`` ones too once the shipment no longer
   wants a waybill) - :meth:`parcelhub.app.orders.OrderDesk.cancel`, an ops alert when that finally fails;
2. re-drives a workflow that stopped (PENDING, or a waybill recorded but never announced): a fresh
   execution ``<shipment_id>-d<n>``, which settles any attempt still in flight before anything else;
   after ``max_redrives`` it fails the shipment instead (WAYBILL_FAILED with its ``WaybillFailed`` alert);
3. takes the shipment out of the index when nothing is left to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from parcelhub.app.waybill import WaybillService
from parcelhub.app.waybill_claims import WaybillInProgress
from parcelhub.app.waybill_create import wants_waybill
from parcelhub.app.waybill_payloads import TaskError
from parcelhub.config import HubConfig
from parcelhub.domain.models import UNSETTLED_ORDER_STATES, Shipment
from parcelhub.domain.status import Status
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import ShipmentNotFound, StatusConflict
from parcelhub.ports.messaging import WorkflowStarter
from parcelhub.ports.store import WaybillStore

#: the owner name of the waybill claim while the sweep looks at a shipment
SWEEP_OWNER = "recovery-sweep"
#: error of the synthetic attempt when the sweep gives a stuck shipment up
REDRIVE_LIMIT = "RecoveryLimit"


@dataclass
class RecoveryReport:
    examined: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"examined": self.examined, **dict(sorted(self.outcomes.items()))}


class RecoverySweeper:
    def __init__(
        self,
        store: WaybillStore,
        waybills: WaybillService,
        workflow: WorkflowStarter,
        config: Callable[[], HubConfig],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.waybills = waybills
        self.workflow = workflow
        self.config = config
        self.now = now

    def sweep(self, limit: int = 100) -> RecoveryReport:
        report = RecoveryReport()
        for due in self.store.query_due_recoveries(self.now(), limit):
            report.examined += 1
            try:
                outcome = self.recover(due.shipment_id)
            except ShipmentNotFound:
                outcome = "gone"
            except Exception:  # one shipment must not stop the sweep: it stays due, the next sweep retries
                logger().exception("recovery failed", extra={"shipment_id": due.shipment_id})
                outcome = "error"
            report.outcomes[outcome] += 1
            add_metric("RecoveryOutcome", outcome=outcome)
        return report

    def recover(self, shipment_id: str) -> str:
        """Settle one shipment; returns what was done (``redriven``, ``failed``, ``cleared``, ``busy`` …)."""
        try:
            self.waybills.claims.acquire(shipment_id, SWEEP_OWNER)
        except WaybillInProgress:
            self._later(shipment_id, self.config().recovery.cancel_retry_seconds)
            return "busy"
        try:
            return self._recover(shipment_id)
        finally:
            self.waybills.claims.release(shipment_id, SWEEP_OWNER)

    def _recover(self, shipment_id: str) -> str:
        store, config = self.store, self.config().recovery
        shipment = store.get(shipment_id)
        if shipment.recovery_due is None:
            return "settled"  # its workflow settled it after the sweep read the index
        if shipment.recovery_due > self.now():
            return "not_due"  # a new run (a /retry) started after the sweep read the index
        wanted = wants_waybill(shipment) and shipment.waybill is None
        self.waybills.orders.settle_unkept(shipment, include_open=not wanted)
        shipment = store.get(shipment_id)
        stopped = shipment.status is Status.PENDING or (
            shipment.status is Status.WAYBILL_CREATED and shipment.status_key is None and not shipment.workflow_done
        )
        if stopped:
            return self._redrive(shipment, max_redrives=config.max_redrives)
        if any(o.state in UNSETTLED_ORDER_STATES for o in shipment.carrier_orders.values()):
            return "cancel_pending"  # the cancel set its own retry time
        store.clear_recovery(shipment_id)
        return "cleared"

    def _redrive(self, shipment: Shipment, *, max_redrives: int) -> str:
        shipment_id = shipment.shipment_id
        limit = timedelta(seconds=self.config().recovery.pending_limit_seconds)
        if shipment.redrives >= max_redrives:
            if shipment.status is Status.PENDING:
                error = TaskError(Error=REDRIVE_LIMIT, Cause=f"no waybill after {shipment.redrives} re-driven runs")
                self.waybills.mark_failed(shipment_id, None, None, error)
                logger().error("stuck shipment failed by the recovery sweep", extra={"shipment_id": shipment_id})
                return "failed"
            self.store.clear_recovery(shipment_id)  # recorded, never announced: ops see the metric
            add_metric("WaybillNeverAnnounced")
            return "unannounced"
        try:
            _, name = self.store.begin_run(
                shipment_id,
                "redrive",
                expected={shipment.status},
                recovery_due=self.now() + limit,
                now=self.now(),
                if_due=shipment.recovery_due,
            )
        except StatusConflict:
            return "moved"
        self.waybills.claims.release(shipment_id, SWEEP_OWNER)  # the new run takes the claim itself
        self.workflow.start(name, shipment_id)
        logger().warning("workflow re-driven", extra={"shipment_id": shipment_id, "execution": name})
        return "redriven"

    def _later(self, shipment_id: str, seconds: float) -> None:
        self.store.postpone_recovery(shipment_id, self.now() + timedelta(seconds=seconds))
