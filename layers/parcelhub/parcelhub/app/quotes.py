"""Quotes and the ``smart`` carrier choice: every candidate the rules allow, priced, estimated and judged.

One read of the lane history for all candidates (``LaneHistory.lane_stats``: one ``BatchGetItem`` of every
candidate carrier's city, province and national cells; with capacity planning on, the same request also
reads each candidate's intake today and balance, ``CapacityLedger.lanes_and_standing``) and one circuit
read per distinct provider; the
price comes from the configured tariffs and the window from the lane estimate at creation
(``domain.estimate``, the pickup cutoff applied), then ``domain.smart`` ranks and chooses. Nothing is
stored here: ``POST /v1/quotes`` answers with the ranking, the waybill workflow stores it on the shipment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from parcelhub.config import HubConfig
from parcelhub.domain.capacity import Standing, blocked, limits_for
from parcelhub.domain.delivery_clock import local_day
from parcelhub.domain.estimate import EstimateRequest, estimate
from parcelhub.domain.lanes import Lane, Milestone
from parcelhub.domain.models import (
    Carrier,
    CustomerTier,
    Money,
    Parcel,
    Party,
    Provider,
    ServiceLevel,
    Shipment,
    ShipmentRequest,
)
from parcelhub.domain.selection import POLICY_CURRENCY, SelectionRequest, allowed_candidates
from parcelhub.domain.smart import Offer, SmartChoice, choose, lane_record, promise_for
from parcelhub.domain.tariff import price
from parcelhub.ports.analytics import LaneHistory
from parcelhub.ports.capacity import CapacityLedger


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What a quote looks at: routing and commercial facts, no personal data."""

    customer_tier: CustomerTier
    service: ServiceLevel
    declared_value: Money
    parcels: Sequence[Parcel]
    lane: Lane
    created_at: datetime
    pinned_carrier: Carrier | None = None

    @classmethod
    def of_shipment(cls, shipment: Shipment) -> OrderFacts:
        lane = Lane(
            shipment.origin_province, shipment.origin_city, shipment.destination_province, shipment.destination_city
        )
        return cls(shipment.customer_tier, shipment.service, shipment.declared_value, shipment.parcels, lane,
                   shipment.created_at, shipment.pinned_carrier)  # fmt: skip

    @classmethod
    def of_request(cls, request: ShipmentRequest, warehouse: Party, now: datetime) -> OrderFacts:
        sender = request.sender or warehouse
        lane = Lane(sender.province, sender.city, request.receiver.province, request.receiver.city)
        return cls(request.customer_tier, request.service, request.declared_value, request.parcels, lane, now,
                   request.carrier)  # fmt: skip


class NoCandidate(LookupError):
    """No carrier the rules allow serves the order (every one excluded, or pinned to one no provider issues)."""


def _declared_fen(value: Money) -> int:
    # insurance is priced on a CNY value only (no FX rates here)
    return int((value.amount * 100).to_integral_value()) if value.currency == POLICY_CURRENCY else 0


class Quoter:
    """Ranks the candidates for an order (cheap to build; the ports are handed in)."""

    def __init__(
        self,
        lanes: LaneHistory,
        config: Callable[[], HubConfig],
        *,
        circuit_open: Callable[[Provider], bool],
        issuers: Callable[[], Mapping[Provider, frozenset[Carrier]] | None] = lambda: None,
        capacity: CapacityLedger | None = None,
    ) -> None:
        self.lanes = lanes
        self.config = config
        self.circuit_open = circuit_open
        self.issuers = issuers
        self.capacity = capacity

    def quote(self, order: OrderFacts, now: datetime, *, every_circuit: bool = True) -> SmartChoice:
        """The ranking. ``every_circuit``: read every candidate provider's circuit (a quote shows them all);
        else only the chosen one's, choosing again while it is open (the workflow: usually one read).
        ``StoreError`` when the lane history or a circuit cannot be read; ``NoCandidate``."""
        config = self.config()
        policy = config.selection
        candidates = allowed_candidates(
            policy,
            SelectionRequest(
                customer_tier=order.customer_tier,
                declared_value=order.declared_value,
                destination_province=order.lane.destination_province,
                service=order.service,
                pinned_carrier=order.pinned_carrier,
            ),
            issuers=self.issuers(),
        ).candidates
        if not candidates:
            raise NoCandidate(f"no carrier candidate for {order.lane.destination_province}")
        carriers = list(dict.fromkeys(c.carrier.value for c in candidates))
        standing: Mapping[str, Standing] = {}
        if config.capacity.enabled and self.capacity is not None:
            stats, standing = self.capacity.lanes_and_standing(
                carriers, order.service.value, order.lane, local_day(now)
            )
        else:
            stats = self.lanes.lane_stats(carriers, order.service.value, order.lane)
        settings = config.estimates.settings()
        offers = []
        for candidate in candidates:
            tariff = config.tariffs.tariff(candidate.carrier, order.service)
            price_fen = None
            if tariff is not None:
                price_fen = price(
                    tariff,
                    order.parcels,
                    origin_province=order.lane.origin_province,
                    destination_province=order.lane.destination_province,
                    declared_fen=_declared_fen(order.declared_value),
                ).total_fen
            request = EstimateRequest(candidate.carrier.value, Milestone.CREATED, order.created_at, as_of=now)
            offers.append(
                Offer(
                    candidate=candidate,
                    service=order.service,
                    price_fen=price_fen,
                    window=estimate(request, stats, settings),
                    lane=lane_record(stats, candidate.carrier.value, policy.smart.lane.min_deliveries),
                    capacity=blocked(
                        limits_for(config.capacity, candidate.carrier.value),
                        standing.get(candidate.carrier.value, Standing()),
                    ),
                )
            )
        promise = promise_for(
            policy.smart, order.customer_tier, order.lane.origin_province, order.lane.destination_province,
            order.created_at,
        )  # fmt: skip
        providers = list(dict.fromkeys(c.provider for c in candidates))
        known = {p: self.circuit_open(p) for p in providers} if every_circuit else {}
        while True:
            judged = [replace(o, circuit_open=known.get(o.candidate.provider, False)) for o in offers]
            choice = choose(judged, promise, policy.smart)
            if choice.record.provider in known:
                return choice
            known[choice.record.provider] = self.circuit_open(choice.record.provider)
