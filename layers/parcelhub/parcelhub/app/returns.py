"""Returns with door pickup (issue #19 item 2): book, track, cancel; and what a shipment's return is now.

:class:`ReturnService` receives its ports in its constructor (``composition.return_service``):

* :meth:`ReturnService.create` - a return of a delivered shipment: some of its items, a reason, the pickup
  address (the original receiver, decrypted here, when not given) and a window. The return is a shipment
  of kind RETURN linked to the original (one transaction), personal data encrypted like a receiver's; the
  door pickup is booked with the provider configured for the carrier (``HubConfig.returns``). A booking
  with a waybill number claims it and subscribes it, so the return is tracked by the same pipeline as any
  parcel (pushes, the canonical fold, stalls). A provider that refuses leaves it ``pickup_failed``.
* :meth:`ReturnService.cancel` - cancel the pickup before the courier collects (idempotent);
  :class:`ReturnNotCancellable` after that (the provider refuses too: SF 8252, Kdniao "已揽件").

:func:`return_view` is the return a shipment stands for *now*: a return shipment's stored state advanced
by its parcel's tracking (``domain.returns.advance``: over the whole timeline when given, else over the
winning scan), or a forward parcel's own return signal (refused, sent back: ``forward_return``). The
outbox derives ``ReturnCreated``/``ReturnPickedUp``/``ReturnReceived``/``ReturnCancelled`` from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from secrets import token_hex
from typing import TYPE_CHECKING

from parcelhub.carriers.base import Capability, CarrierError, CarrierRejected, PickupOrder, TrackingSubscription
from parcelhub.domain.models import (
    Party,
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
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import ShipmentNotFound, TrackingClaimConflict
from parcelhub.ports.returns import ReturnStateConflict
from parcelhub.ports.store import ClaimFacts
from parcelhub.security.links import last_digits
from parcelhub.security.masking import mask_party

if TYPE_CHECKING:
    from parcelhub.carriers.base import ProviderPlugin
    from parcelhub.config import HubConfig
    from parcelhub.domain.models import Carrier
    from parcelhub.domain.status import Status
    from parcelhub.ports.messaging import PartyCipher
    from parcelhub.ports.returns import ReturnRecords
    from parcelhub.ports.store import PollIndex, Shipments, TrackingClaims


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
    """The return ``shipment`` stands for now, or None (a forward parcel on its way, delivered...)."""
    if shipment.kind is ShipmentKind.RETURN and shipment.return_state is not None and shipment.return_of:
        state = shipment.return_state
        if events is not None:
            state = fold(state, ((e.status, e.sub_status) for e in events if e.time_flag is None))
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
    tracking: TrackingClaims
    polls: PollIndex
    cipher: PartyCipher
    plugin: Callable[[Provider], ProviderPlugin]
    #: the plugin a tracking subscription is made with (API credentials + push material)
    subscriber: Callable[[Provider], ProviderPlugin]
    callback_url: Callable[[Provider], str]
    config: Callable[[], HubConfig]
    #: pushes parked before the return's tracking number was claimed are applied through this
    apply_parked: Callable[[str, str], int] | None = None


class ReturnService:
    def __init__(self, ports: ReturnPorts) -> None:
        self.ports = ports

    # ------------------------------------------------------------------------------------------ create
    def create(self, shipment_id: str, request: ReturnRequest, *, now: datetime) -> Shipment:
        """A return of ``shipment_id`` with its pickup booked (or ``pickup_failed`` when the provider
        refused). ``ShipmentNotFound``, :class:`NotReturnable`, :class:`ReturnInvalid`."""
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
        pickup = request.pickup_address or self.ports.cipher.decrypt_party(original.pii["receiver"], shipment_id)
        if "sender" in original.pii:
            warehouse = self.ports.cipher.decrypt_party(original.pii["sender"], shipment_id)
        else:
            warehouse = config.warehouse
        return_id = new_return_id(now)
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
            receiver_masked=mask_party(warehouse),
            sender_masked=mask_party(pickup),
            origin_province=pickup.province,
            origin_city=pickup.city,
            destination_province=warehouse.province,
            destination_city=warehouse.city,
            pii={
                "sender": self.ports.cipher.encrypt_party(pickup, return_id),
                "receiver": self.ports.cipher.encrypt_party(warehouse, return_id),
            },
            created_at=now,
            updated_at=now,
            return_of=shipment_id,
            return_state=ReturnState.REQUESTED,
            return_reason=request.reason,
            return_reason_text=request.reason_text,
        )
        self.ports.returns.create_return(created)
        add_metric("ReturnCreated", reason=request.reason.value)
        order = PickupOrder(
            return_id=return_id,
            carrier=carrier,
            pickup=pickup,
            receiver=warehouse,
            items=tuple(request.items),
            parcels=tuple(original.parcels),
            window=request.pickup_window,
            remark=f"return of {original.order_id}",
        )
        return self._book(created, order, config.returns.provider_for(carrier), now)

    @staticmethod
    def _returnable_carrier(original: Shipment, returnable: frozenset[Status]) -> Carrier:
        """The carrier of a shipment that may be returned now (a delivered one has its carrier)."""
        if original.kind is ShipmentKind.RETURN:
            raise NotReturnable(original.shipment_id, "it is a return itself")
        if original.status not in returnable or original.carrier is None:
            raise NotReturnable(original.shipment_id, f"it is {original.status.value}, not delivered")
        return original.carrier

    def _book(self, created: Shipment, order: PickupOrder, provider: Provider, now: datetime) -> Shipment:
        returns, return_id = self.ports.returns, created.shipment_id
        try:
            plugin = self.ports.plugin(provider)
            if Capability.BOOK_PICKUP not in plugin.capabilities:
                raise CarrierRejected(provider.value, "this provider books no door pickups", "UNSUPPORTED")
            booking = plugin.book_pickup(order)
        except (CarrierError, LookupError) as failure:
            add_metric("ReturnPickupFailed", provider=provider.value)
            logger().warning("pickup not booked", extra={"return_id": return_id, "error": type(failure).__name__})
            return returns.update_return(
                return_id, ReturnState.PICKUP_FAILED, expected=frozenset({ReturnState.REQUESTED}), now=now
            )
        booked = returns.update_return(
            return_id,
            ReturnState.PICKUP_BOOKED,
            expected=frozenset({ReturnState.REQUESTED}),
            now=now,
            pickup=booking,
        )
        if booking.tracking_number:
            self._track(booked, booking, order.pickup, now)
        return booked

    def _track(self, booked: Shipment, booking: PickupBooking, pickup: Party, now: datetime) -> None:
        """Claim the return's waybill number and subscribe it (else the poller queries it)."""
        number, carrier = str(booking.tracking_number), booking.carrier.value
        try:
            self.ports.tracking.claim_tracking(
                carrier, number, booked.shipment_id, booked.order_id, facts=ClaimFacts.of(booked)
            )
        except TrackingClaimConflict:
            add_metric("TrackingClaimConflict", provider=booking.provider.value)
            logger().error("return waybill number held by another shipment", extra={"return_id": booked.shipment_id})
            return
        digits = last_digits(pickup.phone)
        subscription = TrackingSubscription(
            carrier=booking.carrier,
            tracking_number=number,
            callback_url=self.ports.callback_url(booking.provider),
            phone_last4=digits or None,
            order_id=booked.shipment_id,
            origin=booked.origin_city,
            destination=booked.destination_city,
        )
        try:
            plugin = self.ports.subscriber(booking.provider)
            if Capability.PUSH_TRACKING not in plugin.capabilities:
                raise CarrierRejected(booking.provider.value, "does not push", "NO_PUSH")
            plugin.subscribe_tracking(subscription)
        except (CarrierError, LookupError):
            self.ports.polls.set_poll_due(booked.shipment_id, now)
            add_metric("TrackingPollScheduled")
        if self.ports.apply_parked is not None:
            try:
                self.ports.apply_parked(carrier, number)
            except Exception:
                logger().exception("parked pushes not applied yet", extra={"return_id": booked.shipment_id})

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
