"""Tracking numbers parcelhub did not ship (issue 19 item 1): marketplace orders, a 3PL's parcels,
customer-sent returns arrive as a bare number.

``POST /v1/trackings`` (:meth:`TrackingRegistry.register`) stores a shipment of kind ``tracking`` -
PENDING, with the number's pattern candidates - and queues it like an order. The waybill workflow takes it
from there on its own branch (``infra/statemachines/waybill.asl.json``: ``SelectCarriers`` answers a plan
marked ``tracking_only``, which ``HaveCandidate`` sends to ``RegisterTracking``, i.e.
:meth:`TrackingRegistry.resolve`; orders pay no extra transition for it), then the states every shipment
goes through: ``RecordWaybill`` (the tracking claim, the no-first-scan stall deadline,
pushes parked before it), ``SubscribeTracking`` (the poller when that fails), and the announcement. So a
tracked number has the same guarantees as an order: retried with jitter, re-driven by the recovery sweep
when a run is lost, failed with an ops alert when nothing can track it.

The carrier, when the caller does not give it:

1. the number-pattern table (:mod:`parcelhub.domain.detection`) ranks candidates; a letter-prefixed
   format is near-certain and decides;
2. an all-digit number is ambiguous: the configured recognisers (Kuaidi100 autonumber, Kdniao 2002) are
   asked in order; the first answer decides (its first carrier that is also a pattern candidate, else its
   first);
3. nobody could confirm: the best pattern candidate, subscribed with the provider's own company check
   (Kuaidi100 ``autoCom``) so that a wrong guess is corrected by the first push (the ingest moves the
   claim; see :meth:`TrackingRegistry.correct`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from parcelhub.app.shipments import Accepted, OrderConflict, new_shipment_id
from parcelhub.carriers.base import Capability, CarrierError
from parcelhub.domain.models import (
    Carrier,
    CarrierDetection,
    Money,
    Provider,
    Shipment,
    ShipmentKind,
    TrackingRequest,
)
from parcelhub.domain.status import Status
from parcelhub.observability import add_metric, logger
from parcelhub.ports.errors import OrderAlreadyExists

if TYPE_CHECKING:
    from parcelhub.app.waybill_payloads import WaybillResult
    from parcelhub.carriers.base import ProviderPlugin
    from parcelhub.config import HubConfig
    from parcelhub.domain.detection import CarrierCandidate
    from parcelhub.ports.messaging import MessageSink
    from parcelhub.ports.store import Shipments, TrackingClaim, TrackingClaims
    from parcelhub.security.links import TrackingLinks


class InvalidTrackingNumber(ValueError):
    """The text cannot be a tracking number (``field`` names the input)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Detection:
    """What is known of a number's carrier: the pattern candidates, a recogniser's answer, the decision."""

    number: str
    candidates: Sequence[CarrierCandidate]
    carrier: Carrier | None
    method: str
    recognised: Sequence[Carrier] = ()
    recognised_by: Provider | None = None
    #: recognisers asked that could not answer (provider -> error), for the view and the logs
    unavailable: dict[str, str] = field(default_factory=dict)

    def record(self) -> CarrierDetection:
        return CarrierDetection.model_validate(
            {
                "method": self.method,
                "candidates": [c.carrier for c in self.candidates],
                "confirmed_by": self.recognised_by if self.method == "aggregator" else None,
            }
        )


def decide(
    candidates: Sequence[CarrierCandidate], recognised: Sequence[Carrier], recognised_by: Provider | None
) -> tuple[Carrier | None, str]:
    """The carrier and how it was decided (pure: the module docstring's three steps)."""
    if candidates and candidates[0].certain:
        return candidates[0].carrier, "pattern"
    if recognised:
        matching = {c.carrier for c in candidates}
        return next((c for c in recognised if c in matching), recognised[0]), "aggregator"
    if candidates:
        return candidates[0].carrier, "pattern_unconfirmed"
    return None, "unknown"


@dataclass(frozen=True)
class TrackingPorts:
    shipments: Shipments
    tracking: TrackingClaims
    #: the waybill-requests queue (only the API sends to it: built on first use)
    waybill_requests: Callable[[], MessageSink]
    config: Callable[[], HubConfig]
    #: the provider's plugin with its API credentials (recognition)
    plugin: Callable[[Provider], ProviderPlugin]
    links: Callable[[], TrackingLinks | None]
    #: the number-pattern table's ranking (``parcelhub.domain.detection.detect``)
    detect: Callable[[str], list[CarrierCandidate]]
    normalise: Callable[[str], str]


class TrackingRegistry:
    """Register, detect, resolve and correct tracked numbers."""

    def __init__(self, ports: TrackingPorts) -> None:
        self.ports = ports

    # ------------------------------------------------------------------------------------------ detect

    def normalise(self, text: str, field: str = "tracking_number") -> str:
        try:
            return self.ports.normalise(text)
        except ValueError as invalid:
            raise InvalidTrackingNumber(field, str(invalid)) from None

    def detect(self, text: str, *, confirm: bool = True, field: str = "tracking_number") -> Detection:
        """Rank the number's carriers; ``confirm``: ask the recognisers when the format is ambiguous."""
        number = self.normalise(text, field)
        candidates = self.ports.detect(number)
        if not confirm or (candidates and candidates[0].certain):
            carrier, method = decide(candidates, (), None)
            return Detection(number, candidates, carrier, method)
        recognised: list[Carrier] = []
        by: Provider | None = None
        unavailable: dict[str, str] = {}
        for provider in self.ports.config().trackings.recognisers:
            try:
                plugin = self.ports.plugin(provider)
            except (LookupError, ValueError):
                continue  # not configured for this function
            if Capability.RECOGNISE_NUMBERS not in plugin.capabilities:
                continue
            try:
                recognised = list(plugin.recognise_number(number))
            except CarrierError as failure:
                unavailable[provider.value] = f"{type(failure).__name__}: {failure.message}"[:200]
                add_metric("NumberRecognitionFailed", provider=provider.value, error=type(failure).__name__)
                continue
            by = provider
            add_metric("NumberRecognised", provider=provider.value, known="yes" if recognised else "no")
            if recognised:
                break
        carrier, method = decide(candidates, recognised, by if recognised else None)
        return Detection(number, candidates, carrier, method, recognised, by if recognised else None, unavailable)

    # ---------------------------------------------------------------------------------------- register

    def register(self, request: TrackingRequest, *, now: datetime) -> Accepted:
        """Store the tracked number as a PENDING shipment of kind ``tracking`` and queue it. The same
        number (or order id) with the same body returns the first shipment (queued again while PENDING);
        a different body is an :class:`OrderConflict`. Only the pattern table runs here (no I/O): the
        workflow confirms an ambiguous carrier."""
        number = self.normalise(request.tracking_number)
        if request.carrier is not None:
            detection = CarrierDetection(method="given", candidates=[request.carrier])
        else:  # no format matching is no refusal: the workflow still asks the recognisers
            detection = self.detect(number, confirm=False).record()
        shipment = self._shipment(request, number, detection, now)
        try:
            self.ports.shipments.create(shipment)
        except OrderAlreadyExists as taken:
            if taken.shipment_id == shipment.shipment_id:
                return self._accepted(shipment)
            if taken.fingerprint != shipment.request_fingerprint:
                raise OrderConflict(shipment.order_id, taken.shipment_id) from None
            existing = self.ports.shipments.get(taken.shipment_id)
            if existing.status is Status.PENDING:
                self._enqueue(existing.shipment_id)
            return Accepted(existing, created=False)
        return self._accepted(shipment)

    def _shipment(self, request: TrackingRequest, number: str, detection: CarrierDetection, now: datetime) -> Shipment:
        config = self.ports.config()
        shipment_id = new_shipment_id(now)
        phone = request.receiver_phone
        last4 = phone[-4:] if phone else None
        links = self.ports.links()
        return Shipment(
            shipment_id=shipment_id,
            order_id=request.order_id or f"track-{number}",
            kind=ShipmentKind.TRACKING,
            detection=detection,
            pinned_carrier=request.carrier,
            declared_value=Money(amount=0),
            parcels=[],
            items=[],
            # a masked phone stays masked; a whole one is masked here (only the last four digits are kept)
            receiver_masked={"phone": f"*******{last4}"} if last4 else {},
            # where a tracked parcel goes is not known: lanes, facts and estimates by lane leave it out
            origin_province="",
            origin_city="",
            destination_province="",
            destination_city="",
            tracking_number=number,
            request_fingerprint=request.fingerprint(number),
            lookup_digest=links.lookup_digest(shipment_id, last4) if links is not None and last4 else None,
            created_at=now,
            updated_at=now,
            recovery_due=now + timedelta(seconds=config.recovery.pending_limit_seconds),
        )

    def _accepted(self, shipment: Shipment) -> Accepted:
        self._enqueue(shipment.shipment_id)
        add_metric("TrackingRegistered", method=shipment.detection.method if shipment.detection else "given")
        return Accepted(shipment, created=True)

    def _enqueue(self, shipment_id: str) -> None:
        self.ports.waybill_requests().send([json.dumps({"shipment_id": shipment_id})])

    # ----------------------------------------------------------------------------------------- resolve

    def resolve(self, shipment_id: str) -> WaybillResult:
        """The workflow's ``RegisterTracking`` step: decide the carrier (asking the recognisers when the
        format is ambiguous) and answer the 'waybill' the next states record and subscribe. Idempotent: a
        re-run after the waybill was recorded answers it again."""
        from parcelhub.app.waybill_payloads import WaybillResult

        shipment = self.ports.shipments.get(shipment_id)
        if shipment.waybill is not None:
            return WaybillResult.of(shipment.waybill, registered=True)
        number = shipment.tracking_number or ""
        record = shipment.detection or CarrierDetection(method="given")
        if record.method == "given" and shipment.pinned_carrier is not None:
            carrier: Carrier | None = shipment.pinned_carrier
        else:
            found = self.detect(number)
            carrier, record = found.carrier, found.record()
            logger().info(
                "tracked number's carrier decided",
                extra={"method": found.method, "carrier": str(carrier), "recognised_by": str(found.recognised_by),
                       "unavailable": found.unavailable},
            )  # fmt: skip
        if carrier is None:
            from parcelhub.carriers.base import CarrierRejected

            raise CarrierRejected("parcelhub", f"no carrier found for tracking number {number}", "UNDETECTABLE")
        self.ports.shipments.set_detection(shipment_id, record)
        provider = self.ports.config().trackings.provider(carrier)
        return WaybillResult(provider=provider, carrier=carrier, tracking_number=number, registered=True)

    def auto_detect(self, shipment: Shipment) -> bool:
        """Subscribe with the provider's own company check: the carrier was not confirmed."""
        record = shipment.detection
        return (
            shipment.kind is ShipmentKind.TRACKING
            and record is not None
            and record.method == "pattern_unconfirmed"
            and self.ports.config().trackings.auto_detect_unconfirmed
        )

    # ----------------------------------------------------------------------------------------- correct

    def correct(self, number: str, old: Carrier | None, new: Carrier) -> TrackingClaim | None:
        """A provider's push says the number belongs to ``new`` (Kuaidi100 ``autoCheck``): the tracked
        shipment that claimed it under ``old`` now claims it under ``new`` too and records the correction.
        Answers the new claim; ``None`` when there is nothing to correct (no claim under ``old``, or the
        claim is an order's: parcelhub issued that waybill, its carrier is certain)."""
        tracking = self.ports.tracking
        existing = tracking.find_by_tracking(new.value, number)
        if existing is not None or old is None:
            return existing
        claim = tracking.find_by_tracking(old.value, number)
        if claim is None:
            return None
        shipment = self.ports.shipments.get(claim.shipment_id)
        if shipment.kind is not ShipmentKind.TRACKING:
            add_metric("CarrierCorrectionIgnored", carrier=new.value)
            return None
        tracking.claim_tracking(new.value, number, claim.shipment_id, claim.order_id, facts=claim.facts)
        previous = shipment.detection or CarrierDetection(method="given")
        corrected = previous.model_copy(update={"method": "corrected", "corrected_from": old})
        self.ports.shipments.set_detection(claim.shipment_id, corrected, carrier=new)
        add_metric("CarrierCorrected", old=old.value, new=new.value)
        logger().info("tracked number's carrier corrected", extra={"old": old.value, "new": new.value})
        return tracking.find_by_tracking(new.value, number)
