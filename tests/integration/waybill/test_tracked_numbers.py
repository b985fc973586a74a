"""A tracked number through the real waybill workflow (the ASL on moto's Step Functions, the real task
handler, the Kdniao sandbox): registered, not issued - the carrier confirmed by Kdniao's 2002 recognition,
claimed, subscribed, announced as TrackingRegistered; no carrier order, no create call."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import boto3
import pytest
import requests

from parcelhub import composition
from parcelhub.domain.detection import detect
from parcelhub.domain.models import Carrier, Provider, ShipmentKind, TrackingRequest
from parcelhub.domain.status import Status
from sandbox.numbers import published_numbers

from .conftest import CREATES, REGION, World

pytestmark = pytest.mark.integration


def ambiguous(truth: str = "YD") -> str:
    """An all-digit number of ``truth`` whose best format candidate is another carrier."""
    rng = random.Random(7)
    for number in published_numbers(truth, 60, rng):
        ranked = [c.carrier.value for c in detect(number)]
        if number.isdigit() and ranked and ranked[0] != truth and truth in ranked:
            return number
    pytest.fail(f"no {truth} number whose best format candidate is another carrier")


def test_a_tracked_number_is_registered_through_the_workflow_without_a_carrier_order(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Kdniao tracks and recognises numbers, and a Yunda parcel its format alone would call another carrier's
    world.configure({"trackings": {"default_provider": "kdniao", "recognisers": ["kdniao"]}})
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="waybill-requests")["QueueUrl"]
    monkeypatch.setenv("WAYBILL_QUEUE_URL", queue)
    composition.reset()
    number = ambiguous()
    truth = {"carrier": "YD", "tracking_number": number}
    requests.post(f"{world.kdniao.url}/_sandbox/parcels", json=truth, timeout=5).raise_for_status()
    accepted = composition.tracking_registry().register(TrackingRequest(tracking_number=number), now=datetime.now(UTC))
    shipment_id = accepted.shipment.shipment_id
    assert accepted.shipment.detection is not None
    assert accepted.shipment.detection.method == "pattern_unconfirmed"
    # When the workflow runs it, twice (a redelivered request)
    first = world.run(shipment_id)
    second = world.run(shipment_id, name=f"{shipment_id}-again")
    # Then both succeed; the carrier is Kdniao's answer, the number is claimed and subscribed, no order placed
    assert (first["status"], second["status"]) == ("SUCCEEDED", "SUCCEEDED"), (first, second)
    stored = world.shipment(shipment_id)
    assert (stored.kind, stored.status) == (ShipmentKind.TRACKING, Status.WAYBILL_CREATED)
    assert (stored.carrier, stored.provider, stored.tracking_number) == (Carrier.YD, Provider.KDNIAO, number)
    assert stored.detection is not None
    assert (stored.detection.method, stored.detection.confirmed_by) == ("aggregator", Provider.KDNIAO)
    assert stored.carrier_orders == {}
    assert stored.waybill_attempts == []
    claim = composition.store().find_by_tracking("YD", number)
    assert claim is not None
    assert claim.shipment_id == shipment_id
    with world.kdniao.lock:
        log = [dict(entry) for entry in world.kdniao.request_log]
        parcel = world.kdniao.parcels[number]
    assert parcel.subscribed
    assert not [e for e in log if {e["operation"], e.get("request_type")} & CREATES]
    assert any(e.get("request_type") == "2002" or e["operation"] == "recognise" for e in log), log
    # and it is announced once as a registered number, never as a waybill created
    published = [e for e in world.events() if e["detail"].get("shipment_id") == shipment_id]
    kinds = [e["detail-type"] for e in published]
    assert kinds.count("TrackingRegistered") == 1, kinds
    assert "WaybillCreated" not in kinds
    registered = next(e["detail"] for e in published if e["detail-type"] == "TrackingRegistered")
    assert (registered["carrier"], registered["detection"], registered["confirmed_by"]) == (
        "YD",
        "aggregator",
        "kdniao",
    )
    assert (registered["tracking_number"], registered["order_id"]) == (number, f"track-{number}")
