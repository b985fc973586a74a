"""The waybill workflow's use cases: one method per Step Functions task (``infra/statemachines/waybill.asl.json``).

::

    select_carriers -> next_candidate (skips open circuits) -> create_waybill --ok--> record_waybill
                             ^                                   | CarrierRejected / CarrierUnavailable
                             |                                   | (after retries) / CarrierAuthError /
                             +------------- record_failure <-----+ CircuitOpen
    record_waybill -> subscribe_tracking (failed: schedule_poll) -> emit_waybill_created
    a tracked number or a return: select_carriers -> register_tracking (resolve / book) -> record_waybill ...
    no candidate left -> mark_failed (WAYBILL_FAILED, WaybillFailed with its ops alert)

Idempotency (issue 5 item 3): the execution is named by the shipment id (a duplicate start is refused);
``create_waybill`` returns the recorded waybill when there is one, and otherwise takes a conditional
*claim* on the shipment (one execution at a time may ask providers for its waybill; a lease so a crashed
execution does not block a retry); the provider order id is the shipment id, so a second create at the
same provider answers "duplicate order" and the existing waybill is fetched; ``save_waybill`` refuses a
second, different waybill (and the loser's waybill is cancelled at its provider).

At most one live carrier order (issue 13, :mod:`parcelhub.app.orders`): each create is recorded as the
shipment's one order in flight before it is sent; an unclear outcome is settled by asking the provider
before any other provider is tried (a waybill found is kept, even on the next candidate's turn); an order
not kept - a cancel that raced the create, a second waybill, an order its provider could not be asked
about when the workflow moved on - is cancelled with its provider (by the recovery sweep when it cannot be
done at once), with an ops alert only when cancelling finally fails.

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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from parcelhub.app.capacity import CapacityGate
from parcelhub.app.circuit import CircuitBreaker
from parcelhub.app.estimates import DeliveryEstimator, LaneFacts
from parcelhub.app.orders import OrderDesk, OrderPorts, attempt
from parcelhub.app.quotes import OrderFacts, Quoter
from parcelhub.app.waybill_claims import ShipmentNotPending, WaybillClaims
from parcelhub.app.waybill_create import CreateStep
from parcelhub.app.waybill_payloads import Plan, TaskError, WaybillResult, describe_error, exact
from parcelhub.carriers.base import Capability, CarrierError, ProviderPlugin, TrackingSubscription
from parcelhub.config import HubConfig
from parcelhub.domain.models import (
    CREATE_OUTCOMES,
    UNSETTLED_ORDER_STATES,
    Carrier,
    CarrierOrder,
    DeliveryWindow,
    Party,
    Provider,
    Shipment,
    ShipmentKind,
    Waybill,
    WaybillAttempt,
    order_key,
)
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.domain.selection import SelectionRequest, select_carriers
from parcelhub.domain.stall import stall_due
from parcelhub.domain.status import Status, is_terminal
from parcelhub.events import (
    AttemptSummary,
    CarrierFailover,
    Event,
    EventPublisher,
    TrackingRegistered,
    WaybillCreated,
    WaybillFailed,
)
from parcelhub.observability import add_metric, logger
from parcelhub.ports.analytics import LaneHistory
from parcelhub.ports.capacity import CapacityLedger
from parcelhub.ports.errors import (
    ShipmentNotFound,
    StatusConflict,
    StoreError,
    TrackingClaimConflict,
    WaybillAlreadyRecorded,
)
from parcelhub.ports.messaging import LabelStore
from parcelhub.ports.store import ClaimFacts, StallMark, WaybillStore

if TYPE_CHECKING:
    from parcelhub.app.returns import ReturnService
    from parcelhub.app.trackings import TrackingRegistry

#: Error code of the synthetic attempt recorded when no candidate could even be tried.
NO_CANDIDATE = "NO_CANDIDATE"


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
    #: the plugin tracking subscriptions are made with (the API credentials and the push material the
    #: subscription registers); None = ``plugin``
    subscriber: Callable[[Provider], ProviderPlugin] | None = None
    #: the customer tracking page of a shipment (announced in WaybillCreated); None = not configured
    tracking_url: Callable[[str], str | None] = lambda shipment_id: None
    #: the lanes' delivery history (the estimate recorded with the waybill); None = no estimates
    lanes: LaneHistory | None = None
    #: the carriers' intake and balances (capacity planning); None = not counted
    capacity: CapacityLedger | None = None
    #: tracked numbers (``ShipmentKind.TRACKING``): their carrier decided, subscribed, announced
    trackings: Callable[[], TrackingRegistry] | None = None
    #: returns (``ShipmentKind.RETURN``): their door pickup booked, then tracked like a tracked number
    returns: Callable[[], ReturnService] | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    epoch: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def run_attempts(shipment: Shipment, started_at: datetime | None) -> list[tuple[int, WaybillAttempt]]:
    """The create attempts of this run (at or after ``started_at``), with their 1-based position among
    the create attempts (the log's cancel lines are not attempts)."""
    creates = [a for a in shipment.waybill_attempts if a.outcome in CREATE_OUTCOMES]
    return [(index, a) for index, a in enumerate(creates, 1) if started_at is None or a.at >= started_at]


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


class WaybillService(CreateStep):
    """The use cases behind the waybill workflow's tasks."""

    def __init__(self, deps: WaybillDeps) -> None:
        self.deps = deps
        self.claims = WaybillClaims(deps.store, deps.epoch)
        self.gate = CapacityGate(deps.capacity, deps.config)
        self.orders = OrderDesk(
            OrderPorts(
                store=deps.store,
                plugin=deps.plugin,
                config=deps.config,
                build_order=self._order,
                now=deps.now,
                sleep=deps.sleep,
                blocked=lambda provider: self.circuit().blocked(provider.value),
            )
        )

    def circuit(self) -> CircuitBreaker:
        return CircuitBreaker(self.deps.store, self.deps.config().circuit, clock=self.deps.epoch)

    # ------------------------------------------------------------------------------ select / next

    def select_carriers(self, shipment_id: str) -> Plan:
        shipment = self.deps.store.get(shipment_id)
        now = self.deps.now()
        if shipment.kind in (ShipmentKind.TRACKING, ShipmentKind.RETURN):  # not issued: RegisterTracking
            return Plan(rule=shipment.kind.value, started_at=now, tracking_only=True)
        if shipment.waybill is not None:
            # A re-run after the waybill was recorded: the same candidate again returns it at once.
            done = CarrierCandidate(provider=shipment.waybill.provider, carrier=shipment.waybill.carrier)
            return Plan(rule="recorded", started_at=now, remaining=[done])
        smart = self._smart(shipment, now)
        if smart is not None:
            return smart
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

    def _smart(self, shipment: Shipment, now: datetime) -> Plan | None:
        """The ``smart`` strategy's plan, its record stored on the shipment; ``None`` under ``rules``, or
        when the lane history cannot be read or no candidate exists (then the rules decide, counted)."""
        if self.deps.config().selection.strategy != "smart" or self.deps.lanes is None:
            return None
        quoter = Quoter(
            self.deps.lanes,
            self.deps.config,
            circuit_open=lambda provider: self.circuit().blocked(provider.value),
            issuers=self.deps.issuers,
            capacity=self.deps.capacity,
        )
        try:
            choice = quoter.quote(OrderFacts.of_shipment(shipment), now, every_circuit=False)
        except (StoreError, LookupError) as error:
            add_metric("SmartSelectionSkipped", error=type(error).__name__)
            logger().warning("smart selection skipped: the rules decide", extra={"error": str(error)[:200]})
            return None
        self.deps.store.set_selection(shipment.shipment_id, choice.record)
        add_metric("CarrierChosen", strategy="smart", reason=choice.record.reason)
        logger().info(
            "carriers selected",
            extra={"strategy": "smart", "reason": choice.record.reason, "promise_met": choice.record.promise_met,
                   "candidates": [f"{c.carrier}/{c.provider}" for c in choice.plan]},
        )  # fmt: skip
        return Plan(rule=f"smart:{choice.record.reason}", started_at=now, remaining=list(choice.plan))

    def next_candidate(self, shipment_id: str, plan: Plan) -> Plan:
        """Pop the next candidate whose circuit lets calls through; skipped ones are recorded."""
        circuit = self.circuit()
        remaining = list(plan.remaining)
        while remaining:
            candidate = remaining.pop(0)
            if circuit.blocked(candidate.provider):
                self.deps.store.add_waybill_attempt(
                    shipment_id,
                    attempt(candidate, "skipped_circuit_open", self.deps.now(), "CIRCUIT_OPEN", "circuit open"),
                )
                add_metric("CandidateSkipped", provider=candidate.provider.value)
                continue
            return plan.model_copy(update={"candidate": candidate, "remaining": remaining})
        return plan.model_copy(update={"candidate": None, "remaining": []})

    # ------------------------------------------------------------------------------------- create

    # ------------------------------------------------------------------------------------- failure

    def record_failure(self, shipment_id: str, candidate: CarrierCandidate, error: TaskError) -> dict[str, Any]:
        outcome, code, message = describe_error(error)
        self.deps.store.add_waybill_attempt(shipment_id, attempt(candidate, outcome, self.deps.now(), code, message))
        logger().warning(
            "waybill attempt failed",
            extra={"provider": candidate.provider.value, "carrier": candidate.carrier.value, "outcome": outcome,
                   "error_code": code},
        )  # fmt: skip
        return {"outcome": outcome, "error_code": code}

    # ------------------------------------------------------------------------------------- record

    def record_waybill(self, shipment_id: str, result: WaybillResult, execution: str | None = None) -> dict[str, Any]:
        store, now = self.deps.store, self.deps.now()
        waybill = result.waybill()
        key = order_key(waybill.provider, waybill.provider_order_id or shipment_id)
        created = attempt(CarrierCandidate(provider=waybill.provider, carrier=waybill.carrier), "created", now)
        estimate = self._estimate(shipment_id, waybill, now)
        lines, order = ([], None) if result.registered else ([created], key)  # a tracked number: no carrier order
        try:
            shipment = store.save_waybill(shipment_id, waybill, lines, now, order_key=order, estimate=estimate)
            if not (
                result.counted or result.registered
            ):  # a waybill found after an unclear outcome, or from before capacity was on
                issued = next((a.at for a in shipment.waybill_attempts if a.outcome == "created"), now)
                self.gate.count(waybill.carrier, shipment_id, issued)  # once, however often this step runs
        except StatusConflict as conflict:
            # cancelled while the provider was creating it: the cancel wins, the waybill is cancelled
            self._not_kept(store.get(shipment_id), key, waybill)
            add_metric("WaybillCancelledAfterCreate", provider=waybill.provider.value)
            self._settled(store.get(shipment_id), execution)
            raise ShipmentNotPending(shipment_id, conflict.current) from None
        except WaybillAlreadyRecorded as taken:
            # another run recorded a different waybill first: ours is not kept
            add_metric("WaybillOrphaned", provider=waybill.provider.value)
            shipment = store.get(shipment_id)
            self._not_kept(shipment, key, waybill)
            shipment = store.get(shipment_id)
            waybill = taken.existing
        self._claim_tracking(shipment, waybill, now)
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

    def _estimate(self, shipment_id: str, waybill: Waybill, now: datetime) -> DeliveryWindow | None:
        """The delivery estimate recorded with the waybill (and kept as the promise the first time)."""
        if self.deps.lanes is None:
            return None
        estimator = DeliveryEstimator(
            self.deps.lanes,
            self.deps.config().estimates.settings,
            metric=add_metric,
            log=logger,
        )
        return estimator.at_creation(LaneFacts.of(self.deps.store.get(shipment_id)), waybill.carrier.value, now)

    def _not_kept(self, shipment: Shipment, key: str, waybill: Waybill) -> None:
        order = shipment.carrier_orders.get(key)
        if order is None:  # an order from before carrier orders were recorded
            order = CarrierOrder(provider=waybill.provider, carrier=waybill.carrier, order_id=key.split("#", 1)[1],
                                 state="open", at=self.deps.now())  # fmt: skip
        if order.state in ("open", "abandoned"):
            self.orders.cancel(shipment, order, waybill)

    def _claim_tracking(self, shipment: Shipment, waybill: Waybill, now: datetime) -> None:
        """Claim the tracking number; one a carrier issued again after the shipment that had it went quiet
        (delivered, returned, cancelled, or not updated for ``tracking_reuse_days``) moves to this shipment."""
        store, carrier, number = self.deps.store, waybill.carrier.value, waybill.tracking_number
        try:
            store.claim_tracking(
                carrier, number, shipment.shipment_id, shipment.order_id, facts=ClaimFacts.of(shipment)
            )
            return
        except TrackingClaimConflict as taken:
            previous = taken.shipment_id
        try:
            old = store.get(previous)
            idle = now - old.updated_at > timedelta(days=self.deps.config().recovery.tracking_reuse_days)
            reusable = is_terminal(old.status) or old.status is Status.CANCELLED or idle
        except ShipmentNotFound:
            reusable = True
        if not reusable:
            add_metric("TrackingClaimConflict", provider=waybill.provider.value)
            logger().error("tracking number held by a live shipment", extra={"holder": previous})
            return
        store.claim_tracking(
            carrier, number, shipment.shipment_id, shipment.order_id, replacing=previous, facts=ClaimFacts.of(shipment)
        )
        add_metric("TrackingNumberReissued", provider=waybill.provider.value)

    def _apply_parked(self, waybill: Waybill) -> None:
        """Pushes that arrived before the waybill was recorded were parked: apply them now. A failure
        leaves them parked (the normalizer re-checks); it must not fail a recorded waybill."""
        try:
            self.deps.apply_parked(waybill.carrier.value, waybill.tracking_number)
        except Exception:
            add_metric("ParkedReplayFailed", provider=waybill.provider.value)
            logger().exception("parked pushes not applied yet", extra={"tracking_number": waybill.tracking_number})

    # ---------------------------------------------------------------------------------- tracking

    def register_tracking(self, shipment_id: str) -> WaybillResult:
        """A tracked number's carrier decided (see :mod:`parcelhub.app.trackings`), or a return's door
        pickup booked (:meth:`parcelhub.app.returns.ReturnService.book`)."""
        if self.deps.returns is not None and self.deps.store.get(shipment_id).kind is ShipmentKind.RETURN:
            return self.deps.returns().book(shipment_id, now=self.deps.now())
        if self.deps.trackings is None:
            raise RuntimeError("tracked numbers are not wired into this workflow")
        return self.deps.trackings().resolve(shipment_id)

    def subscribe_tracking(self, shipment_id: str, result: WaybillResult) -> dict[str, Any]:
        shipment = self.deps.store.get(shipment_id)
        waybill = shipment.waybill or result.waybill()
        plugin = (self.deps.subscriber or self.deps.plugin)(waybill.provider)
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
            origin=shipment.origin_city or None,
            destination=shipment.destination_city or None,
            auto_detect=shipment.kind is ShipmentKind.TRACKING
            and self.deps.trackings is not None
            and self.deps.trackings().auto_detect(shipment),
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

    def emit_waybill_created(self, shipment_id: str, plan: Plan | None, execution: str | None = None) -> dict[str, Any]:
        shipment = self.deps.store.get(shipment_id)
        waybill = shipment.waybill
        if waybill is None:
            raise RuntimeError(f"shipment {shipment_id} has no waybill to announce")
        if shipment.kind is ShipmentKind.TRACKING:
            self.deps.publisher.publish([TrackingRegistered.of(shipment, waybill, self.deps.tracking_url(shipment_id))])
            self._settled(shipment, execution)
            return {"published": [TrackingRegistered.detail_type()], "failed_over": False}
        if shipment.kind is ShipmentKind.RETURN:  # ReturnCreated & co. are derived from the item by the outbox
            self._settled(shipment, execution)
            return {"published": [], "failed_over": False}
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
                tracking_url=self.deps.tracking_url(shipment_id),
                selection=shipment.selection,
            ),
            *moves,
        ]
        self.deps.publisher.publish(events)
        if moves:
            add_metric("WaybillFailover", value=len(moves))
        self._settled(shipment, execution)
        return {"published": [e.detail_type() for e in events], "failed_over": bool(moves)}

    def _settled(self, shipment: Shipment, execution: str | None = None) -> None:
        """The workflow is done with the shipment: its claim is free, and it is out of the recovery index
        unless an order not kept is still to be cancelled (then the sweep comes back for it)."""
        if execution:
            self.claims.release(shipment.shipment_id, execution)
        unsettled = any(o.state in UNSETTLED_ORDER_STATES for o in shipment.carrier_orders.values())
        # orders not kept: the sweep cancels them now; else out of the recovery index
        self.deps.store.finish_run(shipment.shipment_id, self.deps.now() if unsettled else None)

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
        if shipment.kind is ShipmentKind.RETURN and self.deps.returns is not None:  # refused, or unreachable
            self.deps.returns().pickup_failed(shipment_id, now=now)
        in_flight = shipment.carrier_orders.get(shipment.open_order) if shipment.open_order else None
        if in_flight is not None:  # no waybill will be kept: whatever that attempt created is cancelled
            self.orders.cancel(shipment, in_flight)
            shipment = store.get(shipment_id)
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
        self._settled(store.get(shipment_id))
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
        return attempt(first, "rejected", self.deps.now(), code, message)
