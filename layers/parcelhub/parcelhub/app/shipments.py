"""OMS use cases: accept an order, read it back, cancel it, retry its waybill, the consumer view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from secrets import token_hex

from parcelhub.app import deps
from parcelhub.config import environment, hub_config
from parcelhub.domain.models import Shipment, ShipmentRequest, TrackingEvent
from parcelhub.domain.status import Status
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import OrderAlreadyExists, ShipmentNotFound, StatusConflict
from parcelhub.security.masking import mask_party

#: statuses from which a shipment can still be cancelled (nothing picked up yet)
CANCELLABLE: frozenset[Status] = frozenset({Status.PENDING, Status.WAYBILL_CREATED, Status.WAYBILL_FAILED})


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


def accept(request: ShipmentRequest, *, now: datetime) -> Accepted:
    """Store the shipment (PENDING) with its personal data encrypted, then queue the waybill request.

    The same order id with the same body returns the first shipment (re-queued if it is still
    PENDING, so a lost queue message heals); a different body raises :class:`OrderConflict`.
    """
    store = deps.store()
    shipment_id = new_shipment_id(now)
    shipment = new_shipment(shipment_id, request, now=now)
    try:
        store.create(shipment)
    except OrderAlreadyExists as taken:
        if taken.shipment_id == shipment_id:
            # our own transaction: the SDK retried it after its response was lost, and it had committed
            return _accepted(shipment, request, now)
        if taken.fingerprint != shipment.request_fingerprint:
            raise OrderConflict(request.order_id, taken.shipment_id) from None
        existing = store.get(taken.shipment_id)
        if existing.status is Status.PENDING:
            _enqueue_waybill(existing.shipment_id)
        return Accepted(existing, created=False)
    return _accepted(shipment, request, now)


def _accepted(shipment: Shipment, request: ShipmentRequest, now: datetime) -> Accepted:
    _enqueue_waybill(shipment.shipment_id)
    _publish_accepted(shipment, now)
    add_metric("ShipmentAccepted", customer_tier=request.customer_tier.value)
    return Accepted(shipment, created=True)


def new_shipment(shipment_id: str, request: ShipmentRequest, *, now: datetime) -> Shipment:
    """The PENDING shipment for an order: personal data encrypted, a masked copy, the route."""
    cipher = deps.cipher()
    sender = request.sender or hub_config().warehouse
    pii = {"receiver": cipher.encrypt_party(request.receiver, shipment_id)}
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
        created_at=now,
        updated_at=now,
    )


def _enqueue_waybill(shipment_id: str) -> None:
    env = environment()
    env.require("waybill_queue_url")
    deps.aws_client("sqs").send_message(
        QueueUrl=env.waybill_queue_url, MessageBody=json.dumps({"shipment_id": shipment_id})
    )


def _publish_accepted(shipment: Shipment, now: datetime) -> None:
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
        deps.publisher().publish([event])
    except Exception:  # the shipment is stored and queued: an analytics event must not fail the order
        logger().exception("ShipmentAccepted not published", extra={"shipment_id": shipment.shipment_id})
        add_metric("EventPublishFailed", event="ShipmentAccepted")


def get(shipment_id: str) -> tuple[Shipment, list[TrackingEvent]]:
    store = deps.store()
    shipment = store.get(shipment_id)
    return shipment, store.list_events(shipment_id)


def get_by_order(order_id: str) -> tuple[Shipment, list[TrackingEvent]]:
    store = deps.store()
    shipment = store.get_by_order(order_id)
    return shipment, store.list_events(shipment.shipment_id)


def by_tracking(carrier: str, tracking_number: str) -> tuple[Shipment, list[TrackingEvent]]:
    store = deps.store()
    claim = store.find_by_tracking(carrier, tracking_number)
    if claim is None:
        raise ShipmentNotFound(f"{carrier}/{tracking_number}")
    return store.get(claim.shipment_id), store.list_events(claim.shipment_id)


def cancel(shipment_id: str, *, now: datetime) -> Shipment:
    """Cancel the waybill with its provider while nothing is picked up; idempotent once cancelled."""
    store = deps.store()
    shipment = store.get(shipment_id)
    if shipment.status is Status.CANCELLED:
        return shipment
    if shipment.status not in CANCELLABLE:
        raise InvalidTransition(shipment_id, "cancel", shipment.status)
    if shipment.waybill is not None:
        deps.plugin(shipment.waybill.provider).cancel_waybill(shipment.waybill)
    try:
        cancelled = store.set_status(shipment_id, Status.CANCELLED, expected=set(CANCELLABLE), now=now)
    except StatusConflict as conflict:
        raise InvalidTransition(shipment_id, "cancel", conflict.current) from None
    store.clear_stall(shipment_id)
    store.clear_poll(shipment_id)
    return cancelled


def retry(shipment_id: str, *, now: datetime) -> Shipment:
    """Re-run the waybill workflow for a WAYBILL_FAILED shipment (a new, uniquely named execution)."""
    store = deps.store()
    shipment = store.get(shipment_id)
    if shipment.status is not Status.WAYBILL_FAILED:
        raise InvalidTransition(shipment_id, "retry", shipment.status)
    try:
        pending = store.set_status(shipment_id, Status.PENDING, expected={Status.WAYBILL_FAILED}, now=now)
    except StatusConflict as conflict:
        raise InvalidTransition(shipment_id, "retry", conflict.current) from None
    env = environment()
    env.require("waybill_state_machine_arn")
    deps.aws_client("stepfunctions").start_execution(
        stateMachineArn=env.waybill_state_machine_arn,
        name=f"{shipment_id}-r{len(shipment.waybill_attempts)}",
        input=json.dumps({"shipment_id": shipment_id}),
    )
    return pending


def label_link(label_ref: str | None) -> str | None:
    """A time-limited link to the stored label (presigning is local: no request is made)."""
    if not label_ref:
        return None
    env = environment()
    env.require("data_bucket")
    url: str = deps.aws_client("s3").generate_presigned_url(
        "get_object",
        Params={"Bucket": env.data_bucket, "Key": label_ref},
        ExpiresIn=hub_config().label_link_seconds,
    )
    return url
