"""An in-memory fake of every store port (:class:`~parcelhub.ports.store.ShipmentStore`) for unit tests of logic.

It honours the same conditions as the DynamoDB adapter (the same contract suite runs against both):
unique order ids, waybill idempotency, the precedence-key condition of ``apply_tracking_state``,
``expected`` statuses, first-alert-per-episode, optimistic locking of carrier health, exclusive take of
parked pushes. One lock makes every method atomic, like a single conditional write.
``item_writes`` counts item writes the way DynamoDB bills them (a batch of n puts = n writes).
``changes`` is the table's stream as the outbox relay reads it: one :class:`~parcelhub.ports.changes.Change`
per write that changed a shipment or a carrier-health item (``parcelhub.app.outbox.derive`` turns them
into the events the relay would publish).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.domain.lanes import Lane, LaneLevel, LaneStats, lane_key
from parcelhub.domain.models import (
    Carrier,
    CarrierDetection,
    CarrierOrder,
    DeliveryReceipt,
    DeliveryWindow,
    OrderState,
    PickupBooking,
    ProofOfDelivery,
    SelectionRecord,
    Shipment,
    TrackingEvent,
    Waybill,
    WaybillAttempt,
    first_of_each_hash,
)
from parcelhub.domain.returns import ReturnState
from parcelhub.domain.status import Status, SubStatus, TrackingState, is_terminal, precedence_key
from parcelhub.ports.changes import TRACKING, WORKFLOW, Change, HealthImage, ShipmentImage
from parcelhub.ports.errors import (
    LeaseHeld,
    OrderAlreadyExists,
    OrderInFlight,
    ShipmentAlreadyExists,
    ShipmentNotFound,
    StatusConflict,
    TrackingClaimConflict,
    WaybillAlreadyRecorded,
)
from parcelhub.ports.returns import ReturnStateConflict
from parcelhub.ports.store import (
    DEFAULT_SHARDS,
    ClaimFacts,
    DuePoll,
    DueRecovery,
    DueStall,
    Lease,
    OrderLookup,
    ParkedPush,
    QueryStats,
    StallMark,
    StatusChange,
    TrackingClaim,
)


@dataclass(slots=True)
class _Row:
    """A shipment plus the index attributes that are not fields of the model."""

    shipment: Shipment
    stall: StallMark | None = None
    poll_due: datetime | None = None
    alerted_episode: str | None = None
    alerted_at: datetime | None = None
    alerted_due: datetime | None = None
    status_source: str | None = None
    last_event_location: str | None = None
    last_event_provider: str | None = None

    def image(self) -> ShipmentImage:
        return ShipmentImage(
            shipment=self.shipment,
            status_source=self.status_source,
            last_event_location=self.last_event_location,
            last_event_provider=self.last_event_provider,
            stall_rule=self.stall.rule if self.stall else None,
            stall_episode=self.stall.episode if self.stall else None,
            alerted_episode=self.alerted_episode,
            alerted_at=self.alerted_at,
            alerted_due=self.alerted_due,
        )


@dataclass(slots=True)
class _Claim:
    shipment_id: str
    order_id: str
    known: set[str] = field(default_factory=set)
    facts: ClaimFacts | None = None
    parked: bool = False


def _stored(shipment: Shipment) -> Shipment:
    """The shipment as the table would give it back (same item shape: label dropped, UTC stamps …)."""
    return ser.shipment_from_item(ser.shipment_to_item(shipment))


class InMemoryShipmentStore:
    """The fake. Not for production: no persistence, one process."""

    def __init__(self, shards: int = DEFAULT_SHARDS) -> None:
        self.shards = shards
        self.item_writes = 0
        #: requests that recorded scan hashes: alone (``record_events``) and with their state (one write)
        self.hash_records = 0
        self.one_writes = 0
        self._lock = threading.RLock()
        self._rows: dict[str, _Row] = {}
        self._orders: dict[str, tuple[str, str]] = {}
        self._claims: dict[tuple[str, str], _Claim] = {}
        self._events: dict[str, dict[str, TrackingEvent]] = {}
        self._parked: dict[tuple[str, str], dict[str, ParkedPush]] = {}
        self._health: dict[str, tuple[dict[str, Any], int]] = {}
        self._leases: dict[str, Lease] = {}
        self._attempts: dict[tuple[str, int], int] = {}
        #: all-time lane cells: (carrier, service, level, lane key) -> statistics
        self.lane_cells: dict[tuple[str, str, LaneLevel, str], LaneStats] = {}
        self.lane_reads = 0
        #: requests that read tracking claims (GetItem / BatchGetItem) and BatchWriteItems of event items
        self.claim_reads = 0
        self.event_batches = 0
        self.parked_queries = 0
        self.changes: list[Change] = []

    def _record(self, old: ShipmentImage | HealthImage | None, new: ShipmentImage | HealthImage | None) -> None:
        if old != new:
            self.changes.append(Change(record_id=str(len(self.changes) + 1), old=old, new=new))

    @contextlib.contextmanager
    def _changing(self, shipment_id: str) -> Iterator[None]:
        """Record the shipment's change (the stream record) when the block changed it."""
        row = self._rows.get(shipment_id)
        before = row.image() if row is not None else None
        yield
        row = self._rows.get(shipment_id)
        self._record(before, row.image() if row is not None else None)

    def _row(self, shipment_id: str) -> _Row:
        row = self._rows.get(shipment_id)
        if row is None:
            raise ShipmentNotFound(shipment_id)
        return row

    def _write(self, row: _Row, **changes: Any) -> Shipment:
        row.shipment = _stored(row.shipment.model_copy(update=changes))
        self.item_writes += 1
        return row.shipment

    # -------------------------------------------------------------------------------------- shipments

    def create(self, shipment: Shipment) -> None:
        with self._lock:
            if shipment.order_id in self._orders:
                existing_id, fingerprint = self._orders[shipment.order_id]
                raise OrderAlreadyExists(shipment.order_id, existing_id, fingerprint)
            if shipment.shipment_id in self._rows:
                raise ShipmentAlreadyExists(shipment.shipment_id)
            self._rows[shipment.shipment_id] = _Row(_stored(shipment))
            self._record(None, self._rows[shipment.shipment_id].image())
            self._orders[shipment.order_id] = (shipment.shipment_id, shipment.request_fingerprint)
            self.item_writes += 2

    def get(self, shipment_id: str) -> Shipment:
        with self._lock:
            return self._row(shipment_id).shipment

    def get_by_order(self, order_id: str) -> Shipment:
        with self._lock:
            if order_id not in self._orders:
                raise ShipmentNotFound(f"order {order_id}")
            return self.get(self._orders[order_id][0])

    def save_waybill(
        self,
        shipment_id: str,
        waybill: Waybill,
        attempts: list[WaybillAttempt],
        now: datetime,
        *,
        order_key: str | None = None,
        estimate: DeliveryWindow | None = None,
    ) -> Shipment:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            current = row.shipment
            if current.waybill is not None:
                if (current.waybill.carrier, current.waybill.tracking_number) == (
                    waybill.carrier,
                    waybill.tracking_number,
                ):
                    return current
                raise WaybillAlreadyRecorded(shipment_id, current.waybill)
            if current.status is Status.CANCELLED:
                raise StatusConflict(shipment_id, current.status)
            changes: dict[str, Any] = {
                "waybill": waybill,
                "carrier": waybill.carrier,
                "provider": waybill.provider,
                "tracking_number": waybill.tracking_number,
                "waybill_attempts": [*current.waybill_attempts, *attempts],
                "updated_at": now,
                "version": current.version + 1,
            }
            if estimate is not None:
                changes |= {"estimated_delivery": estimate, "promised_delivery": current.promised_delivery or estimate}
            if current.status_key is None and current.status in (Status.PENDING, Status.WAYBILL_FAILED):
                changes |= {"status": Status.WAYBILL_CREATED, "sub_status": SubStatus.NONE}
                row.status_source = WORKFLOW
            if order_key is not None and order_key in current.carrier_orders:
                orders = dict(current.carrier_orders)
                orders[order_key] = orders[order_key].model_copy(update={"state": "kept"})
                changes |= {"carrier_orders": orders, "open_order": None}
            return self._write(row, **changes)

    def set_status(
        self,
        shipment_id: str,
        status: Status,
        sub_status: SubStatus = SubStatus.NONE,
        *,
        expected: set[Status] | None,
        now: datetime,
    ) -> Shipment:
        if expected is not None and not expected:
            raise ValueError("expected must be None or a non-empty set")
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            if expected is not None and row.shipment.status not in expected:
                raise StatusConflict(shipment_id, row.shipment.status)
            row.status_source = WORKFLOW
            if is_terminal(status):
                row.stall, row.poll_due = None, None
            key = precedence_key(status, now, "cancelled") if status is Status.CANCELLED else row.shipment.status_key
            return self._write(
                row,
                status=status,
                sub_status=sub_status,
                status_key=key,
                updated_at=now,
                version=row.shipment.version + 1,
            )

    def add_waybill_attempt(self, shipment_id: str, attempt: WaybillAttempt) -> None:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            self._write(
                row, waybill_attempts=[*row.shipment.waybill_attempts, attempt], version=row.shipment.version + 1
            )

    def set_selection(self, shipment_id: str, selection: SelectionRecord) -> None:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            self._write(row, selection=selection, version=row.shipment.version + 1)

    def set_detection(self, shipment_id: str, detection: CarrierDetection, *, carrier: Carrier | None = None) -> None:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            changes: dict[str, Any] = {"detection": detection, "version": row.shipment.version + 1}
            if carrier is not None:
                if row.shipment.waybill is None:
                    raise ShipmentNotFound(shipment_id)
                changes |= {"carrier": carrier, "waybill": row.shipment.waybill.model_copy(update={"carrier": carrier})}
            self._write(row, **changes)

    def set_receipt(self, shipment_id: str, receipt: DeliveryReceipt) -> bool:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            if row.shipment.receipt is not None:
                return False
            self._write(row, receipt=receipt, version=row.shipment.version + 1)
            return True

    # -------------------------------------------------------------------------------------- tracking

    def claim_tracking(
        self,
        carrier: str,
        tracking_number: str,
        shipment_id: str,
        order_id: str,
        *,
        replacing: str | None = None,
        facts: ClaimFacts | None = None,
    ) -> None:
        with self._lock:
            claim = self._claims.get((carrier, tracking_number))
            if claim is not None and claim.shipment_id not in (shipment_id, replacing):
                raise TrackingClaimConflict(carrier, tracking_number, claim.shipment_id)
            if claim is None or (replacing is not None and claim.shipment_id == replacing):
                self._claims[(carrier, tracking_number)] = _Claim(shipment_id, order_id, facts=facts)
            else:
                claim.order_id = order_id
                claim.facts = facts or claim.facts
            self.item_writes += 1

    def find_by_tracking(self, carrier: str, tracking_number: str) -> TrackingClaim | None:
        with self._lock:
            self.claim_reads += 1
            return self._claim_of(carrier, tracking_number)

    def find_claims(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], TrackingClaim]:
        with self._lock:
            self.claim_reads += math.ceil(len(set(keys)) / 100)  # one BatchGetItem per 100 keys, like the adapter
            claims = {key: self._claim_of(*key) for key in keys}
            return {key: claim for key, claim in claims.items() if claim is not None}

    def _claim_of(self, carrier: str, tracking_number: str) -> TrackingClaim | None:
        claim = self._claims.get((carrier, tracking_number))
        if claim is None:
            return None
        return TrackingClaim(
            claim.shipment_id,
            claim.order_id,
            carrier,
            tracking_number,
            frozenset(claim.known),
            claim.facts,
            claim.parked,
        )

    def flag_parked(self, carrier: str, tracking_number: str, waiting: bool) -> None:
        with self._lock:
            claim = self._claims.get((carrier, tracking_number))
            if claim is not None:
                claim.parked = waiting
                self.item_writes += 1

    def append_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        fresh = claim.unseen(events)
        if not fresh:
            return []
        self.put_events([(claim.shipment_id, e) for e in fresh])
        return self.record_events(claim, fresh)

    def put_events(self, events: Sequence[tuple[str, TrackingEvent]]) -> None:
        with self._lock:
            for shipment_id, event in events:
                self._events.setdefault(shipment_id, {})[ser.event_sk(event)] = event
            self.item_writes += len(events)
            self.event_batches += math.ceil(len(events) / 25)

    def record_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        if not events:
            return []
        with self._lock:
            stored = self._claims.get((claim.carrier, claim.tracking_number))
            if stored is None:
                raise ShipmentNotFound(f"tracking claim {claim.carrier}/{claim.tracking_number}")
            already = set(stored.known)
            stored.known |= {e.content_hash for e in events}
            self.item_writes += 1
            self.hash_records += 1
            return first_of_each_hash(events, already)

    def rewrite_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> None:
        with self._lock:
            stored = self._claims.get((claim.carrier, claim.tracking_number))
            if stored is None:
                raise ShipmentNotFound(f"tracking claim {claim.carrier}/{claim.tracking_number}")
            timeline = self._events.setdefault(claim.shipment_id, {})
            for event in events:
                timeline[ser.event_sk(event)] = event
            stored.known |= {e.content_hash for e in events}
            self.item_writes += len(events) + 1

    def apply_tracking_state(
        self,
        shipment_id: str,
        state: TrackingState,
        *,
        last_event_text: str | None,
        stall: StallMark | None,
        now: datetime,
        poll_due: datetime | None = None,
        location: str | None = None,
        provider: str | None = None,
        estimate: DeliveryWindow | None = None,
        proof: ProofOfDelivery | None = None,
    ) -> StatusChange | None:
        with self._lock:
            old = self._row(shipment_id).shipment
            if old.status_key is not None and not old.status_key < state.key:
                return None
            return self._write_state(
                shipment_id, state, last_event_text, stall, now, poll_due, location, provider, estimate, proof
            )

    def record_and_apply_state(
        self, claim: TrackingClaim, events: Sequence[TrackingEvent], state: TrackingState, **write: Any
    ) -> tuple[list[TrackingEvent], StatusChange | None] | None:
        unique = first_of_each_hash(events)
        with self._lock:
            stored = self._claims.get((claim.carrier, claim.tracking_number))
            row = self._rows.get(claim.shipment_id)
            if not unique or stored is None or row is None or any(e.content_hash in stored.known for e in unique):
                return None  # undecided: nothing written
            old = row.shipment
            if old.status_key is not None and not old.status_key < state.key:
                return self.record_events(claim, unique), None
            stored.known |= {e.content_hash for e in unique}
            self.item_writes += 1
            self.one_writes += 1
            change = self.apply_tracking_state(claim.shipment_id, state, **write)
            assert change is not None  # the same lock held: the key checked above still wins
            # as DynamoDB's transaction, the write does not return what it replaced
            return unique, dataclasses.replace(change, old_status=None, old_sub_status=None)

    def replace_tracking_state(
        self,
        shipment_id: str,
        state: TrackingState,
        *,
        expected_key: str | None,
        last_event_text: str | None,
        stall: StallMark | None,
        now: datetime,
        poll_due: datetime | None = None,
        location: str | None = None,
        provider: str | None = None,
        estimate: DeliveryWindow | None = None,
        proof: ProofOfDelivery | None = None,
    ) -> StatusChange | None:
        with self._lock:
            old = self._row(shipment_id).shipment
            if old.status_key != expected_key or old.status is Status.CANCELLED:
                return None
            return self._write_state(
                shipment_id, state, last_event_text, stall, now, poll_due, location, provider, estimate, proof
            )

    def _write_state(  # noqa: PLR0917 - the arguments of the write, as the port names them
        self,
        shipment_id: str,
        state: TrackingState,
        last_event_text: str | None,
        stall: StallMark | None,
        now: datetime,
        poll_due: datetime | None,
        location: str | None,
        provider: str | None,
        estimate: DeliveryWindow | None = None,
        proof: ProofOfDelivery | None = None,
    ) -> StatusChange:
        with self._changing(shipment_id):
            row = self._row(shipment_id)
            old = row.shipment
            row.stall = stall
            # a new winning state ends the current stall episode
            row.alerted_episode, row.alerted_at, row.alerted_due = None, None, None
            row.status_source, row.last_event_location = TRACKING, location
            row.last_event_provider = provider or row.last_event_provider
            if is_terminal(state.status):
                row.poll_due = None
            elif poll_due is not None:
                row.poll_due = poll_due
            self._write(
                row,
                status=state.status,
                sub_status=state.sub_status,
                status_key=state.key,
                last_event_at=state.occurred_at,
                last_event_text=last_event_text,
                updated_at=now,
                version=old.version + 1,
                **({"estimated_delivery": estimate} if estimate is not None else {}),
                **({"proof": proof} if proof is not None else {}),
            )
        return StatusChange(
            shipment_id=shipment_id,
            order_id=old.order_id,
            carrier=old.carrier,
            tracking_number=old.tracking_number,
            old_status=old.status,
            new_status=state.status,
            new_sub_status=state.sub_status,
            occurred_at=state.occurred_at,
            old_sub_status=old.sub_status,
        )

    def list_events(self, shipment_id: str, limit: int = 200) -> list[TrackingEvent]:
        with self._lock:
            timeline = self._events.get(shipment_id, {})
            return [timeline[sk] for sk in sorted(timeline, reverse=True)[:limit]]

    # ----------------------------------------------------------------------------------------- stalls

    def set_stall(self, shipment_id: str, mark: StallMark) -> None:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            if row.alerted_episode == mark.episode:
                return  # this episode was alerted already
            row.stall = mark
            self.item_writes += 1

    def clear_stall(self, shipment_id: str) -> None:
        with self._lock, self._changing(shipment_id):
            self._row(shipment_id).stall = None
            self.item_writes += 1

    def query_due_stalls(
        self, now: datetime, shards: int | None = None, stats: QueryStats | None = None
    ) -> Iterator[DueStall]:
        count = shards or self.shards
        due: list[tuple[int, str, DueStall]] = []
        with self._lock:
            for shipment_id, row in self._rows.items():
                if row.stall is None or row.stall.due_at > now or row.alerted_episode == row.stall.episode:
                    continue  # not in the index, not due yet, or claimed by an alert (left the index)
                shipment = row.shipment
                due.append(
                    (
                        ser.shard_of(shipment_id, self.shards),
                        ser.iso(row.stall.due_at),
                        DueStall(
                            shipment_id=shipment_id,
                            due_at=row.stall.due_at,
                            rule=row.stall.rule,
                            episode=row.stall.episode,
                            order_id=shipment.order_id,
                            status=shipment.status,
                            carrier=shipment.carrier,
                            provider=shipment.provider,
                            tracking_number=shipment.tracking_number,
                            last_event_at=shipment.last_event_at,
                            last_event_text=shipment.last_event_text,
                        ),
                    )
                )
        due.sort(key=lambda entry: (entry[0], entry[1]))
        for shard in range(count):
            found = [entry[2] for entry in due if entry[0] == shard]
            if stats is not None:
                stats.pages += 1
                stats.per_shard_pages[shard] = stats.per_shard_pages.get(shard, 0) + 1
                stats.items_read += len(found)
                stats.items_returned += len(found)
            yield from found

    def mark_stall_alerted(self, shipment_id: str, episode: str, now: datetime) -> bool:
        with self._lock:
            row = self._rows.get(shipment_id)
            if row is None or row.stall is None or row.stall.episode != episode or row.alerted_episode == episode:
                return False
            with self._changing(shipment_id):
                row.alerted_episode, row.alerted_at, row.alerted_due = episode, now, row.stall.due_at
            self.item_writes += 1
            return True

    # ------------------------------------------------------------------------------------------ polls

    def set_poll_due(self, shipment_id: str, due_at: datetime) -> None:
        with self._lock:
            self._row(shipment_id).poll_due = due_at
            self.item_writes += 1

    def clear_poll(self, shipment_id: str) -> None:
        with self._lock:
            self._row(shipment_id).poll_due = None
            self.item_writes += 1

    def query_due_polls(
        self, now: datetime, shards: int | None = None, limit: int = 100, stats: QueryStats | None = None
    ) -> list[DuePoll]:
        count = shards or self.shards
        share = max(1, math.ceil(limit / count))
        per_shard: dict[int, list[DuePoll]] = {shard: [] for shard in range(count)}
        with self._lock:
            for shipment_id, row in self._rows.items():
                shard = ser.shard_of(shipment_id, self.shards)
                if row.poll_due is None or row.poll_due > now or shard >= count:
                    continue
                s = row.shipment
                per_shard[shard].append(DuePoll(shipment_id, row.poll_due, s.carrier, s.provider, s.tracking_number))
        found: list[DuePoll] = []
        for polls in per_shard.values():
            polls.sort(key=lambda due: (ser.iso(due.due_at), due.shipment_id))
            found.extend(polls[:share])
            if stats is not None:
                stats.pages += 1
                stats.items_read += min(share, len(polls))
        for polls in per_shard.values():
            rest = polls[share:]
            take = rest[: max(0, limit - len(found))]
            found.extend(take)
            if stats is not None and take:
                stats.pages += 1
                stats.items_read += len(take)
        return found[:limit]

    # ------------------------------------------------------------------------------------ parked pushes

    def park_push(
        self, carrier: str, tracking_number: str, payload_ref: str, received_at: datetime, expires_at: datetime
    ) -> None:
        with self._lock:
            parked = self._parked.setdefault((carrier, tracking_number), {})
            parked[ser.park_sk(received_at, payload_ref)] = ParkedPush(
                carrier, tracking_number, payload_ref, received_at, expires_at.replace(microsecond=0)
            )
            self.item_writes += 1

    def take_parked(self, carrier: str, tracking_number: str, now: datetime | None = None) -> list[ParkedPush]:
        moment = ser.epoch(now or datetime.now(UTC))
        with self._lock:
            self.parked_queries += 1  # one Query, like the adapter
            parked = self._parked.pop((carrier, tracking_number), {})
            self.item_writes += len(parked)
        return [parked[sk] for sk in sorted(parked) if ser.epoch(parked[sk].expires_at) > moment]

    # ------------------------------------------------------------------------------------ carrier health

    def get_health(self, provider: str) -> tuple[dict[str, Any], int]:
        with self._lock:
            state, version = self._health.get(provider, ({}, 0))
            return copy.deepcopy(state), version

    def put_health(self, provider: str, state: dict[str, Any], expected_version: int) -> bool:
        with self._lock:
            previous, version = self._health.get(provider, ({}, 0))
            if version != expected_version:
                return False
            self._health[provider] = (copy.deepcopy(state), expected_version + 1)
            before = HealthImage(provider, copy.deepcopy(previous), version) if version else None
            self._record(before, HealthImage(provider, copy.deepcopy(state), expected_version + 1))
            self.item_writes += 1
            return True

    # ------------------------------------------------------------------------------------------ leases

    def acquire_lease(self, name: str, owner: str, *, now: datetime, seconds: float) -> Lease:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held.owner != owner and held.until > now:
                raise LeaseHeld(name, held.owner, held.until)
            lease = Lease(name=name, owner=owner, until=now + timedelta(seconds=seconds))
            self._leases[name] = lease
            self.item_writes += 1
            return lease

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held.owner == owner:
                del self._leases[name]
                self.item_writes += 1

    # ------------------------------------------------------------------------------- tracking page

    def shipment_with_timeline(self, shipment_id: str, limit: int = 200) -> tuple[Shipment, list[TrackingEvent]]:
        with self._lock:
            return self.get(shipment_id), self.list_events(shipment_id, limit)

    def find_order(self, order_id: str) -> OrderLookup | None:
        with self._lock:
            if order_id not in self._orders:
                return None
            shipment_id = self._orders[order_id][0]
            return OrderLookup(order_id, shipment_id, self._rows[shipment_id].shipment.lookup_digest)

    def count_attempt(self, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
        with self._lock:
            stamp = int(now.timestamp())
            window = (key, stamp - stamp % window_seconds)
            if self._attempts.get(window, 0) >= limit:
                return False
            self._attempts[window] = self._attempts.get(window, 0) + 1
            self.item_writes += 1
            return True

    # ---------------------------------------------------------------------------------- carrier orders

    def open_order(self, shipment_id: str, order: CarrierOrder, now: datetime) -> Shipment:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            current = row.shipment
            if current.open_order == order.key:
                return current
            if current.open_order is not None:
                raise OrderInFlight(shipment_id, current.open_order)
            wants = current.status in (Status.PENDING, Status.WAYBILL_FAILED) and current.status_key is None
            if current.waybill is not None or not wants:
                raise StatusConflict(shipment_id, current.status)
            orders = {**current.carrier_orders, order.key: order}
            return self._write(row, carrier_orders=orders, open_order=order.key, updated_at=now)

    def settle_order(
        self,
        shipment_id: str,
        key: str,
        state: OrderState,
        now: datetime,
        *,
        tracking_number: str | None = None,
        attempt: WaybillAttempt | None = None,
        cancel_attempts: int | None = None,
        recovery_due: datetime | None = None,
    ) -> None:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            current = row.shipment
            if key not in current.carrier_orders:
                raise StatusConflict(shipment_id, current.status)
            update: dict[str, Any] = {"state": state}
            if tracking_number:
                update["tracking_number"] = tracking_number
            if cancel_attempts is not None:
                update["cancel_attempts"] = cancel_attempts
            orders = {**current.carrier_orders, key: current.carrier_orders[key].model_copy(update=update)}
            changes: dict[str, Any] = {"carrier_orders": orders, "updated_at": now}
            if state != "open" and current.open_order == key:
                changes["open_order"] = None
            if attempt is not None:
                changes["waybill_attempts"] = [*current.waybill_attempts, attempt]
            if recovery_due is not None:
                changes["recovery_due"] = recovery_due
            self._write(row, **changes)

    # ---------------------------------------------------------------------------------- recovery index

    def postpone_recovery(self, shipment_id: str, due_at: datetime) -> None:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            if row.shipment.recovery_due is not None:
                self._write(row, recovery_due=due_at)

    def clear_recovery(self, shipment_id: str) -> None:
        with self._lock, self._changing(shipment_id):
            self._write(self._row(shipment_id), recovery_due=None)

    def finish_run(self, shipment_id: str, due_at: datetime | None) -> None:
        with self._lock, self._changing(shipment_id):
            self._write(self._row(shipment_id), recovery_due=due_at, workflow_done=True)

    def query_due_recoveries(self, now: datetime, limit: int = 100) -> list[DueRecovery]:
        with self._lock:
            due = [
                DueRecovery(row.shipment.shipment_id, row.shipment.recovery_due)
                for row in self._rows.values()
                if row.shipment.recovery_due is not None and row.shipment.recovery_due <= now
            ]
        return sorted(due, key=lambda d: d.due_at)[:limit]

    def begin_run(
        self,
        shipment_id: str,
        kind: str,
        *,
        expected: set[Status],
        recovery_due: datetime,
        now: datetime,
        if_due: datetime | None = None,
    ) -> tuple[Shipment, str]:
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            current = row.shipment
            if current.status not in expected or (if_due is not None and current.recovery_due != if_due):
                raise StatusConflict(shipment_id, current.status)
            changes: dict[str, Any] = {"recovery_due": recovery_due, "updated_at": now, "workflow_done": False}
            if kind == "retry":
                name = f"{shipment_id}-r{current.retries + 1}"
                changes |= {"retries": current.retries + 1, "status": Status.PENDING, "retry_execution": name}
            else:
                name = f"{shipment_id}-d{current.redrives + 1}"
                changes["redrives"] = current.redrives + 1
            return self._write(row, **changes), name

    # ------------------------------------------------------------------------------------------ lanes

    def lane_stats(self, carriers: Sequence[str], service: str, lane: Lane) -> dict[tuple[str, LaneLevel], LaneStats]:
        with self._lock:
            self.lane_reads += 1  # one BatchGetItem, like the adapter
            found = {}
            for carrier in carriers:
                for level in LaneLevel:
                    cell = self.lane_cells.get((carrier, service, level, lane_key(lane, level)))
                    if cell is not None:
                        found[(carrier, level)] = cell
            return found

    # ---------------------------------------------------------------------------------------- returns

    def create_return(self, shipment: Shipment) -> None:
        if not shipment.return_of:
            raise ValueError("a return names the shipment it returns (return_of)")
        with self._lock:
            original = self._row(shipment.return_of)
            if shipment.shipment_id in self._rows:
                raise ShipmentAlreadyExists(shipment.shipment_id)
            self._rows[shipment.shipment_id] = _Row(_stored(shipment))
            self._record(None, self._rows[shipment.shipment_id].image())
            with self._changing(shipment.return_of):
                current = original.shipment
                self._write(original, returns=[*current.returns, shipment.shipment_id], version=current.version + 1)
            self.item_writes += 1

    def update_return(
        self,
        shipment_id: str,
        state: ReturnState,
        *,
        expected: frozenset[ReturnState],
        now: datetime,
        pickup: PickupBooking | None = None,
    ) -> Shipment:
        if not expected:
            raise ValueError("expected must not be empty")
        with self._lock, self._changing(shipment_id):
            row = self._row(shipment_id)
            current = row.shipment
            if current.return_state not in expected:
                raise ReturnStateConflict(shipment_id, current.return_state)
            changes: dict[str, Any] = {"return_state": state, "updated_at": now, "version": current.version + 1}
            if pickup is not None:
                changes["pickup"] = pickup
                if pickup.tracking_number and state not in (ReturnState.CANCELLED, ReturnState.EXPIRED):
                    changes |= {"carrier": pickup.carrier, "provider": pickup.provider}
                    changes |= {"tracking_number": pickup.tracking_number, "status": Status.WAYBILL_CREATED}
                    row.status_source = WORKFLOW
            if state in (ReturnState.CANCELLED, ReturnState.EXPIRED):
                changes |= {
                    "status": Status.CANCELLED,
                    "status_key": precedence_key(Status.CANCELLED, now, "cancelled"),
                }
                row.status_source = WORKFLOW
                row.stall, row.poll_due = None, None
            return self._write(row, **changes)


if TYPE_CHECKING:  # static proof that the fake implements the port
    from parcelhub.ports.analytics import LaneHistory
    from parcelhub.ports.store import ShipmentStore

    _conforms: ShipmentStore = InMemoryShipmentStore()
    _reads_lanes: LaneHistory = InMemoryShipmentStore()

if TYPE_CHECKING:
    from parcelhub.ports.returns import ReturnRecords

    _keeps_returns: ReturnRecords = InMemoryShipmentStore()
