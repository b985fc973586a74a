"""Returns with door pickup (issue #19 item 2): ask, book, track, cancel; and what a shipment's return is now.

:class:`ReturnService` receives its ports in its constructor (``composition.return_service``):

* :meth:`ReturnService.create` (the API) - a return of a delivered shipment: some of its items, a reason,
  the pickup address and a window. It only validates and stores: a shipment of kind RETURN (PENDING,
  ``requested``) linked to the original in one transaction, in the recovery index, then queued on the
  waybill-requests queue like an order. Nothing is decrypted there: a pickup address given is sealed for
  the return; else the masked copy and the route come from the original's masked receiver and its
  destination (the warehouse side likewise from the original's sender, or the configured warehouse).
* :meth:`ReturnService.book` (the waybill workflow's ``RegisterTracking`` state, for kind RETURN) - the
  parties decrypted (the original's envelopes with the original's id), the door pickup booked with the
  provider configured for the carrier (``HubConfig.returns``), ``pickup_booked`` recorded conditionally,
  and the booking's waybill number answered as the 'waybill' the next states record, claim, subscribe and
  settle - the same guarantees as any parcel: retried with jitter, re-driven by the recovery sweep when a
  run is lost, failed with an ops alert (``pickup_failed``) when the provider refuses. Idempotent: a
  re-run after a booking answers that booking again (never a second one); a booking whose answer was
  lost is found by the provider's duplicate-order answer and recorded without its number. A booking
  without a waybill number (Kdniao 1001 may give none) is recorded and leaves the workflow; such a
  return waits for the provider's number (left as is: nothing follows it up yet).
* :meth:`ReturnService.cancel` (the API) - cancel the pickup before the courier collects (idempotent);
  :class:`ReturnNotCancellable` after that (the provider refuses too: SF 8252, Kdniao "已揽件"). A return
  cancelled while its booking is in flight is not booked, or its late booking is cancelled at once.

:func:`return_view` is the return a shipment stands for *now*: a return shipment's stored state advanced
by its parcel's tracking (``domain.returns.advance``: over the whole timeline when given, else over the
winning scan), or a forward parcel's own return signal (refused, sent back: ``forward_return``). The
outbox derives ``ReturnCreated``/``ReturnPickedUp``/``ReturnReceived``/``ReturnCancelled`` from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from secrets import token_hex
from typing import TYPE_CHECKING

from parcelhub.app.waybill_claims import ShipmentNotPending
from parcelhub.app.waybill_payloads import WaybillResult
from parcelhub.carriers.base import Capability, CarrierDuplicateOrder, CarrierError, CarrierRejected, PickupOrder
from parcelhub.domain.models import (
    PickupBooking,
    Provider,
    ReturnRequest,
    Shipment,
    ShipmentKind,
    TrackingEvent,
)
from parcelhub.domain.returns import (
    CANCELLABLE,
    ReturnReason,
    ReturnState,
    advance,
    fold,
    forward_return,
    item_problems,
    window_problems,
)
from parcelhub.domain.status import state_of
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import ShipmentNotFound
from parcelhub.ports.returns import ReturnStateConflict
from parcelhub.security.masking import mask_party

if TYPE_CHECKING:
    from parcelhub.carriers.base import ProviderPlugin
    from parcelhub.config import HubConfig
    from parcelhub.domain.models import Carrier
    from parcelhub.domain.status import Status
    from parcelhub.ports.messaging import MessageSink, PartyCipher
    from parcelhub.ports.returns import ReturnRecords
    from parcelhub.ports.store import RecoveryIndex, Shipments

#: the states a pickup may be booked from (a refused booking may be tried again by a /retry run)
BOOKABLE: frozenset[ReturnState] = frozenset({ReturnState.REQUESTED, ReturnState.PICKUP_FAILED})
#: the states that end a return before anything is booked
ENDED: frozenset[ReturnState] = frozenset({ReturnState.CANCELLED, ReturnState.EXPIRED})


class NotReturnable(Exception):
    """The shipment cannot be returned now (not delivered yet, or itself a return)."""

    def __init__(self, shipment_id: str, reason: str) -> None:
        super().__init__(f"shipment {shipment_id} cannot be returned: {reason}")
        self.shipment_id = shipment_id
        self.reason = reason


class ReturnInvalid(ValueError):
    """The request is well-formed but not bookable: ``errors`` are (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors))
        self.errors = errors


class ReturnNotCancellable(Exception):
    """The courier collected the return already (or it ended): its pickup cannot be cancelled."""

    def __init__(self, return_id: str, state: ReturnState | None, provider_code: str | None = None) -> None:
        super().__init__(f"return {return_id} is {state}: its pickup can no longer be cancelled")
        self.return_id = return_id
        self.state = state
        self.provider_code = provider_code


@dataclass(frozen=True, slots=True)
class ReturnView:
    """A shipment's return as it stands: its state, why, and the shipment it returns."""

    state: ReturnState
    reason: ReturnReason
    original_shipment_id: str
    #: the carrier's own return signal on a forward parcel (not a booked return)
    linked_from_tracking: bool


def return_view(shipment: Shipment, events: Iterable[TrackingEvent] | None = None) -> ReturnView | None:
    """The return ``shipment`` stands for now, or None (a forward parcel on its way, delivered...).

    ``events`` (its timeline) count only as far as the parcel's state has taken them in (precedence key at
    most its ``status_key``): the fold stores a batch's scans before it writes the state, and a reader in
    between must not see a return received while its parcel is still in transit."""
    if shipment.kind is ShipmentKind.RETURN and shipment.return_state is not None and shipment.return_of:
        state = shipment.return_state
        taken = shipment.status_key
        if events is not None and taken is not None:
            folded = (e for e in events if e.time_flag is None and state_of(e).key <= taken)
            state = fold(state, ((e.status, e.sub_status) for e in folded))
        if shipment.status_key is not None:
            state = advance(state, shipment.status, shipment.sub_status)
        return ReturnView(state, shipment.return_reason or ReturnReason.OTHER, shipment.return_of, False)
    if shipment.kind is ShipmentKind.RETURN:
        return None
    found = forward_return(shipment.status, shipment.sub_status)
    if found is None:
        return None
    return ReturnView(found[0], found[1], shipment.shipment_id, True)


def new_return_id(now: datetime) -> str:
    """Time-ordered and unguessable, short enough for every provider's order code: ``ret_<ms hex><48 bits>``."""
    return f"ret_{int(now.timestamp() * 1000):011x}{token_hex(6)}"


@dataclass(frozen=True)
class ReturnPorts:
    shipments: Shipments
    returns: ReturnRecords
    recovery: RecoveryIndex
    #: the API only seals (a pickup address given); the workflow opens the envelopes to book
    cipher: PartyCipher
    #: the provider's plugin with its API credentials (book and cancel pickups)
    plugin: Callable[[Provider], ProviderPlugin]
    config: Callable[[], HubConfig]
    #: the waybill-requests queue (only the API sends to it: built on first use)
    waybill_requests: Callable[[], MessageSink]


class ReturnService:
    def __init__(self, ports: ReturnPorts) -> None:
        self.ports = ports

    # ------------------------------------------------------------------------------------------ create
    def create(self, shipment_id: str, request: ReturnRequest, *, now: datetime) -> Shipment:
        """Store a return of ``shipment_id`` (``requested``, PENDING) and queue its booking.
        ``ShipmentNotFound``, :class:`NotReturnable`, :class:`ReturnInvalid`."""
        original = self.ports.shipments.get(shipment_id)
        config = self.ports.config()
        carrier = self._returnable_carrier(original, config.returns.returnable)
        errors = [("items", problem) for problem in item_problems(
            ((i.name, i.quantity) for i in request.items), ((i.name, i.quantity) for i in original.items)
        )]  # fmt: skip
        errors += [
            ("pickup_window", p) for p in window_problems(request.pickup_window, now, config.returns.max_window_days)
        ]
        if errors:
            raise ReturnInvalid(errors)
        return_id = new_return_id(now)
        given = request.pickup_address
        pii: dict[str, str] = {}
        if given is not None:  # sealed for the return (the API may make data keys, never open envelopes)
            pii["sender"] = self.ports.cipher.encrypt_party(given, return_id)
        # the warehouse side: the original's sender when it had one (its route is the original's origin)
        warehouse_masked = original.sender_masked if "sender" in original.pii else None
        created = Shipment(
            shipment_id=return_id,
            order_id=original.order_id,
            kind=ShipmentKind.RETURN,
            customer_tier=original.customer_tier,
            service=original.service,
            pinned_carrier=carrier,
            declared_value=original.declared_value,
            parcels=original.parcels,
            items=request.items,
            receiver_masked=warehouse_masked or mask_party(config.warehouse),
            sender_masked=mask_party(given) if given is not None else dict(original.receiver_masked),
            origin_province=given.province if given is not None else original.destination_province,
            origin_city=given.city if given is not None else original.destination_city,
            destination_province=original.origin_province,
            destination_city=original.origin_city,
            pii=pii,
            created_at=now,
            updated_at=now,
            recovery_due=now + timedelta(seconds=config.recovery.pending_limit_seconds),
            return_of=shipment_id,
            return_state=ReturnState.REQUESTED,
            return_reason=request.reason,
            return_reason_text=request.reason_text,
            pickup_window=request.pickup_window,
        )
        self.ports.returns.create_return(created)
        self.ports.waybill_requests().send([json.dumps({"shipment_id": return_id})])
        add_metric("ReturnCreated", reason=request.reason.value)
        return created

    @staticmethod
    def _returnable_carrier(original: Shipment, returnable: frozenset[Status]) -> Carrier:
        """The carrier of a shipment that may be returned now (a delivered one has its carrier)."""
        if original.kind is ShipmentKind.RETURN:
            raise NotReturnable(original.shipment_id, "it is a return itself")
        if original.status not in returnable or original.carrier is None:
            raise NotReturnable(original.shipment_id, f"it is {original.status.value}, not delivered")
        return original.carrier

    # -------------------------------------------------------------------------------------------- book
    def book(self, return_id: str, *, now: datetime) -> WaybillResult:
        """The workflow's step for a return: book its door pickup and answer the booking's waybill number
        as the 'waybill' the next states record and subscribe (``registered``: no carrier order).

        ``ShipmentNotPending`` (the run has nothing to do) when the return was cancelled, or its booking
        came without a waybill number; ``CarrierRejected`` (``pickup_failed`` recorded) when the provider
        refused; ``CarrierUnavailable`` and the like propagate (retried, then the run fails it)."""
        shipment = self.get(return_id)
        if shipment.return_state in ENDED:
            raise ShipmentNotPending(return_id, shipment.status)
        if shipment.pickup is not None:  # a re-run after the booking: the same booking, never a second
            return self._booked(shipment)
        if shipment.return_state not in BOOKABLE:
            raise ShipmentNotPending(return_id, shipment.status)
        order = self._order(shipment)
        provider = self.ports.config().returns.provider_for(order.carrier)
        try:
            plugin = self.ports.plugin(provider)
            if Capability.BOOK_PICKUP not in plugin.capabilities:
                raise LookupError(f"{provider.value} books no door pickups")
        except LookupError as missing:
            self.pickup_failed(return_id, now=now)
            raise CarrierRejected(provider.value, str(missing), "UNSUPPORTED") from None
        try:
            booking = plugin.book_pickup(order)
        except CarrierDuplicateOrder:
            # the provider has our order (its code is the return id): an earlier try booked it and its answer
            # was lost (a crash before recording it). Booked, its waybill number unknown: no second booking
            add_metric("ReturnPickupFoundBooked", provider=provider.value)
            booking = PickupBooking(
                provider=provider, carrier=order.carrier, pickup_order_id=return_id, window=order.window, booked_at=now
            )
        except CarrierRejected:
            add_metric("ReturnPickupFailed", provider=provider.value)
            self.pickup_failed(return_id, now=now)
            raise
        try:
            booked = self.ports.returns.update_return(
                return_id, ReturnState.PICKUP_BOOKED, expected=BOOKABLE, now=now, pickup=booking
            )
        except ReturnStateConflict as conflict:
            if conflict.current in ENDED:  # cancelled while the provider was booking it: not kept
                self._not_kept(return_id, conflict.current, booking, now)
                raise ShipmentNotPending(return_id, self.get(return_id).status) from None
            booked = self.get(return_id)  # another run recorded its booking first: that one stands
            if booked.pickup is None:
                raise
        add_metric("ReturnPickupBooked", provider=provider.value)
        return self._booked(booked)

    def _order(self, shipment: Shipment) -> PickupOrder:
        """What the provider is asked for: the parties opened here (the original's envelopes are bound to
        the original's id), the return's items, the original's parcels, the window asked for."""
        original = self.ports.shipments.get(str(shipment.return_of))
        cipher = self.ports.cipher
        if "sender" in shipment.pii:
            pickup = cipher.decrypt_party(shipment.pii["sender"], shipment.shipment_id)
        else:
            pickup = cipher.decrypt_party(original.pii["receiver"], original.shipment_id)
        if "sender" in original.pii:
            warehouse = cipher.decrypt_party(original.pii["sender"], original.shipment_id)
        else:
            warehouse = self.ports.config().warehouse
        if shipment.pinned_carrier is None or shipment.pickup_window is None:
            raise ValueError(f"return {shipment.shipment_id} has no carrier or pickup window")
        return PickupOrder(
            return_id=shipment.shipment_id,
            carrier=shipment.pinned_carrier,
            pickup=pickup,
            receiver=warehouse,
            items=tuple(shipment.items),
            parcels=tuple(shipment.parcels),
            window=shipment.pickup_window,
            remark=f"return of {shipment.order_id}",
        )

    def _booked(self, shipment: Shipment) -> WaybillResult:
        """The booking's waybill number as the workflow's 'waybill'; without one the run ends here."""
        pickup = shipment.pickup
        if pickup is None or not pickup.tracking_number:
            # left as is: the return waits for the provider's number (out of the recovery index, no re-drive)
            self.ports.recovery.finish_run(shipment.shipment_id, None)
            add_metric("ReturnBookedWithoutNumber")
            logger().warning("pickup booked without a waybill number", extra={"return_id": shipment.shipment_id})
            raise ShipmentNotPending(shipment.shipment_id, shipment.status)
        return WaybillResult(
            provider=pickup.provider, carrier=pickup.carrier, tracking_number=pickup.tracking_number, registered=True
        )

    def _not_kept(self, return_id: str, state: ReturnState, booking: PickupBooking, now: datetime) -> None:
        """A booking that lost to a cancel is cancelled with its provider and recorded on the return."""
        try:
            self.ports.plugin(booking.provider).cancel_pickup(booking)
            booking = booking.model_copy(update={"cancelled_at": now})
        except (CarrierError, LookupError) as failure:
            add_metric("ReturnPickupNotCancelled", provider=booking.provider.value)
            logger().error(
                "a pickup booked after its return was cancelled is still live at the provider",
                extra={"return_id": return_id, "error": type(failure).__name__},
            )
        try:
            self.ports.returns.update_return(return_id, state, expected=frozenset({state}), now=now, pickup=booking)
        except ReturnStateConflict:
            logger().warning("late booking not recorded", extra={"return_id": return_id})

    def pickup_failed(self, return_id: str, *, now: datetime) -> None:
        """No pickup could be booked (refused, or the run failed): a return still ``requested`` is
        ``pickup_failed``; any other state stays (idempotent)."""
        try:
            self.ports.returns.update_return(
                return_id, ReturnState.PICKUP_FAILED, expected=frozenset({ReturnState.REQUESTED}), now=now
            )
        except ReturnStateConflict:
            return
        logger().warning("pickup not booked", extra={"return_id": return_id})

    # ------------------------------------------------------------------------------------------ read
    def get(self, return_id: str) -> Shipment:
        shipment = self.ports.shipments.get(return_id)
        if shipment.kind is not ShipmentKind.RETURN:
            raise ShipmentNotFound(return_id)
        return shipment

    # ------------------------------------------------------------------------------------------ cancel
    def cancel(self, return_id: str, *, now: datetime) -> Shipment:
        """Cancel the pickup with its provider, then the return; a cancelled return is returned as is."""
        shipment = self.get(return_id)
        view = return_view(shipment)
        state = view.state if view else shipment.return_state
        if state is ReturnState.CANCELLED:
            return shipment
        if state not in CANCELLABLE:
            raise ReturnNotCancellable(return_id, state)
        pickup = shipment.pickup
        if pickup is not None and pickup.cancelled_at is None:
            try:
                self.ports.plugin(pickup.provider).cancel_pickup(pickup)
            except CarrierRejected as refused:
                raise ReturnNotCancellable(return_id, state, refused.code) from None
            pickup = pickup.model_copy(update={"cancelled_at": now})
        try:
            cancelled = self.ports.returns.update_return(
                return_id, ReturnState.CANCELLED, expected=CANCELLABLE, now=now, pickup=pickup
            )
        except ReturnStateConflict as conflict:
            if conflict.current is ReturnState.CANCELLED:
                return self.get(return_id)
            raise ReturnNotCancellable(return_id, conflict.current) from None
        add_metric("ReturnCancelled")
        return cancelled


__all__ = [
    "NotReturnable",
    "ReturnInvalid",
    "ReturnNotCancellable",
    "ReturnPorts",
    "ReturnService",
    "ReturnView",
    "new_return_id",
    "return_view",
]
