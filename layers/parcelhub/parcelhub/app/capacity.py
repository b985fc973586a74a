"""Capacity planning's use cases (issue 18 item 4; the arithmetic is :mod:`parcelhub.domain.capacity`).

* :class:`CapacityGate`, in the waybill workflow: before a create, the shipment is counted against the
  carrier's day and balance in one conditional transaction; a carrier whose daily intake cap is reached
  or whose e-waybill balance is used up refuses the order (``CarrierRejected``, code
  ``CAPACITY_CAP_REACHED`` / ``CAPACITY_BALANCE_EXHAUSTED``: recorded in the attempt history, and the
  workflow goes on to the next candidate). A create that fails gives its count back; a waybill recorded
  without one (found after an unclear outcome) is counted then. Once per shipment and carrier however
  often a step runs.
* :class:`CapacityPlanner`, on a schedule (``functions/capacity_planner``) and behind
  ``GET /v1/analytics/capacity``: per carrier, the balance (asked of the provider where its API has a
  balance query, else as configured), the intake history, the forecast, the cover and the alerts; the
  scheduled run stages one ``CarrierCapacityAlert`` per carrier, kind and local day through the outbox
  (a deterministic event id: a second run the same day stages nothing new).

Nothing here runs unless ``capacity.enabled``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from parcelhub.carriers.base import CarrierError, CarrierRejected
from parcelhub.config import HubConfig
from parcelhub.domain.capacity import CapacityBlock, Outlook, Reservation, Standing, limits_for, outlook
from parcelhub.domain.delivery_clock import local_day
from parcelhub.domain.models import Carrier, Provider
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.events import CarrierCapacityAlert, EventPublisher
from parcelhub.observability import add_metric, logger
from parcelhub.ports.capacity import CapacityLedger
from parcelhub.ports.errors import StoreError

#: the attempt's error code when a carrier is full
REFUSAL_CODES = {
    CapacityBlock.CAP_REACHED: "CAPACITY_CAP_REACHED",
    CapacityBlock.BALANCE_EXHAUSTED: "CAPACITY_BALANCE_EXHAUSTED",
}


class CapacityGate:
    """The workflow's side of capacity planning: refuse a full carrier, count a recorded waybill."""

    def __init__(self, ledger: CapacityLedger | None, config: Callable[[], HubConfig]) -> None:
        self.ledger = ledger
        self.config = config

    def _on(self) -> bool:
        return self.ledger is not None and self.config().capacity.enabled

    def admit(self, candidate: CarrierCandidate, shipment_id: str, now: datetime) -> Reservation | None:
        """Count the shipment against the carrier's day before its create (one conditional transaction);
        ``CarrierRejected`` when the carrier is full. ``Reservation.NEW``: this call counted it (give it back
        if the create fails); ``HELD``: counted before; ``None``: capacity planning is off."""
        if not self._on() or self.ledger is None:
            return None
        carrier = candidate.carrier.value
        limits = limits_for(self.config().capacity, carrier)
        cap = limits.daily_cap if limits is not None else None
        reason = self.ledger.reserve(carrier, shipment_id, local_day(now), cap)
        if isinstance(reason, Reservation):
            return reason
        add_metric("CarrierCapacityRefused", carrier=carrier, reason=reason.value)
        if reason is CapacityBlock.CAP_REACHED:
            why = f"{carrier} reached its daily intake cap of {cap} parcels"
        else:
            why = f"{carrier} has no e-waybill numbers left"
        raise CarrierRejected(candidate.provider.value, why, REFUSAL_CODES[reason])

    def release(self, carrier: Carrier, shipment_id: str, admitted_at: datetime) -> None:
        """Take back a reservation whose create failed (``admitted_at``: the ``now`` it was admitted with).
        A failure to do so leaves the day over-counted by one, never under: logged and counted."""
        if self.ledger is None:
            return
        try:
            self.ledger.release(carrier.value, shipment_id, local_day(admitted_at))
        except StoreError as error:
            add_metric("CarrierCapacityReleaseFailed", carrier=carrier.value)
            logger().warning("capacity not released", extra={"carrier": carrier.value, "error": str(error)[:200]})

    def count(self, carrier: Carrier, shipment_id: str, issued_at: datetime) -> None:
        """Count the shipment's recorded waybill against the carrier's day, unless its reservation did."""
        if not self._on() or self.ledger is None:
            return
        if self.ledger.record_intake(carrier.value, shipment_id, local_day(issued_at)):
            add_metric("CarrierIntakeCounted", carrier=carrier.value)


@dataclass(frozen=True, slots=True)
class PlannerRun:
    outlooks: list[Outlook] = field(default_factory=list)
    #: (carrier, kind) of the alerts staged this run (a repeat the same day is deduplicated downstream)
    alerts: list[tuple[str, str]] = field(default_factory=list)
    balances_set: list[str] = field(default_factory=list)


class CapacityPlanner:
    """Balances, forecasts and alerts per carrier."""

    def __init__(
        self,
        ledger: CapacityLedger,
        config: Callable[[], HubConfig],
        *,
        publisher: EventPublisher | None = None,
        provider_balance: Callable[[Carrier, Sequence[Provider]], int | None] = lambda carrier, providers: None,
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.publisher = publisher
        self.provider_balance = provider_balance

    def _issuers(self, carrier: Carrier) -> list[Provider]:
        """The providers the selection rules send this carrier's waybills through (whose account's balance
        is the one that runs out), in the rules' order."""
        rules = self.config().selection.rules
        return list(dict.fromkeys(c.provider for rule in rules for c in rule.candidates if c.carrier is carrier))

    def carriers(self) -> list[Carrier]:
        """The configured carriers, then every carrier the selection rules name."""
        config = self.config()
        named = list(config.capacity.carriers)
        named += [candidate.carrier for rule in config.selection.rules for candidate in rule.candidates]
        return list(dict.fromkeys(named))

    def outlooks(self, now: datetime) -> list[Outlook]:
        """Read-only: each carrier's outlook (one ``Query`` a carrier)."""
        policy, today = self.config().capacity, local_day(now)
        looks = []
        for carrier in self.carriers():
            history, standing = self._history(carrier, now)
            looks.append(outlook(policy, carrier.value, today, history, standing))
        return looks

    def _history(self, carrier: Carrier, now: datetime) -> tuple[Mapping[date, int], Standing]:
        today = local_day(now)
        since = today - timedelta(days=self.config().capacity.history_days)
        return self.ledger.intake_history(carrier.value, since, today)

    def run(self, now: datetime) -> PlannerRun:
        """The scheduled run: refresh balances, judge every carrier, stage the alerts."""
        policy = self.config().capacity
        if not policy.enabled:
            return PlannerRun()
        run = PlannerRun()
        for carrier in self.carriers():
            history, standing = self._history(carrier, now)
            refreshed = self._refresh_balance(carrier, standing, now)
            if refreshed is not None:
                run.balances_set.append(carrier.value)
                standing = refreshed
            look = outlook(policy, carrier.value, local_day(now), history, standing)
            run.outlooks.append(look)
            events = [self._alert(look, kind.value) for kind in look.alerts]
            if events and self.publisher is not None:
                self.publisher.publish(events)
                run.alerts.extend((carrier.value, e.kind) for e in events)
        logger().info(
            "capacity planned",
            extra={"carriers": [o.carrier for o in run.outlooks], "alerts": run.alerts, "balances": run.balances_set},
        )
        return run

    def _refresh_balance(self, carrier: Carrier, stored: Standing, now: datetime) -> Standing | None:
        """The provider's balance where it has a query, else the configured one when it was stated after
        the stored one; the new standing when the stored balance was replaced."""
        policy = self.config().capacity
        if policy.query_provider_balance:
            try:
                queried = self.provider_balance(carrier, self._issuers(carrier))
            except (CarrierError, LookupError) as error:  # the configured balance stands
                add_metric("WaybillBalanceQueryFailed", carrier=carrier.value)
                logger().warning("balance query failed", extra={"carrier": carrier.value, "error": str(error)[:200]})
                queried = None
            if queried is not None:
                self.ledger.set_balance(carrier.value, queried, "provider", now)
                return replace(stored, balance_left=queried, balance_source="provider", balance_as_of=now)
        limits = limits_for(policy, carrier.value)
        if limits is None or limits.balance is None or limits.balance_as_of is None:
            return None
        if stored.balance_as_of is not None and stored.balance_as_of >= limits.balance_as_of:
            return None
        self.ledger.set_balance(carrier.value, limits.balance, "configured", limits.balance_as_of)
        return replace(
            stored, balance_left=limits.balance, balance_source="configured", balance_as_of=limits.balance_as_of
        )

    def _alert(self, look: Outlook, kind: str) -> CarrierCapacityAlert:
        today = look.forecast[0]
        ahead = next((d for d in look.forecast if d.day == look.cap_day), today)
        return CarrierCapacityAlert(
            carrier=Carrier(look.carrier),
            kind=kind,  # type: ignore[arg-type]  # a CapacityAlertKind value
            day=look.today,
            daily_cap=look.daily_cap,
            intake_today=look.intake_today,
            forecast_today=today.parcels,
            balance_left=look.balance_left,
            balance_source=look.balance_source,  # type: ignore[arg-type]
            cover_days=look.cover_days,
            min_cover_days=self.config().capacity.min_cover_days,
            cap_day=look.cap_day,
            promotion=(ahead if kind == "cap_forecast" else today).promotion,
        )
