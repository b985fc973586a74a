"""OMS use cases: accept an order, read it back, cancel it, retry its waybill, the consumer view.

:class:`ShipmentService` receives its ports in its constructor (the composition root wires the AWS
adapters); nothing here touches AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from secrets import token_hex
from typing import TYPE_CHECKING

from parcelhub.carriers.base import CarrierError
from parcelhub.domain.models import (
    Party,
    Provider,
    Shipment,
    ShipmentRequest,
    TrackingEvent,
    Waybill,
    WaybillAttempt,
    order_key,
)
from parcelhub.domain.status import Status
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import OrderAlreadyExists, ShipmentNotFound, StatusConflict
from parcelhub.security.links import TrackingLinks, last_digits
from parcelhub.security.masking import mask_party

if TYPE_CHECKING:  # annotations only: the API's cold start does not pay for the event contracts
    from parcelhub.carriers.base import ProviderPlugin
    from parcelhub.config import HubConfig
    from parcelhub.events import EventPublisher
    from parcelhub.ports.messaging import LabelStore, MessageSink, PartyCipher, WorkflowStarter
    from parcelhub.ports.store import (
        CarrierOrders,
        PollIndex,
        RecoveryIndex,
        Shipments,
        StallIndex,
        Timeline,
        TrackingClaims,
    )

#: statuses from which a shipment can still be cancelled (nothing picked up yet)
CANCELLABLE: frozenset[Status] = frozenset({Status.PENDING, Status.WAYBILL_CREATED, Status.WAYBILL_FAILED})


def raced_orders(shipment: Shipment) -> bool:
    """Orders of the shipment still to be cancelled with their providers."""
    return any(o.state == "abandoned" for o in shipment.carrier_orders.values())


class OrderConflict(Exception):
    """The order id is taken by a shipment created from a different request body."""

    def __init__(self, order_id: str, shipment_id: str) -> None:
        super().__init__(f"order {order_id} already exists with a different body (shipment {shipment_id})")
        self.order_id = order_id
        self.shipment_id = shipment_id


class InvalidTransition(Exception):
    """The shipment's status does not allow the requested action."""

    def __init__(self, shipment_id: str, action: str, status: Status) -> None:
        super().__init__(f"cannot {action} shipment {shipment_id}: it is {status.value}")
        self.shipment_id = shipment_id
        self.action = action
        self.status = status


@dataclass(frozen=True, slots=True)
class Accepted:
    shipment: Shipment
    created: bool


def new_shipment_id(now: datetime) -> str:
    """Time-ordered and unguessable: ``shp_<ms since epoch, hex><48 random bits>``."""
    return f"shp_{int(now.timestamp() * 1000):011x}{token_hex(6)}"


def new_shipment(
    shipment_id: str,
    request: ShipmentRequest,
    *,
    now: datetime,
    cipher: PartyCipher,
    warehouse: Party,
    links: TrackingLinks | None = None,
    pending_limit: timedelta | None = None,
) -> Shipment:
    """The PENDING shipment for an order: personal data encrypted, a masked copy, the route, (when tracking
    links are configured) the digest the lookup form checks the phone's last digits on, and when the
    recovery sweep looks at it if its waybill workflow has not settled it by then."""
    sender = request.sender or warehouse
    pii = {"receiver": cipher.encrypt_party(request.receiver, shipment_id)}
    digits = last_digits(request.receiver.phone)
    digest = links.lookup_digest(shipment_id, digits) if links is not None and digits else None
    if request.sender is not None:
        pii["sender"] = cipher.encrypt_party(request.sender, shipment_id)
    return Shipment(
        shipment_id=shipment_id,
        order_id=request.order_id,
        customer_tier=request.customer_tier,
        service=request.service,
        pinned_carrier=request.carrier,
        declared_value=request.declared_value,
        parcels=request.parcels,
        items=request.items,
        receiver_masked=mask_party(request.receiver),
        sender_masked=mask_party(request.sender) if request.sender else None,
        origin_province=sender.province,
        origin_city=sender.city,
        destination_province=request.receiver.province,
        destination_city=request.receiver.city,
        pii=pii,
        request_fingerprint=request.fingerprint(),
        lookup_digest=digest,
        created_at=now,
        updated_at=now,
        recovery_due=now + pending_limit if pending_limit is not None else None,
    )


@dataclass(frozen=True)
class ShipmentPorts:
    """What the OMS use cases talk to (the composition root passes the AWS adapters)."""

    shipments: Shipments
    timeline: Timeline
    tracking: TrackingClaims
    stalls: StallIndex
    polls: PollIndex
    cipher: PartyCipher
    waybill_requests: MessageSink
    workflow: WorkflowStarter
    labels: LabelStore
    publisher: EventPublisher
    plugin: Callable[[Provider], ProviderPlugin]
    config: Callable[[], HubConfig]
    #: tracking-page links (``None`` while no tracking-link secret is configured)
    links: Callable[[], TrackingLinks | None]
    orders: CarrierOrders
    recovery: RecoveryIndex


class ShipmentService:
    """The OMS API's use cases."""

    def __init__(self, ports: ShipmentPorts) -> None:
        self.ports = ports

    def accept(self, request: ShipmentRequest, *, now: datetime) -> Accepted:
        """Store the shipment (PENDING) with its personal data encrypted, then queue the waybill request.

        The same order id with the same body returns the first shipment (re-queued if it is still
        PENDING, so a lost queue message heals); a different body raises :class:`OrderConflict`.
        """
        store = self.ports.shipments
        shipment_id = new_shipment_id(now)
        config = self.ports.config()
        shipment = new_shipment(
            shipment_id,
            request,
            now=now,
            cipher=self.ports.cipher,
            warehouse=config.warehouse,
            links=self.ports.links(),
            pending_limit=timedelta(seconds=config.recovery.pending_limit_seconds),
        )
        try:
            store.create(shipment)
        except OrderAlreadyExists as taken:
            if taken.shipment_id == shipment_id:
                # our own transaction: the SDK retried it after its response was lost, and it had committed
                return self._accepted(shipment, request, now)
            if taken.fingerprint != shipment.request_fingerprint:
                raise OrderConflict(request.order_id, taken.shipment_id) from None
            existing = store.get(taken.shipment_id)
            if existing.status is Status.PENDING:
                self._enqueue_waybill(existing.shipment_id)
            return Accepted(existing, created=False)
        return self._accepted(shipment, request, now)

    def _accepted(self, shipment: Shipment, request: ShipmentRequest, now: datetime) -> Accepted:
        self._enqueue_waybill(shipment.shipment_id)
        self._publish_accepted(shipment, now)
        add_metric("ShipmentAccepted", customer_tier=request.customer_tier.value)
        return Accepted(shipment, created=True)

    def _enqueue_waybill(self, shipment_id: str) -> None:
        self.ports.waybill_requests.send([json.dumps({"shipment_id": shipment_id})])

    def _publish_accepted(self, shipment: Shipment, now: datetime) -> None:
        from parcelhub.events import ShipmentAccepted

        event = ShipmentAccepted(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            customer_tier=shipment.customer_tier,
            service=shipment.service,
            destination_province=shipment.destination_province,
            destination_city=shipment.destination_city,
            parcel_count=len(shipment.parcels),
            accepted_at=now,
        )
        try:
            self.ports.publisher.publish([event])
        except Exception:  # the shipment is stored and queued: an analytics event must not fail the order
            logger().exception("ShipmentAccepted not published", extra={"shipment_id": shipment.shipment_id})
            add_metric("EventPublishFailed", event="ShipmentAccepted")

    def get(self, shipment_id: str) -> tuple[Shipment, list[TrackingEvent]]:
        shipment = self.ports.shipments.get(shipment_id)
        return shipment, self.ports.timeline.list_events(shipment_id)

    def get_by_order(self, order_id: str) -> tuple[Shipment, list[TrackingEvent]]:
        shipment = self.ports.shipments.get_by_order(order_id)
        return shipment, self.ports.timeline.list_events(shipment.shipment_id)

    def by_tracking(self, carrier: str, tracking_number: str) -> tuple[Shipment, list[TrackingEvent]]:
        claim = self.ports.tracking.find_by_tracking(carrier, tracking_number)
        if claim is None:
            raise ShipmentNotFound(f"{carrier}/{tracking_number}")
        return self.ports.shipments.get(claim.shipment_id), self.ports.timeline.list_events(claim.shipment_id)

    def cancel(self, shipment_id: str, *, now: datetime) -> Shipment:
        """Cancel the waybill with its provider while nothing is picked up; idempotent once cancelled.

        A cancel that races the waybill workflow wins whichever comes first: once CANCELLED, no waybill
        is recorded (the workflow cancels what its provider created); a waybill recorded between our read
        and our write is cancelled here."""
        store = self.ports.shipments
        shipment = store.get(shipment_id)
        if shipment.status is Status.CANCELLED:
            return shipment
        if shipment.status not in CANCELLABLE:
            raise InvalidTransition(shipment_id, "cancel", shipment.status)
        if shipment.waybill is not None:
            self.ports.plugin(shipment.waybill.provider).cancel_waybill(shipment.waybill)
        try:
            cancelled = store.set_status(shipment_id, Status.CANCELLED, expected=set(CANCELLABLE), now=now)
        except StatusConflict as conflict:
            raise InvalidTransition(shipment_id, "cancel", conflict.current) from None
        self.ports.stalls.clear_stall(shipment_id)
        self.ports.polls.clear_poll(shipment_id)
        waybill = cancelled.waybill
        if waybill is not None:
            raced = shipment.waybill is None  # recorded after our read: not cancelled with its provider yet
            self._waybill_cancelled(cancelled, waybill, now, cancel_now=raced)
        if cancelled.open_order is None and not raced_orders(cancelled):
            self.ports.recovery.clear_recovery(shipment_id)
        return store.get(shipment_id) if waybill is not None else cancelled

    def _waybill_cancelled(self, shipment: Shipment, waybill: Waybill, now: datetime, *, cancel_now: bool) -> None:
        """The order behind a cancelled shipment's waybill is no longer kept: cancelled with its provider
        (here when it was not yet), else left to the recovery sweep; the waybill log says which."""
        key = order_key(waybill.provider, waybill.provider_order_id or shipment.shipment_id)
        if key not in shipment.carrier_orders:
            if cancel_now:
                self.ports.plugin(waybill.provider).cancel_waybill(waybill)
            return
        line = WaybillAttempt(provider=waybill.provider, carrier=waybill.carrier, outcome="cancelled", at=now,
                              error_message="shipment cancelled")  # fmt: skip
        if cancel_now:
            try:
                self.ports.plugin(waybill.provider).cancel_waybill(waybill)
            except CarrierError:
                logger().warning("cancel raced the waybill: left to the recovery sweep")
                self.ports.orders.settle_order(shipment.shipment_id, key, "abandoned", now, recovery_due=now)
                return
        self.ports.orders.settle_order(shipment.shipment_id, key, "cancelled", now, attempt=line)

    def retry(self, shipment_id: str, *, now: datetime) -> Shipment:
        """Re-run the waybill workflow for a WAYBILL_FAILED shipment: a fresh execution ``<id>-r<n>`` (the
        run is counted in the same write that moves it back to PENDING, so a name is never used twice).
        Idempotent: a repeated ``/retry`` while that run is pending starts the same execution again (a
        no-op when it is running), so a lost answer or a failed start never strands the shipment."""
        store = self.ports.shipments
        shipment = store.get(shipment_id)
        if shipment.status is Status.PENDING and shipment.retry_execution:
            self.ports.workflow.start(shipment.retry_execution, shipment_id)
            return shipment
        if shipment.status is not Status.WAYBILL_FAILED:
            raise InvalidTransition(shipment_id, "retry", shipment.status)
        limit = timedelta(seconds=self.ports.config().recovery.pending_limit_seconds)
        try:
            pending, name = self.ports.recovery.begin_run(
                shipment_id, "retry", expected={Status.WAYBILL_FAILED}, recovery_due=now + limit, now=now
            )
        except StatusConflict as conflict:
            if conflict.current is Status.PENDING:
                return self.retry(shipment_id, now=now)  # a concurrent /retry won: same run
            raise InvalidTransition(shipment_id, "retry", conflict.current) from None
        self.ports.workflow.start(name, shipment_id)
        add_metric("WaybillRetried")
        return pending

    def label_link(self, label_ref: str | None) -> str | None:
        """A time-limited link to the stored label (presigning is local: no request is made)."""
        if not label_ref:
            return None
        return self.ports.labels.link(label_ref, self.ports.config().label_link_seconds)
