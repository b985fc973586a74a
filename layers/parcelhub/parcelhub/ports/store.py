"""The store ports: one narrow Protocol per concern, and the value types they speak.

A use case asks for the ports it needs (``Shipments``, ``TrackingClaims``, ``Timeline``, ``StallIndex``,
``PollIndex``, ``ParkedPushes``, ``Leases``, ``CircuitHealth``, ``TrackingPages``, ``AttemptCounters``).
One adapter implements them all on the single table of ARCHITECTURE §3
(:class:`parcelhub.adapters.dynamodb.DynamoShipmentStore`); an in-memory fake with the same conditions
(``tests/fakes/store.py``) serves unit tests. The same contract suite runs against both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from parcelhub.domain.lanes import Lane
from parcelhub.domain.models import (
    Carrier,
    CarrierDetection,
    CarrierOrder,
    DeliveryReceipt,
    DeliveryWindow,
    OrderState,
    ProofOfDelivery,
    SelectionRecord,
    Shipment,
    TrackingEvent,
    Waybill,
    WaybillAttempt,
    first_of_each_hash,
)
from parcelhub.domain.status import Status, SubStatus, TrackingState

#: Default number of write shards of the stall and poll indexes (``STALL#0`` … ``STALL#7``). Writers and
#: readers must agree on it: a reader with fewer shards misses items, so change it only with a backfill.
DEFAULT_SHARDS = 8


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """What never changes of the shipment that claims a tracking number, copied onto the claim in the same
    write, so the tracking ingest folds, flags scan times and re-estimates without reading the shipment."""

    lane: Lane
    service: str
    created_at: datetime

    @classmethod
    def of(cls, shipment: Shipment) -> ClaimFacts:
        lane = Lane(
            shipment.origin_province, shipment.origin_city, shipment.destination_province, shipment.destination_city
        )
        return cls(lane=lane, service=shipment.service.value, created_at=shipment.created_at)


@dataclass(frozen=True, slots=True)
class TrackingClaim:
    """Who owns a (carrier, tracking number), and the content hashes of the events already stored."""

    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    known_hashes: frozenset[str] = frozenset()
    #: the owner's lane, service and creation time; ``None`` on a claim written without them
    facts: ClaimFacts | None = None
    #: pushes parked for the number may be waiting: a replay of them failed (``flag_parked``)
    parked: bool = False

    def unseen(self, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        """The events whose hash the claim did not hold when it was read, one per hash (what a timeline
        writes; recording their hashes then tells which of them are new)."""
        return first_of_each_hash(events, self.known_hashes)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A tracking state that won the conditional update (``old_status`` may equal ``new_status`` when a
    newer event of the same status arrived)."""

    shipment_id: str
    order_id: str
    carrier: str | None
    tracking_number: str | None
    #: ``None`` when the write could not return the stored state (``record_and_apply_state``'s one request)
    old_status: Status | None
    new_status: Status
    new_sub_status: SubStatus
    occurred_at: datetime
    old_sub_status: SubStatus | None = SubStatus.NONE


@dataclass(frozen=True, slots=True)
class StallMark:
    """When a shipment counts as stalled if nothing happens before: the stall index entry."""

    due_at: datetime
    rule: str
    episode: str  # one id per stall episode: an alert is sent at most once per episode


@dataclass(frozen=True, slots=True)
class DueStall:
    """One entry of the stall index whose due time has passed (with the attributes the alert needs)."""

    shipment_id: str
    due_at: datetime
    rule: str
    episode: str
    order_id: str
    status: Status
    carrier: str | None = None
    provider: str | None = None
    tracking_number: str | None = None
    last_event_at: datetime | None = None
    last_event_text: str | None = None


@dataclass(frozen=True, slots=True)
class DuePoll:
    """A shipment whose tracking should be polled now (carriers that don't push)."""

    shipment_id: str
    due_at: datetime
    carrier: str | None
    provider: str | None
    tracking_number: str | None


@dataclass(frozen=True, slots=True)
class ParkedPush:
    """A push that arrived before its tracking claim existed; replayed once the claim is written."""

    carrier: str
    tracking_number: str
    payload_ref: str
    received_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """Who may act on a named resource until when (one holder at a time, taken by a conditional write)."""

    name: str
    owner: str
    until: datetime


@dataclass(frozen=True, slots=True)
class OrderLookup:
    """An order claim as the tracking lookup form reads it."""

    order_id: str
    shipment_id: str
    lookup_digest: str | None = None


@dataclass(slots=True)
class QueryStats:
    """What an index sweep cost: pages requested, items read and the capacity DynamoDB reported."""

    pages: int = 0
    items_read: int = 0
    items_returned: int = 0
    capacity_units: float = 0.0
    per_shard_pages: dict[int, int] = field(default_factory=dict)


@runtime_checkable
class Shipments(Protocol):
    """The shipment item: create with its order claim, read, waybill and workflow-driven status."""

    def create(self, shipment: Shipment) -> None:
        """Shipment + order claim in one transaction; ``OrderAlreadyExists`` if the order id is taken."""

    def get(self, shipment_id: str) -> Shipment:
        """``ShipmentNotFound`` when absent."""

    def get_by_order(self, order_id: str) -> Shipment:
        """``ShipmentNotFound`` when the order id is not claimed."""

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
        """Record the waybill (and append ``attempts``); the same tracking number again is a no-op,
        a different one raises ``WaybillAlreadyRecorded``, a CANCELLED shipment ``StatusConflict``.
        ``order_key`` names the carrier order it came from: marked ``kept`` (and no longer in flight)
        in the same write. ``estimate`` becomes ``estimated_delivery`` and, when none was promised yet,
        ``promised_delivery``, in the same write."""

    def set_status(
        self,
        shipment_id: str,
        status: Status,
        sub_status: SubStatus = SubStatus.NONE,
        *,
        expected: set[Status] | None,
        now: datetime,
    ) -> Shipment:
        """Workflow-driven status; ``StatusConflict`` when the current status is not in ``expected``."""

    def add_waybill_attempt(self, shipment_id: str, attempt: WaybillAttempt) -> None: ...

    def set_detection(self, shipment_id: str, detection: CarrierDetection, *, carrier: Carrier | None = None) -> None:
        """Record how a tracked number's carrier was found; with ``carrier``, correct the recorded waybill's
        carrier too (the provider reported another company). ``ShipmentNotFound`` when there is no such
        shipment (or, correcting, no waybill yet)."""

    def set_receipt(self, shipment_id: str, receipt: DeliveryReceipt) -> bool:
        """Record the delivery receipt once: ``False`` when one is recorded already."""

    def set_selection(self, shipment_id: str, selection: SelectionRecord) -> None:
        """Record how the carrier was chosen (replaces an earlier run's); ``ShipmentNotFound`` when absent."""


@runtime_checkable
class TrackingClaims(Protocol):
    """Which shipment owns a (carrier, tracking number): uniqueness and the webhook's one-read lookup."""

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
        """``TrackingClaimConflict`` when another shipment holds it; the same shipment again is a no-op.
        ``replacing``: take the claim over from that shipment (a number the carrier issued again: the old
        shipment keeps its own timeline, new pushes go to the new one). ``facts``: the shipment's, kept on
        the claim (:class:`ClaimFacts`)."""

    def find_by_tracking(self, carrier: str, tracking_number: str) -> TrackingClaim | None:
        """Exactly one GetItem."""

    def find_claims(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], TrackingClaim]:
        """The claims of those (carrier, tracking number) keys that are claimed, read as strongly as
        ``find_by_tracking``: one BatchGetItem per 100 keys (keys left unprocessed are asked again)."""

    def flag_parked(self, carrier: str, tracking_number: str, waiting: bool) -> None:
        """Mark the claim as having parked pushes waiting (a replay of them failed and put them back), or
        clear the mark; nothing happens when the number is not claimed."""


@runtime_checkable
class Timeline(Protocol):
    """A shipment's tracking events (deduplicated by content hash) and the status they fold into."""

    def append_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        """Store the events that are new and return them; nothing is written when nothing is new
        (``put_events`` of those not in ``claim.known_hashes``, then ``record_events``)."""

    def put_events(self, events: Sequence[tuple[str, TrackingEvent]]) -> None:
        """Write the event items of any number of shipments, (shipment id, event) each, in BatchWriteItems
        of 25; idempotent (same key, same content). Their hashes are not recorded: ``record_events`` next."""

    def record_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        """Add the hashes of events already written by ``put_events`` to the claim (one atomic update) and
        return those no writer had added before: each event is reported new exactly once."""

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
        """One conditional update keyed on the precedence key; ``None`` when a newer state is stored.
        ``poll_due`` (when given, for a non-terminal state) moves the poll index entry in the same write;
        ``location`` and ``provider`` (of the winning scan) are stored for the announcement the stream
        relay derives from this write; ``estimate`` (when given) replaces ``estimated_delivery``."""

    def record_and_apply_state(
        self,
        claim: TrackingClaim,
        events: Sequence[TrackingEvent],
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
    ) -> tuple[list[TrackingEvent], StatusChange | None] | None:
        """``record_events`` and ``apply_tracking_state`` in ONE request when it can decide both: the events
        (written already by ``put_events``, none of their hashes known when read) are recorded and the state
        written together, returning (the events, the change: its ``old_status`` unknown); when only the state
        lost (a newer one is stored) the hashes are recorded alone, returning (the events new, None). ``None``
        when it could not decide (a hash recorded meanwhile, a concurrent transaction, a missing item):
        nothing was written and the caller records, then applies, as before."""

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
        """A correction (a replay after a mapping fix): the same write as ``apply_tracking_state``, but it
        replaces the stored state only while its key is still ``expected_key`` (None: no state yet), so it
        may lower it; ``None`` when the state moved meanwhile. Never replaces a cancellation."""

    def rewrite_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> None:
        """Store every event, replacing a stored one with the same key (a replay's corrected mapping)."""

    def list_events(self, shipment_id: str, limit: int = 200) -> list[TrackingEvent]:
        """Newest first."""


@runtime_checkable
class StallIndex(Protocol):
    """The sparse stall index: when a parcel counts as stalled, and one alert per stall episode."""

    def set_stall(self, shipment_id: str, mark: StallMark) -> None: ...

    def clear_stall(self, shipment_id: str) -> None: ...

    def query_due_stalls(
        self, now: datetime, shards: int | None = None, stats: QueryStats | None = None
    ) -> Iterator[DueStall]:
        """Only the index entries with ``due_at <= now``; ``stats`` (when given) is filled as pages arrive."""

    def mark_stall_alerted(self, shipment_id: str, episode: str, now: datetime) -> bool:
        """True only the first time for the current stall episode; the entry then leaves the stall index
        (so later sweeps don't re-read it) until a new mark is set. The claim IS the alert: the stream
        relay announces ``ShipmentStalled`` from this committed write."""


@runtime_checkable
class PollIndex(Protocol):
    """The sparse poll index: shipments whose tracking must be queried (providers that don't push)."""

    def set_poll_due(self, shipment_id: str, due_at: datetime) -> None: ...

    def clear_poll(self, shipment_id: str) -> None: ...

    def query_due_polls(
        self, now: datetime, shards: int | None = None, limit: int = 100, stats: QueryStats | None = None
    ) -> list[DuePoll]: ...


@runtime_checkable
class ParkedPushes(Protocol):
    """Pushes that arrived before their tracking claim, handed out exactly once when it appears."""

    def park_push(
        self, carrier: str, tracking_number: str, payload_ref: str, received_at: datetime, expires_at: datetime
    ) -> None: ...

    def take_parked(self, carrier: str, tracking_number: str, now: datetime | None = None) -> list[ParkedPush]:
        """Read and delete; each parked push is handed to exactly one caller."""


@runtime_checkable
class Leases(Protocol):
    """Named leases: one holder at a time, each taken or renewed by one conditional write."""

    def acquire_lease(self, name: str, owner: str, *, now: datetime, seconds: float) -> Lease:
        """Take the lease (free, expired, or already ``owner``'s: renewed until ``now + seconds``);
        ``LeaseHeld`` when another owner holds it past ``now``."""

    def release_lease(self, name: str, owner: str) -> None:
        """Free the lease if ``owner`` holds it; otherwise nothing happens."""


@dataclass(frozen=True, slots=True)
class DueRecovery:
    """A shipment the recovery sweep must look at (its workflow has not settled it in time)."""

    shipment_id: str
    due_at: datetime


@runtime_checkable
class CarrierOrders(Protocol):
    """The carrier orders of a shipment: one attempt in flight at a time, every order accounted for."""

    def open_order(self, shipment_id: str, order: CarrierOrder, now: datetime) -> Shipment:
        """Record ``order`` as the attempt in flight (before the create is sent), conditionally: the
        shipment must still want a waybill (``StatusConflict`` otherwise) and have no other attempt in
        flight (``OrderInFlight``); the same order again is a no-op."""

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
        """Move an order to ``state`` (no longer in flight unless ``open``), optionally with its tracking
        number, a waybill-log line, its cancel count and a recovery time."""


@runtime_checkable
class RecoveryIndex(Protocol):
    """The sparse recovery index: shipments whose workflow has not settled them yet."""

    def postpone_recovery(self, shipment_id: str, due_at: datetime) -> None:
        """Move the shipment's due time; a no-op when it has left the index meanwhile (never re-adds it)."""

    def clear_recovery(self, shipment_id: str) -> None: ...

    def finish_run(self, shipment_id: str, due_at: datetime | None) -> None:
        """The waybill run ended: ``workflow_done``, and out of the index (``due_at`` None) or still in it
        until ``due_at`` (orders not kept are left to cancel)."""

    def query_due_recoveries(self, now: datetime, limit: int = 100) -> list[DueRecovery]: ...

    def begin_run(self, shipment_id: str, kind: str, *, expected: set[Status], recovery_due: datetime,
                  now: datetime, if_due: datetime | None = None) -> tuple[Shipment, str]:  # fmt: skip
        """Count a new workflow run (``kind`` ``"retry"``: WAYBILL_FAILED -> PENDING; ``"redrive"``: the
        status stays) in one conditional write and return its execution name, unique per shipment
        (``<id>-r<n>`` / ``<id>-d<n>``); ``StatusConflict`` when the status is not in ``expected`` (or the
        recovery due time is no longer ``if_due``: another run started meanwhile)."""


@runtime_checkable
class CircuitHealth(Protocol):
    """The circuit breaker's versioned state per provider (optimistic lock)."""

    def get_health(self, provider: str) -> tuple[dict[str, Any], int]:
        """``({}, 0)`` when nothing was stored yet."""

    def put_health(self, provider: str, state: dict[str, Any], expected_version: int) -> bool:
        """Optimistic lock: False when someone else wrote since ``expected_version``."""


@runtime_checkable
class TrackingPages(Protocol):
    """What the customer tracking page reads: one request per page, one per lookup."""

    def shipment_with_timeline(self, shipment_id: str, limit: int = 200) -> tuple[Shipment, list[TrackingEvent]]:
        """The shipment and its newest ``limit`` events (newest first) in one Query; ``ShipmentNotFound``."""

    def find_order(self, order_id: str) -> OrderLookup | None:
        """The order claim, exactly one GetItem; ``None`` when the order id is not claimed."""


@runtime_checkable
class AttemptCounters(Protocol):
    """Fixed-window attempt counters (rate limits), each attempt one conditional write."""

    def count_attempt(self, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
        """Count one attempt against ``key`` in the window holding ``now``; False (nothing counted) once
        ``limit`` attempts were counted in that window."""


class IngestStore(Shipments, TrackingClaims, Timeline, ParkedPushes, Protocol):
    """What the tracking ingest writes and reads (it never touches indexes or leases directly)."""


class WaybillStore(
    Shipments, TrackingClaims, StallIndex, PollIndex, Leases, CircuitHealth, CarrierOrders, RecoveryIndex, Protocol
):
    """What the waybill workflow's tasks (and the recovery sweep) use."""


@runtime_checkable
class ShipmentStore(
    Shipments,
    TrackingClaims,
    Timeline,
    StallIndex,
    PollIndex,
    ParkedPushes,
    Leases,
    CircuitHealth,
    TrackingPages,
    AttemptCounters,
    CarrierOrders,
    RecoveryIndex,
    Protocol,
):
    """Every port at once: what the single-table adapter and the fake implement (the contract suite's
    subject). Use cases ask for the narrow ports instead."""
