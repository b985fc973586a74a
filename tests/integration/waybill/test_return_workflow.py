"""Returns booked by the waybill workflow (issue 19 item 2), on moto Step Functions with the real ASL, our
handler in-process and the Kdniao sandbox over loopback.

The API only stores a return and queues it (it may not decrypt personal data); these tests show that what
the API left is booked durably: by the run it queued, by the recovery sweep's re-drive when that run was
lost, by a /retry after the provider was down for the first run - and never twice, however often a run is
repeated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from parcelhub import composition
from parcelhub.app.recovery import RecoverySweeper
from parcelhub.domain.models import Carrier, Item, Provider, ReturnRequest, Shipment, TrackingEvent
from parcelhub.domain.returns import PickupWindow, ReturnReason, ReturnState
from parcelhub.domain.status import Status, SubStatus, state_of
from parcelhub.ports.errors import StoreUnavailable
from sandbox.carriers.kdniao import OORDER

from .conftest import REGION, World, order_request

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(world: World) -> str:
    """The waybill-requests queue the API sends to (nothing consumes it here: a test runs what it means)."""
    url = str(boto3.client("sqs", region_name=REGION).create_queue(QueueName="waybill-requests")["QueueUrl"])
    world.monkeypatch.setenv("WAYBILL_QUEUE_URL", url)
    composition.reset()
    return url


def delivered(world: World) -> Shipment:
    """A ZTO parcel issued through Kdniao by the workflow and delivered."""
    shipment = world.new_shipment(order_request())
    assert world.run(shipment.shipment_id)["status"] == "SUCCEEDED"
    issued = world.shipment(shipment.shipment_id)
    scan = TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number=str(issued.tracking_number),
        occurred_at=datetime.now(UTC) - timedelta(hours=1),
        status=Status.DELIVERED,
        sub_status=SubStatus.SIGNED_BY_RECIPIENT,
        raw_code="3",
        raw_text="已签收",
    )
    composition.store().apply_tracking_state(
        shipment.shipment_id, state_of(scan), last_event_text="已签收", stall=None, now=datetime.now(UTC)
    )
    return world.shipment(shipment.shipment_id)


def ask(original: Shipment) -> Shipment:
    """``POST /v1/shipments/{id}/returns`` as the API runs it."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    request = ReturnRequest(
        items=[Item(name=original.items[0].name, quantity=1)],
        reason=ReturnReason.DAMAGED,
        pickup_window=PickupWindow(start=start, end=start + timedelta(hours=3)),
    )
    return composition.return_service().create(original.shipment_id, request, now=datetime.now(UTC))


def bookings(world: World, return_id: str) -> list[dict[str, Any]]:
    """The Kdniao sandbox's 1001 calls for the return (refused ones too)."""
    with world.kdniao.lock:
        return [
            dict(e)
            for e in world.kdniao.request_log
            if e["operation"] == "book_pickup" and e.get("order_code") == return_id
        ]


def queued(url: str) -> list[dict[str, Any]]:
    reply = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in reply.get("Messages", [])]


def test_a_return_whose_run_was_lost_is_booked_by_the_recovery_sweep(world: World, queue: str) -> None:
    # Given a return the API stored and queued (the API opened no personal data to do so)
    original = delivered(world)
    created = ask(original)
    assert queued(queue) == [{"shipment_id": created.shipment_id}]
    # When its run is lost (the message dropped, the execution gone): nothing books it
    assert bookings(world, created.shipment_id) == []
    assert world.shipment(created.shipment_id).return_state is ReturnState.REQUESTED
    # Then the recovery sweep, once the pending limit has passed, re-drives the workflow
    due = world.shipment(created.shipment_id).recovery_due
    assert due is not None
    sweeper = RecoverySweeper(
        store=composition.store(),
        waybills=composition.waybill_service(),
        workflow=composition.workflow(),
        config=composition.hub_config,
        now=lambda: due + timedelta(seconds=1),
    )
    assert sweeper.recover(created.shipment_id) == "redriven"
    runs = world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"]
    (redrive,) = [r for r in runs if r["name"].startswith(f"{created.shipment_id}-d")]
    assert world.wait(redrive["executionArn"])["status"] == "SUCCEEDED"
    # And the pickup is booked at Kdniao (to the original receiver, decrypted in the workflow), tracked, settled
    booked = world.shipment(created.shipment_id)
    assert booked.return_state is ReturnState.PICKUP_BOOKED
    assert booked.pickup is not None
    assert booked.pickup.provider is Provider.KDNIAO
    assert (booked.status, booked.tracking_number) == (Status.WAYBILL_CREATED, booked.pickup.tracking_number)
    claim = composition.store().find_by_tracking("ZTO", str(booked.tracking_number))
    assert claim is not None
    assert claim.shipment_id == created.shipment_id
    assert (booked.recovery_due, booked.workflow_done) == (None, True)
    assert [c["signature_valid"] for c in bookings(world, created.shipment_id)] == [True]
    # And the events are the return's own and its estimate to the warehouse (no WaybillCreated for a return)
    kinds = [e["detail-type"] for e in world.events() if e["detail"]["shipment_id"] == created.shipment_id]
    assert sorted(kinds) == ["EstimatedDeliveryChanged", "ReturnCreated"]


def test_a_repeated_run_answers_the_booking_it_made_and_never_books_twice(world: World, queue: str) -> None:
    # Given a return booked by its run
    created = ask(delivered(world))
    assert world.run(created.shipment_id)["status"] == "SUCCEEDED"
    first = world.shipment(created.shipment_id)
    # When the run is repeated: a duplicate start of the same name at once after, and a re-drive
    again = world.wait(world.start_duplicate(created.shipment_id))
    redrive = world.run(created.shipment_id, name=f"{created.shipment_id}-d1")
    # Then both succeed on the same booking, and Kdniao was asked once
    assert (again["status"], redrive["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert len(bookings(world, created.shipment_id)) == 1
    assert [o for o in world.kdniao.orders if o == created.shipment_id] == [created.shipment_id]
    final = world.shipment(created.shipment_id)
    assert (final.tracking_number, final.pickup) == (first.tracking_number, first.pickup)


def test_a_return_whose_provider_was_down_is_failed_with_an_alert_and_booked_on_retry(world: World, queue: str) -> None:
    # Given Kdniao's pickup service is down (its waybill and tracking APIs are up)
    created = ask(delivered(world))
    world.fault(world.kdniao, outage=True, paths=[OORDER])
    # When the run books it: the booking step is retried, then the run fails it
    assert world.run(created.shipment_id)["status"] == "FAILED"
    failed = world.shipment(created.shipment_id)
    assert (failed.return_state, failed.status) == (ReturnState.PICKUP_FAILED, Status.WAYBILL_FAILED)
    alerts = [e["detail"] for e in world.events() if e["detail-type"] == "WaybillFailed"]
    assert [a["shipment_id"] for a in alerts] == [created.shipment_id]
    with world.kdniao.lock:  # the step asked, and was retried (1001 refused by the outage each time)
        refused = [e for e in world.kdniao.request_log if e["operation"] == OORDER and e.get("fault") == "unavailable"]
    assert len(refused) >= 2
    assert bookings(world, created.shipment_id) == []
    # When the provider is back and /retry re-runs it
    world.fault(world.kdniao, outage=False, paths=[])
    now = datetime.now(UTC)
    _, name = composition.store().begin_run(
        created.shipment_id,
        "retry",
        expected={Status.WAYBILL_FAILED},
        recovery_due=now + timedelta(minutes=15),
        now=now,
    )
    assert world.run(created.shipment_id, name=name)["status"] == "SUCCEEDED"
    # Then the pickup is booked and the return tracked
    booked = world.shipment(created.shipment_id)
    assert (booked.return_state, booked.status) == (ReturnState.PICKUP_BOOKED, Status.WAYBILL_CREATED)
    assert booked.tracking_number


def test_a_booking_whose_answer_was_lost_is_answered_again_on_the_steps_retry(world: World, queue: str) -> None:
    # Given a return whose booking step crashes once right after Kdniao booked it (the store throttled)
    created = ask(delivered(world))
    store = composition.store()
    record = store.update_return
    crashes = [StoreUnavailable("ProvisionedThroughputExceededException")]

    def once(*args: Any, **kwargs: Any) -> Shipment:
        if crashes:
            raise crashes.pop()
        return record(*args, **kwargs)

    world.monkeypatch.setattr(store, "update_return", once)
    # When the run retries the step, Kdniao answers 106 with the order it holds (idempotent success)
    assert world.run(created.shipment_id)["status"] == "SUCCEEDED"
    # Then the return is pickup_booked with that order's waybill number and tracked; Kdniao holds one order
    found = world.shipment(created.shipment_id)
    assert [c["result"] for c in bookings(world, created.shipment_id)] == ["100", "106"]
    (held,) = [o for o in world.kdniao.order_book() if o["order_id"] == created.shipment_id]
    assert (found.return_state, found.status) == (ReturnState.PICKUP_BOOKED, Status.WAYBILL_CREATED)
    assert found.tracking_number == held["tracking_number"]
    assert (found.recovery_due, found.workflow_done) == (None, True)
    assert not [e for e in world.events() if e["detail-type"] == "WaybillFailed"]
