"""The waybill workflow's use cases: one method per Step Functions task (``infra/statemachines/waybill.asl.json``).

::

    select_carriers -> next_candidate (skips open circuits) -> create_waybill --ok--> record_waybill
                             ^                                   | CarrierRejected / CarrierUnavailable
                             |                                   | (after retries) / CarrierAuthError /
                             +------------- record_failure <-----+ CircuitOpen
    record_waybill -> subscribe_tracking (failed: schedule_poll) -> emit_waybill_created
    no candidate left -> mark_failed (WAYBILL_FAILED, WaybillFailed with its ops alert)

Idempotency (issue 5 item 3): the execution is named by the shipment id (a duplicate start is refused);
``create_waybill`` returns the recorded waybill when there is one, and otherwise takes a conditional
*claim* on the shipment (one execution at a time may ask providers for its waybill; a lease so a crashed
execution does not block a retry); the provider order id is the shipment id, so a second create at the
same provider answers "duplicate order" and the existing waybill is fetched; ``save_waybill`` refuses a
second, different waybill (and the loser's waybill is cancelled at its provider).

Personal data: the parties are decrypted only inside ``create_waybill``, only to build the
``WaybillOrder`` for the provider. The label (which prints them) goes straight to S3 there; nothing
personal enters Step Functions state, events or logs.

Every failure the workflow routes on leaves here as the exact class the ASL names (``CarrierUnavailable``,
``CarrierRejected``, ``CarrierAuthError``, ``CircuitOpen``, ``WaybillInProgress``, ``ShipmentNotPending``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from parcelhub.app.circuit import CircuitBreaker
from parcelhub.app.waybill_payloads import (
    MESSAGE_LIMIT,
    Outcome,
    Plan,
    TaskError,
    WaybillResult,
    describe_error,
    exact,
)
from parcelhub.carriers.base import (
    Capability,
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    ProviderPlugin,
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.config import HubConfig
from parcelhub.domain.models import Carrier, Party, Provider, Shipment, ShipmentRequest, Waybill, WaybillAttempt
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.domain.selection import SelectionRequest, select_carriers
from parcelhub.domain.stall import stall_due
from parcelhub.domain.status import Status
from parcelhub.events import (
    AttemptSummary,
    CarrierFailover,
    Event,
    EventPublisher,
    WaybillCreated,
    WaybillFailed,
)
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import LeaseHeld, StatusConflict, WaybillAlreadyRecorded
from parcelhub.ports.messaging import LabelStore
from parcelhub.ports.store import Leases, StallMark, WaybillStore

#: How long an execution's claim on a shipment keeps others out if it never finishes (crashed Lambda).
CLAIM_LEASE_SECONDS = 300.0
#: Lease name prefix of the per-shipment waybill claim (see ``WaybillClaims``).
CLAIM_LEASE_PREFIX = "waybill#"
#: Error code of the synthetic attempt recorded when no candidate could even be tried.
NO_CANDIDATE = "NO_CANDIDATE"

# ------------------------------------------------------------------------------------------ errors


class ShipmentNotPending(Exception):
    """The shipment no longer wants a waybill (cancelled, or a tracking status already won)."""

    def __init__(self, shipment_id: str, status: Status) -> None:
        super().__init__(f"shipment {shipment_id} is {status.value}: no waybill needed")
        self.shipment_id = shipment_id
        self.status = status


class WaybillInProgress(Exception):
    """Another execution holds the shipment's waybill claim (its lease has not expired)."""

    def __init__(self, shipment_id: str, owner: str, until: float) -> None:
        super().__init__(f"shipment {shipment_id}: waybill being created by execution {owner}")
        self.shipment_id = shipment_id
        self.owner = owner
        self.until = until


# -------------------------------------------------------------------------------------- the claim


class WaybillClaims:
    """One execution at a time may ask providers for a shipment's waybill.

    A named lease (``waybill#<shipment_id>``) taken by one conditional write, so two concurrent executions
    cannot both win. The same owner (execution name) renews freely (task retries); an expired lease lets a
    retry take over from a crashed execution; ``release`` frees it when a run ends without a waybill.
    """

    def __init__(self, leases: Leases, clock: Callable[[], float] = time.time) -> None:
        self.leases = leases
        self.clock = clock

    @staticmethod
    def name(shipment_id: str) -> str:
        return f"{CLAIM_LEASE_PREFIX}{shipment_id}"

    def acquire(self, shipment_id: str, owner: str) -> None:
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        try:
            self.leases.acquire_lease(self.name(shipment_id), owner, now=now, seconds=CLAIM_LEASE_SECONDS)
        except LeaseHeld as held:
            raise WaybillInProgress(shipment_id, held.owner, held.until.timestamp()) from None

    def release(self, shipment_id: str, owner: str) -> None:
        self.leases.release_lease(self.name(shipment_id), owner)


# ---------------------------------------------------------------------------------------- service


@dataclass
class WaybillDeps:
    """Everything the use cases talk to (ports; the handler wires the AWS/HTTP adapters lazily)."""

    store: WaybillStore
    publisher: EventPublisher
    decrypt_party: Callable[[str, str], Party]  # (envelope, shipment_id) -> Party
    plugin: Callable[[Provider], ProviderPlugin]
    labels: LabelStore | None
    config: Callable[[], HubConfig]
    callback_url: Callable[[Provider], str]
    #: provider -> carriers it issues waybills for (configured providers only); None = unknown
    issuers: Callable[[], Mapping[Provider, frozenset[Carrier]] | None] = lambda: None
    #: replays the pushes parked for (carrier, tracking number) once its claim exists; returns how many
    apply_parked: Callable[[str, str], int] = lambda carrier, number: 0
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    epoch: Callable[[], float] = time.time


def _attempt(candidate: CarrierCandidate, outcome: Outcome, at: datetime, code: str | None = None,
             message: str | None = None) -> WaybillAttempt:  # fmt: skip
    return WaybillAttempt(
        provider=candidate.provider,
        carrier=candidate.carrier,
        outcome=outcome,
        error_code=code,
        error_message=message[:MESSAGE_LIMIT] if message else None,
        at=at,
    )


def run_attempts(shipment: Shipment, started_at: datetime | None) -> list[tuple[int, WaybillAttempt]]:
    """The attempts of this run (at or after ``started_at``), with their 1-based position overall."""
    return [
        (index, attempt)
        for index, attempt in enumerate(shipment.waybill_attempts, 1)
        if started_at is None or attempt.at >= started_at
    ]


def failovers(shipment: Shipment, started_at: datetime | None, now: datetime) -> list[CarrierFailover]:
    """One ``CarrierFailover`` per failed attempt of this run that was followed by another candidate."""
    attempts = run_attempts(shipment, started_at)
    events: list[CarrierFailover] = []
    for (position, failed), (_, following) in itertools.pairwise(attempts):
        if failed.outcome == "created":
            continue
        events.append(
            CarrierFailover(
                shipment_id=shipment.shipment_id,
                order_id=shipment.order_id,
                attempt=position,
                from_provider=failed.provider,
                from_carrier=failed.carrier,
                to_provider=following.provider,
                to_carrier=following.carrier,
                reason=failed.outcome,
                error_code=failed.error_code,
                error_message=failed.error_message,
                occurred_at=following.at if following.at >= failed.at else now,
            )
        )
    return events


class WaybillService:
    """The use cases behind the waybill workflow's tasks."""

    def __init__(self, deps: WaybillDeps) -> None:
        self.deps = deps
        self.claims = WaybillClaims(deps.store, deps.epoch)

    def circuit(self) -> CircuitBreaker:
        return CircuitBreaker(self.deps.store, self.deps.config().circuit, clock=self.deps.epoch)

    # ------------------------------------------------------------------------------ select / next

    def select_carriers(self, shipment_id: str) -> Plan:
        shipment = self.deps.store.get(shipment_id)
        now = self.deps.now()
        if shipment.waybill is not None:
            # A re-run after the waybill was recorded: the same candidate again returns it at once.
            done = CarrierCandidate(provider=shipment.waybill.provider, carrier=shipment.waybill.carrier)
            return Plan(rule="recorded", started_at=now, remaining=[done])
        selection = select_carriers(
            self.deps.config().selection,
            SelectionRequest(
                customer_tier=shipment.customer_tier,
                declared_value=shipment.declared_value,
                destination_province=shipment.destination_province,
                service=shipment.service,
                pinned_carrier=shipment.pinned_carrier,
            ),
            issuers=self.deps.issuers(),
        )
        logger().info(
            "carriers selected",
            extra={"rule": selection.rule, "candidates": [f"{c.carrier}/{c.provider}" for c in selection.candidates]},
        )
        return Plan(rule=selection.rule, started_at=now, remaining=list(selection.candidates))

    def next_candidate(self, shipment_id: str, plan: Plan) -> Plan:
        """Pop the next candidate whose circuit lets calls through; skipped ones are recorded."""
        circuit = self.circuit()
        remaining = list(plan.remaining)
        while remaining:
            candidate = remaining.pop(0)
            if circuit.blocked(candidate.provider):
                self.deps.store.add_waybill_attempt(
                    shipment_id,
                    _attempt(candidate, "skipped_circuit_open", self.deps.now(), "CIRCUIT_OPEN", "circuit open"),
                )
                add_metric("CandidateSkipped", provider=candidate.provider.value)
                continue
            return plan.model_copy(update={"candidate": candidate, "remaining": remaining})
        return plan.model_copy(update={"candidate": None, "remaining": []})

    # ------------------------------------------------------------------------------------- create

    def create_waybill(self, shipment_id: str, candidate: CarrierCandidate, execution: str) -> WaybillResult:
        store = self.deps.store
        shipment = store.get(shipment_id)
        if shipment.waybill is not None:
            add_metric("WaybillReused")
            return WaybillResult.of(shipment.waybill, reused=True)
        if shipment.status not in (Status.PENDING, Status.WAYBILL_FAILED) or shipment.status_key is not None:
            raise ShipmentNotPending(shipment_id, shipment.status)
        self.claims.acquire(shipment_id, execution)
        try:
            plugin = self.deps.plugin(candidate.provider)
        except LookupError as missing:
            raise CarrierAuthError(candidate.provider.value, str(missing), "NOT_CONFIGURED") from None
        if Capability.ISSUE_WAYBILLS not in plugin.capabilities:
            raise CarrierRejected(candidate.provider.value, "provider does not issue waybills", "UNSUPPORTED")
        circuit = self.circuit()
        circuit.acquire(candidate.provider.value)
        order = self._order(shipment, candidate)
        try:
            try:
                waybill = plugin.create_waybill(order)
            except CarrierDuplicateOrder as duplicate:
                waybill = self._existing(plugin, shipment_id, duplicate)
        except (CarrierUnavailable, CarrierAuthError) as failure:
            circuit.record_failure(candidate.provider.value, failure)
            add_metric("WaybillCreateFailed", provider=candidate.provider.value)
            raise exact(failure) from None
        except CarrierRejected as rejected:
            circuit.record_success(candidate.provider.value)  # the provider answered: it is healthy
            add_metric("WaybillRejected", provider=candidate.provider.value)
            raise exact(rejected) from None
        circuit.record_success(candidate.provider.value)
        if waybill.label and self.deps.labels is not None:
            key = self.deps.labels.put(shipment_id, waybill.tracking_number, waybill.label)
            waybill = waybill.model_copy(update={"label_ref": key, "label": None})
        if not waybill.provider_order_id:
            waybill = waybill.model_copy(update={"provider_order_id": shipment_id})
        add_metric("WaybillIssued", provider=candidate.provider.value)
        return WaybillResult.of(waybill)

    def _order(self, shipment: Shipment, candidate: CarrierCandidate) -> WaybillOrder:
        """Decrypt the parties (the only place) and rebuild the OMS request for the provider."""
        decrypt = self.deps.decrypt_party
        receiver = decrypt(shipment.pii["receiver"], shipment.shipment_id)
        sender_envelope = shipment.pii.get("sender")
        sender = decrypt(sender_envelope, shipment.shipment_id) if sender_envelope else None
        request = ShipmentRequest(
            order_id=shipment.order_id,
            receiver=receiver,
            sender=sender,
            parcels=shipment.parcels,
            items=shipment.items,
            declared_value=shipment.declared_value,
            customer_tier=shipment.customer_tier,
            carrier=shipment.pinned_carrier,
            service=shipment.service,
        )
        return WaybillOrder(
            shipment_id=shipment.shipment_id,
            carrier=candidate.carrier,
            request=request,
            sender=sender or self.deps.config().warehouse,
        )

    @staticmethod
    def _existing(plugin: ProviderPlugin, shipment_id: str, duplicate: CarrierDuplicateOrder) -> Waybill:
        """The provider already has this order (we sent the shipment id as its order id): fetch it."""
        if Capability.FETCH_WAYBILLS not in plugin.capabilities:
            raise CarrierRejected(duplicate.provider, f"duplicate order, cannot fetch it: {duplicate.message}",
                                  duplicate.code)  # fmt: skip
        add_metric("WaybillDuplicateFetched", provider=duplicate.provider)
        return plugin.fetch_waybill(shipment_id)

    # ------------------------------------------------------------------------------------- failure

    def record_failure(self, shipment_id: str, candidate: CarrierCandidate, error: TaskError) -> dict[str, Any]:
        outcome, code, message = describe_error(error)
        self.deps.store.add_waybill_attempt(shipment_id, _attempt(candidate, outcome, self.deps.now(), code, message))
        logger().warning(
            "waybill attempt failed",
            extra={"provider": candidate.provider.value, "carrier": candidate.carrier.value, "outcome": outcome,
                   "error_code": code},
        )  # fmt: skip
        return {"outcome": outcome, "error_code": code}

    # ------------------------------------------------------------------------------------- record

    def record_waybill(self, shipment_id: str, result: WaybillResult) -> dict[str, Any]:
        store, now = self.deps.store, self.deps.now()
        waybill = result.waybill()
        created = _attempt(CarrierCandidate(provider=waybill.provider, carrier=waybill.carrier), "created", now)
        try:
            shipment = store.save_waybill(shipment_id, waybill, [created], now)
        except WaybillAlreadyRecorded as taken:
            # Another run recorded a different waybill first: ours is an orphan at its provider.
            self._cancel_orphan(waybill)
            shipment = store.get(shipment_id)
            waybill = taken.existing
        store.claim_tracking(waybill.carrier.value, waybill.tracking_number, shipment_id, shipment.order_id)
        if shipment.status is Status.WAYBILL_CREATED and shipment.status_key is None:
            # since = when the waybill was first recorded, so a re-run computes the same deadline and episode
            since = next((a.at for a in shipment.waybill_attempts if a.outcome == "created"), now)
            due = stall_due(
                shipment_id=shipment_id,
                status=Status.WAYBILL_CREATED,
                sub_status=shipment.sub_status,
                since=since,
                state_key=f"{waybill.carrier.value}#{waybill.tracking_number}",
                destination_province=shipment.destination_province,
                rules=self.deps.config().stall,
            )
            if due is not None:
                store.set_stall(shipment_id, StallMark(due_at=due.due_at, rule=due.rule.value, episode=due.episode))
        self._apply_parked(waybill)
        return {
            "provider": waybill.provider.value,
            "carrier": waybill.carrier.value,
            "tracking_number": waybill.tracking_number,
            "label_ref": waybill.label_ref,
            "status": shipment.status.value,
        }

    def _apply_parked(self, waybill: Waybill) -> None:
        """Pushes that arrived before the waybill was recorded were parked: apply them now. A failure
        leaves them parked (the normalizer re-checks); it must not fail a recorded waybill."""
        try:
            self.deps.apply_parked(waybill.carrier.value, waybill.tracking_number)
        except Exception:
            add_metric("ParkedReplayFailed", provider=waybill.provider.value)
            logger().exception("parked pushes not applied yet", extra={"tracking_number": waybill.tracking_number})

    def _cancel_orphan(self, waybill: Waybill) -> None:
        add_metric("WaybillOrphaned", provider=waybill.provider.value)
        try:
            self.deps.plugin(waybill.provider).cancel_waybill(waybill)
        except (CarrierError, LookupError):
            logger().exception(
                "orphan waybill not cancelled: cancel it by hand",
                extra={"provider": waybill.provider.value, "tracking_number": waybill.tracking_number},
            )

    # ---------------------------------------------------------------------------------- tracking

    def subscribe_tracking(self, shipment_id: str, result: WaybillResult) -> dict[str, Any]:
        shipment = self.deps.store.get(shipment_id)
        waybill = shipment.waybill or result.waybill()
        plugin = self.deps.plugin(waybill.provider)
        if Capability.PUSH_TRACKING not in plugin.capabilities:
            return self.schedule_poll(shipment_id)
        phone = shipment.receiver_masked.get("phone", "")
        last4 = phone[-4:] if len(phone) >= 4 and phone[-4:].isdigit() else None
        subscription = TrackingSubscription(
            carrier=waybill.carrier,
            tracking_number=waybill.tracking_number,
            callback_url=self.deps.callback_url(waybill.provider),
            phone_last4=last4,
            order_id=shipment_id,
            origin=shipment.origin_city,
            destination=shipment.destination_city,
        )
        try:
            plugin.subscribe_tracking(subscription)
        except CarrierError as failure:
            raise exact(failure) from None
        return {"subscribed": True, "provider": waybill.provider.value}

    def schedule_poll(self, shipment_id: str) -> dict[str, Any]:
        """Subscription failed or the provider does not push: let the poller query it from now on."""
        now = self.deps.now()
        self.deps.store.set_poll_due(shipment_id, now)
        add_metric("TrackingPollScheduled")
        return {"subscribed": False, "poll_due": now.isoformat()}

    # ---------------------------------------------------------------------------------------- emit

    def emit_waybill_created(self, shipment_id: str, plan: Plan | None) -> dict[str, Any]:
        shipment = self.deps.store.get(shipment_id)
        waybill = shipment.waybill
        if waybill is None:
            raise RuntimeError(f"shipment {shipment_id} has no waybill to announce")
        now = self.deps.now()
        started_at = plan.started_at if plan else None
        attempts = run_attempts(shipment, started_at)
        moves = failovers(shipment, started_at, now)
        events: list[Event] = [
            WaybillCreated(
                shipment_id=shipment_id,
                order_id=shipment.order_id,
                carrier=waybill.carrier,
                provider=waybill.provider,
                tracking_number=waybill.tracking_number,
                created_at=next((a.at for _, a in reversed(attempts) if a.outcome == "created"), now),
                attempt_count=max(1, len(attempts)),
                failed_over=bool(moves),
                has_label=bool(waybill.label_ref),
            ),
            *moves,
        ]
        self.deps.publisher.publish(events)
        if moves:
            add_metric("WaybillFailover", value=len(moves))
        return {"published": [e.detail_type() for e in events], "failed_over": bool(moves)}

    def mark_failed(
        self, shipment_id: str, plan: Plan | None, execution: str | None, error: TaskError | None = None
    ) -> dict[str, Any]:
        store, now = self.deps.store, self.deps.now()
        if execution:
            self.claims.release(shipment_id, execution)
        try:
            shipment = store.set_status(
                shipment_id, Status.WAYBILL_FAILED, expected={Status.PENDING, Status.WAYBILL_FAILED}, now=now
            )
        except StatusConflict as conflict:
            logger().info("not marking failed", extra={"status": conflict.current.value})
            return {"marked": False, "status": conflict.current.value}
        store.clear_stall(shipment_id)
        attempts = [a for _, a in run_attempts(shipment, plan.started_at if plan else None)]
        if not attempts:
            attempts = [self._no_candidate(shipment, error)]
            store.add_waybill_attempt(shipment_id, attempts[0])
        self.deps.publisher.publish(
            [
                WaybillFailed(
                    shipment_id=shipment_id,
                    order_id=shipment.order_id,
                    carrier=shipment.pinned_carrier,
                    attempts=[AttemptSummary.of(a) for a in attempts],
                    failed_at=now,
                )
            ]
        )
        add_metric("WaybillFailed")
        return {"marked": True, "status": Status.WAYBILL_FAILED.value, "attempts": len(attempts)}

    def _no_candidate(self, shipment: Shipment, error: TaskError | None) -> WaybillAttempt:
        """No candidate was tried (none covers the destination, or selection itself failed). The event
        model requires an attempt: record one naming the policy's first choice and why."""
        rules = self.deps.config().selection.rules
        first = rules[-1].candidates[0] if rules else CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO)
        if shipment.pinned_carrier is not None:
            first = CarrierCandidate(provider=Provider.KDNIAO, carrier=shipment.pinned_carrier)
        message = f"no carrier candidate for {shipment.destination_province}"
        code = NO_CANDIDATE
        if error is not None:
            _, err_code, err_message = describe_error(error)
            code, message = err_code or error.Error, err_message or error.Error
        return _attempt(first, "rejected", self.deps.now(), code, message)
