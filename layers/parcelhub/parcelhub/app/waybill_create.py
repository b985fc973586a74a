"""The waybill workflow's create step: ask one provider for a shipment's waybill, never leaving two live
orders (see :mod:`parcelhub.app.orders`). A mixin of :class:`parcelhub.app.waybill.WaybillService`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcelhub.app.capacity import CapacityGate
from parcelhub.app.circuit import CircuitBreaker, CircuitOpen
from parcelhub.app.orders import OrderDesk, OutcomeUnknown
from parcelhub.app.waybill_claims import ShipmentNotPending, WaybillClaims, WaybillInProgress
from parcelhub.app.waybill_payloads import WaybillResult, exact
from parcelhub.carriers.base import (
    Capability,
    CarrierAuthError,
    CarrierDuplicateOrder,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    ProviderPlugin,
    WaybillOrder,
)
from parcelhub.carriers.http import CONNECT_FAILED
from parcelhub.domain.capacity import Reservation
from parcelhub.domain.models import Carrier, CarrierOrder, Shipment, ShipmentRequest, Waybill
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.domain.status import Status
from parcelhub.observability import add_metric
from parcelhub.ports.errors import OrderInFlight, StatusConflict

if TYPE_CHECKING:
    from parcelhub.app.waybill import WaybillDeps


def wants_waybill(shipment: Shipment) -> bool:
    """The shipment still wants a waybill (not cancelled, no tracking status won yet)."""
    return shipment.status in (Status.PENDING, Status.WAYBILL_FAILED) and shipment.status_key is None


class CreateStep:
    """``create_waybill`` and what it needs; the service provides ``deps``, ``claims``, ``orders``, ``circuit``."""

    deps: WaybillDeps
    claims: WaybillClaims
    orders: OrderDesk
    gate: CapacityGate

    def circuit(self) -> CircuitBreaker:
        raise NotImplementedError

    def create_waybill(self, shipment_id: str, candidate: CarrierCandidate, execution: str) -> WaybillResult:
        store = self.deps.store
        shipment = store.get(shipment_id)
        if shipment.workflow_done:
            # the latest run has ended (announced, or failed) and no new run was begun (/retry and the sweep
            # begin one first): this is a duplicate run of an Express start (at-least-once, names not unique)
            add_metric("WaybillRunDuplicate")
            raise ShipmentNotPending(shipment_id, shipment.status)
        if shipment.waybill is not None:
            add_metric("WaybillReused")
            return WaybillResult.of(shipment.waybill, reused=True)
        if not wants_waybill(shipment):
            self._drop_in_flight(shipment, execution)
            raise ShipmentNotPending(shipment_id, shipment.status)
        self.claims.acquire(shipment_id, execution)
        in_flight = shipment.carrier_orders.get(shipment.open_order) if shipment.open_order else None
        if in_flight is not None:
            found = self._settle_in_flight(shipment, in_flight, candidate)
            if found is not None:
                return self._issued(shipment, in_flight, found)
            shipment = store.get(shipment_id)
        try:
            plugin = self.deps.plugin(candidate.provider)
        except LookupError as missing:
            raise CarrierAuthError(candidate.provider.value, str(missing), "NOT_CONFIGURED") from None
        if Capability.ISSUE_WAYBILLS not in plugin.capabilities:
            raise CarrierRejected(candidate.provider.value, "provider does not issue waybills", "UNSUPPORTED")
        # counted against the carrier's day before the create; a full carrier: the next candidate
        admitted_at = self.deps.now()
        reservation = self.gate.admit(candidate, shipment_id, admitted_at)
        try:
            circuit = self.circuit()
            circuit.acquire(candidate.provider.value)
            try:
                order = self.orders.open(shipment, candidate)
            except StatusConflict as conflict:
                raise ShipmentNotPending(shipment_id, conflict.current) from None
            except OrderInFlight as flying:
                raise WaybillInProgress(shipment_id, flying.key, self.deps.epoch()) from None
            waybill = self._ask_provider(plugin, circuit, shipment, order)
        except Exception:
            if reservation is Reservation.NEW:  # no waybill from this create: its count goes back (one found
                self.gate.release(candidate.carrier, shipment_id, admitted_at)  # later is counted when recorded)
            raise
        circuit.record_success(candidate.provider.value)
        add_metric("WaybillIssued", provider=candidate.provider.value)
        return self._issued(shipment, order, waybill).model_copy(update={"counted": reservation is not None})

    def _ask_provider(
        self, plugin: ProviderPlugin, circuit: CircuitBreaker, shipment: Shipment, order: CarrierOrder
    ) -> Waybill:
        """Send the create; an unclear outcome is settled by asking the provider before anything else."""
        provider = order.provider.value
        try:
            try:
                return plugin.create_waybill(self._order(shipment, order.carrier, order.order_id))
            except CarrierDuplicateOrder as duplicate:
                found = self.orders.resolve(shipment, order)
                if found is None:
                    raise CarrierRejected(duplicate.provider, duplicate.message, duplicate.code) from None
                add_metric("WaybillDuplicateFetched", provider=provider)
                return found
        except OutcomeUnknown as unknown:
            circuit.record_failure(provider, unknown)
            raise CarrierUnavailable(unknown.provider, unknown.message, unknown.code) from None
        except CarrierUnavailable as failure:
            add_metric("WaybillCreateFailed", provider=provider)
            if failure.code == CONNECT_FAILED:  # it never reached the provider
                circuit.record_failure(provider, failure)
                self.orders.absent(shipment.shipment_id, order)
                raise exact(failure) from None
            if circuit.blocked(provider):  # opened meanwhile (other shipments): not asked now, the retry decides
                circuit.record_failure(provider, failure)
                raise exact(failure) from None
            try:
                # a lost answer from a provider that then answers the question is healthy (no failure)
                return self._after_unclear(shipment, order, failure)
            except CarrierError:
                circuit.record_failure(provider, failure)
                raise
        except CarrierAuthError as failure:
            circuit.record_failure(provider, failure)
            self.orders.absent(shipment.shipment_id, order)
            add_metric("WaybillCreateFailed", provider=provider)
            raise exact(failure) from None
        except CarrierRejected as rejected:
            circuit.record_success(provider)  # the provider answered: it is healthy
            self.orders.absent(shipment.shipment_id, order)
            add_metric("WaybillRejected", provider=provider)
            raise exact(rejected) from None

    def _after_unclear(self, shipment: Shipment, order: CarrierOrder, failure: CarrierUnavailable) -> Waybill:
        """A create whose answer was lost (timeout, connection lost, 5xx): ask the provider at once."""
        add_metric("WaybillOutcomeUnclear", provider=order.provider.value)
        try:
            found = self.orders.resolve(shipment, order)
        except OutcomeUnknown:
            raise exact(failure) from None  # still in flight: the retry (or the next candidate) asks again
        if found is None:
            self.orders.absent(shipment.shipment_id, order)
            raise exact(failure) from None
        add_metric("WaybillRecoveredAfterUnclear", provider=order.provider.value)
        return found

    def _settle_in_flight(self, shipment: Shipment, order: CarrierOrder, candidate: CarrierCandidate) -> Waybill | None:
        """An earlier attempt is still in flight (a retried or killed task, a lost answer): find out what it
        became before anything else. Its waybill is kept even on another candidate's turn; an order its
        provider cannot be asked about is abandoned (cancelled later) only when the workflow moves on."""
        same = order.provider is candidate.provider
        if self.circuit().blocked(order.provider.value):  # known down: not even asked
            if same:
                raise CircuitOpen(order.provider.value)
            self.orders.abandon(shipment.shipment_id, order)
            return None
        try:
            found = self.orders.resolve(shipment, order)
        except OutcomeUnknown as unknown:
            if same:  # a retry: the provider is still not answering, a health failure like the create's
                self.circuit().record_failure(order.provider.value, unknown)
                raise CarrierUnavailable(unknown.provider, unknown.message, unknown.code) from None
            self.orders.abandon(shipment.shipment_id, order)
            return None
        if found is None:
            self.orders.absent(shipment.shipment_id, order)
        else:
            add_metric("WaybillRecoveredInFlight", provider=order.provider.value)
        return found

    def _issued(self, shipment: Shipment, order: CarrierOrder, waybill: Waybill) -> WaybillResult:
        """The provider issued it: the label straight to S3 (``LabelNotStored`` is retried: the waybill is
        asked for again, the order stays in flight until it is recorded)."""
        if waybill.label and self.deps.labels is not None:
            key = self.deps.labels.put(shipment.shipment_id, waybill.tracking_number, waybill.label)
            waybill = waybill.model_copy(update={"label_ref": key, "label": None})
        return WaybillResult.of(waybill.model_copy(update={"provider_order_id": order.order_id}))

    def _drop_in_flight(self, shipment: Shipment, execution: str) -> None:
        """The shipment no longer wants a waybill (cancelled, or tracking started): an order still in flight
        is cancelled - unless another execution is working on it (it cancels when it records)."""
        order = shipment.carrier_orders.get(shipment.open_order) if shipment.open_order else None
        if order is None:
            return
        try:
            self.claims.acquire(shipment.shipment_id, execution)
        except WaybillInProgress:
            return
        try:
            self.orders.cancel(shipment, order)
        finally:
            self.claims.release(shipment.shipment_id, execution)

    def _order(self, shipment: Shipment, carrier: Carrier, order_id: str) -> WaybillOrder:
        """Decrypt the parties (the only place) and rebuild the OMS request for the provider; ``order_id``
        is the provider order id (``WaybillOrder.shipment_id`` is what the builders send as such)."""
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
            shipment_id=order_id,
            carrier=carrier,
            request=request,
            sender=sender or self.deps.config().warehouse,
        )
