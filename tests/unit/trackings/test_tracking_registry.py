"""Tracked numbers (parcelhub.app.trackings): register, decide the carrier, correct it.

The store is the in-memory fake with the table's conditions; the number-pattern table is the real one
(``parcelhub.domain.detection``); recognisers are not configured here (the e2e asks the sandboxes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from parcelhub.app.shipments import OrderConflict
from parcelhub.app.trackings import (
    InvalidTrackingNumber,
    TrackingPorts,
    TrackingRegistry,
    decide,
)
from parcelhub.config import HubConfig
from parcelhub.domain.detection import CarrierCandidate, detect, normalise_number
from parcelhub.domain.models import Carrier, Provider, ShipmentKind, TrackingRequest
from parcelhub.domain.status import Status
from parcelhub.ports.store import ClaimFacts
from tests.fakes.store import InMemoryShipmentStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@dataclass
class Queue:
    bodies: list[str] = field(default_factory=list)

    def send(self, bodies: Sequence[str]) -> None:
        self.bodies.extend(bodies)


def registry(store: InMemoryShipmentStore, queue: Queue, config: HubConfig | None = None) -> TrackingRegistry:
    def unconfigured(provider: Provider) -> object:
        raise LookupError(f"{provider} is not configured for this test")

    return TrackingRegistry(
        TrackingPorts(
            shipments=store,
            tracking=store,
            waybill_requests=lambda: queue,
            config=lambda: config or HubConfig(),
            plugin=unconfigured,  # type: ignore[arg-type]
            links=lambda: None,
            detect=detect,
            normalise=normalise_number,
        )
    )


def cand(carrier: Carrier, *, certain: bool = False) -> CarrierCandidate:
    return CarrierCandidate(carrier=carrier, score=0.9 if certain else 0.4, certain=certain, pattern="t")


@pytest.mark.parametrize(
    ("candidates", "recognised", "expected"),
    [
        ([cand(Carrier.SF, certain=True)], [Carrier.ZTO], (Carrier.SF, "pattern")),  # a certain format decides
        ([cand(Carrier.ZTO), cand(Carrier.YD)], [Carrier.YD], (Carrier.YD, "aggregator")),
        # the aggregator's first carrier that is also a format candidate
        ([cand(Carrier.ZTO), cand(Carrier.YD)], [Carrier.HTKY, Carrier.YD], (Carrier.YD, "aggregator")),
        # the aggregator knows better than the table: its first carrier even outside the candidates
        ([cand(Carrier.ZTO)], [Carrier.STO], (Carrier.STO, "aggregator")),
        ([cand(Carrier.ZTO), cand(Carrier.YD)], [], (Carrier.ZTO, "pattern_unconfirmed")),
        ([], [], (None, "unknown")),
    ],
)
def test_the_carrier_is_decided_by_format_then_recogniser_then_best_guess(
    candidates: list[CarrierCandidate], recognised: list[Carrier], expected: tuple[Carrier | None, str]
) -> None:
    assert decide(candidates, recognised, Provider.KUAIDI100 if recognised else None) == expected


def test_a_number_is_registered_once_and_queued_for_the_workflow() -> None:
    # Given a marketplace parcel's SF number, with spaces as a customer types it
    store, queue = InMemoryShipmentStore(), Queue()
    request = TrackingRequest(tracking_number="SF 1234 5678 9012 3", receiver_phone="138****0000")
    # When it is registered twice
    first = registry(store, queue).register(request, now=NOW)
    again = registry(store, queue).register(request, now=NOW)
    # Then one tracking shipment, PENDING, carrier decided by its format, queued each time it is still pending
    assert first.created is True
    assert again.created is False
    assert again.shipment.shipment_id == first.shipment.shipment_id
    stored = store.get(first.shipment.shipment_id)
    assert stored.kind is ShipmentKind.TRACKING
    assert stored.status is Status.PENDING
    assert stored.tracking_number == "SF1234567890123"
    assert stored.detection is not None
    assert stored.detection.method == "pattern"
    assert stored.detection.candidates[0] is Carrier.SF
    assert stored.receiver_masked == {"phone": "*******0000"}
    assert [json.loads(b)["shipment_id"] for b in queue.bodies] == [stored.shipment_id] * 2
    assert stored.recovery_due is not None  # the recovery sweep re-drives it if its run is lost


def test_the_same_order_id_for_another_number_is_a_conflict() -> None:
    store, queue = InMemoryShipmentStore(), Queue()
    registry(store, queue).register(TrackingRequest(tracking_number="SF1234567890123", order_id="TM-1"), now=NOW)
    with pytest.raises(OrderConflict):
        registry(store, queue).register(TrackingRequest(tracking_number="YT7512345678901", order_id="TM-1"), now=NOW)


@pytest.mark.parametrize(("text", "field"), [("SF12#45", "tracking_number"), ("   ", "tracking_number")])
def test_a_malformed_number_is_refused_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(InvalidTrackingNumber) as refused:
        registry(InMemoryShipmentStore(), Queue()).detect(text)
    assert refused.value.field == field


def test_resolve_answers_the_given_carrier_through_its_tracking_provider() -> None:
    # Given a number registered with its carrier, and JD tracked through Kdniao by configuration
    store, queue = InMemoryShipmentStore(), Queue()
    config = HubConfig.model_validate({"trackings": {"provider_for": {"JD": "kdniao"}}})
    shipment = (
        registry(store, queue, config)
        .register(TrackingRequest(tracking_number="JDVA00012345678", carrier=Carrier.JD), now=NOW)
        .shipment
    )
    # When the workflow resolves it
    result = registry(store, queue, config).resolve(shipment.shipment_id)
    # Then it is a registered number (no carrier order), JD through Kdniao
    assert (result.carrier, result.provider, result.registered) == (Carrier.JD, Provider.KDNIAO, True)
    assert result.tracking_number == "JDVA00012345678"


def test_a_guessed_carrier_is_corrected_when_the_provider_reports_another() -> None:
    # Given a tracked number registered under a guessed ZTO, with its waybill and claim recorded
    store, queue = InMemoryShipmentStore(), Queue()
    reg = registry(store, queue)
    shipment = reg.register(TrackingRequest(tracking_number="75012345678901", carrier=Carrier.ZTO), now=NOW).shipment
    waybill = reg.resolve(shipment.shipment_id).waybill()
    store.save_waybill(shipment.shipment_id, waybill, [], NOW)
    store.claim_tracking("ZTO", waybill.tracking_number, shipment.shipment_id, shipment.order_id,
                         facts=ClaimFacts.of(store.get(shipment.shipment_id)))  # fmt: skip
    # When Kuaidi100's push says the number is STO's
    claim = reg.correct(waybill.tracking_number, Carrier.ZTO, Carrier.STO)
    # Then the shipment claims it under STO too, names STO, and records the correction
    assert claim is not None
    assert claim.shipment_id == shipment.shipment_id
    corrected = store.get(shipment.shipment_id)
    assert corrected.carrier is Carrier.STO
    assert corrected.waybill is not None
    assert corrected.waybill.carrier is Carrier.STO
    assert corrected.detection is not None
    assert (corrected.detection.method, corrected.detection.corrected_from) == ("corrected", Carrier.ZTO)
    # and correcting again is a no-op answering the same claim
    assert reg.correct(waybill.tracking_number, Carrier.ZTO, Carrier.STO) == claim


def test_an_orders_waybill_is_never_corrected() -> None:
    # Given an order's waybill (parcelhub issued it: its carrier is certain)
    from tests.unit.trackings.shipments import delivered_shipment

    store = InMemoryShipmentStore()
    order = delivered_shipment(status=Status.IN_TRANSIT)
    store.create(order)
    store.claim_tracking("ZTO", "73100000000001", order.shipment_id, order.order_id)
    # When a push names another company / Then nothing changes
    assert registry(store, Queue()).correct("73100000000001", Carrier.ZTO, Carrier.STO) is None
    assert store.get(order.shipment_id).carrier is Carrier.ZTO
    assert store.find_by_tracking("STO", "73100000000001") is None


def test_a_number_no_format_matches_is_registered_for_the_recognisers_to_decide() -> None:
    # Given a number the pattern table knows nothing of (an aggregator may still know it)
    store, queue = InMemoryShipmentStore(), Queue()
    # When it is registered / Then it is stored and queued, its detection unknown; resolving it without a
    # recogniser that knows it refuses it (the run fails with its alert), never guesses
    accepted = registry(store, queue).register(TrackingRequest(tracking_number="0000"), now=NOW)
    assert accepted.created is True
    assert accepted.shipment.detection is not None
    assert (accepted.shipment.detection.method, accepted.shipment.detection.candidates) == ("unknown", [])
    from parcelhub.carriers.base import CarrierRejected

    with pytest.raises(CarrierRejected) as refused:
        registry(store, queue).resolve(accepted.shipment.shipment_id)
    assert refused.value.code == "UNDETECTABLE"
