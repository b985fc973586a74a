"""From one tracking number's scans to its stored state: the part of the ingest that decides.

* :meth:`TrackingWriter.checked` — one scan per content hash, each scan time checked against when its push
  was received and when the shipment was created (``domain.scan_time``): an implausible one is kept,
  flagged, and left out of the fold (a log line and the ``ScanTimeFlagged`` metric);
* :meth:`TrackingWriter.apply` — store the new scans, fold the plausible ones, and write the winning state
  with one conditional update (precedence key; when the batch wrote the scans already, in the same request
  as their hashes: ``record_and_apply_state``) that also carries the stall mark, the poll due time and,
  when the winning scan or a scan new in the batch is a milestone (picked up, arrived at the destination
  city, out for delivery), the new delivery estimate (``parcelhub.app.estimates``);
* :meth:`TrackingWriter.correct` — a replay after a mapping fix: store the scans as mapped now, re-decide
  the status from the whole timeline, and replace the stored state only when it differs and has not moved
  meanwhile (so a correction may lower it, and replaying twice changes nothing).

Nothing is published: the stream relay announces what these writes commit (``parcelhub.app.outbox``).
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from parcelhub.app.estimates import MILESTONES, DeliveryEstimator, LaneFacts
from parcelhub.app.proof import proof_of_delivery
from parcelhub.domain.models import DeliveryWindow, TrackingEvent
from parcelhub.domain.scan_time import scan_time_flag
from parcelhub.domain.stall import StallRule, stall_due
from parcelhub.domain.status import Status, TrackingState, fold, is_terminal
from parcelhub.ports.store import StallMark, StatusChange, TrackingClaim

if TYPE_CHECKING:
    from parcelhub.config import HubConfig
    from parcelhub.ports.store import IngestStore

#: store -> shipment id -> what never changes of it (lane, service, created at), per warm process (bounded)
_FACTS: weakref.WeakKeyDictionary[Any, collections.OrderedDict[str, LaneFacts]] = weakref.WeakKeyDictionary()
_FACTS_CACHE_SIZE = 4096
#: how many stored scans a replay folds (a parcel's whole life is far fewer)
REPLAY_TIMELINE_LIMIT = 1000


class TrackingWriter:
    """Scans -> the stored tracking state, over the ingest's store port (cheap to build)."""

    def __init__(
        self,
        store: IngestStore,
        config: HubConfig,
        *,
        metric: Callable[..., None],
        log: Callable[[], Any],
        estimator: DeliveryEstimator | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.metric = metric
        self.log = log
        self.estimator = estimator

    def checked(self, claim: TrackingClaim, scans: Sequence[tuple[TrackingEvent, datetime]]) -> list[TrackingEvent]:
        """The scans, one per content hash, flagged when their time is implausible (a plausible copy of a
        scan wins over a flagged one)."""
        _, created_at = self.facts(claim)
        settings = self.config.scan_time
        unique: dict[str, TrackingEvent] = {}
        for event, received_at in scans:
            flag = scan_time_flag(
                event.occurred_at,
                received_at=received_at,
                created_at=created_at,
                future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
                before_shipment_tolerance=timedelta(seconds=settings.before_shipment_tolerance_seconds),
            )
            checked = event.model_copy(update={"time_flag": flag}) if flag != event.time_flag else event
            kept = unique.get(checked.content_hash)
            if kept is None or (kept.time_flag is not None and checked.time_flag is None):
                unique[checked.content_hash] = checked
        for event in unique.values():
            if event.time_flag is None:
                continue
            self.metric("ScanTimeFlagged", 1, flag=str(event.time_flag))
            self.log().warning(
                "scan time implausible: kept in the timeline, ignored by the status",
                extra={
                    "shipment_id": claim.shipment_id,
                    "flag": str(event.time_flag),
                    "occurred_at": event.occurred_at.isoformat(),
                    "raw_code": event.raw_code[:40],
                },
            )
        return list(unique.values())

    def apply(
        self, claim: TrackingClaim, events: list[TrackingEvent], now: datetime, *, force: bool, stored: bool = False
    ) -> tuple[list[TrackingEvent], StatusChange | None]:
        """Store the new scans and write the state they fold into; returns (new scans, the change).
        ``stored``: the items of ``claim.unseen(events)`` were written already (``put_events``, batched with
        other numbers' scans): only their hashes are recorded, then the state is written."""
        decided: dict[str, Any] | None = None
        if stored:
            fresh = claim.unseen(events)
            state = fold(e for e in events if e.time_flag is None)
            if fresh and state is not None:
                # the hashes and the state in one request when it can decide both (else the two writes below)
                decided = self._common(claim, state, events, now, fresh=fresh)
                done = self.store.record_and_apply_state(claim, fresh, state, **decided)
                if done is not None:
                    return done
            new = self.store.record_events(claim, fresh)
            if new != fresh:
                decided = None  # another normalizer recorded some of them: decide from what is new here
        else:
            new = self.store.append_events(claim, events)
        # Nothing new: the state was applied when these events were new. Unless this is a redelivery (a
        # crash between append and apply): then re-apply; the conditional update makes it idempotent.
        if not new and not force:
            return new, None
        state = fold(e for e in events if e.time_flag is None)
        if state is None:
            return new, None
        # the write the one request could not make carries what it had decided (estimated once, counted once)
        return new, self._write(claim, state, events, now, fresh=new, common=decided)

    def correct(self, claim: TrackingClaim, events: list[TrackingEvent], now: datetime) -> StatusChange | None:
        """A replay: store the scans as mapped now, then re-decide the status from the whole timeline."""
        self.store.rewrite_events(claim, events)
        timeline = self.store.list_events(claim.shipment_id, limit=REPLAY_TIMELINE_LIMIT)
        state = fold(e for e in timeline if e.time_flag is None)
        current = self.store.get(claim.shipment_id)
        if state is None or state.key == current.status_key or current.status is Status.CANCELLED:
            return None
        change = self._write(claim, state, timeline, now, replace=True, expected_key=current.status_key)
        if change is not None:
            self.metric("TrackingStateCorrected", 1)
        return change

    def _write(
        self,
        claim: TrackingClaim,
        state: TrackingState,
        events: Sequence[TrackingEvent],
        now: datetime,
        *,
        replace: bool = False,
        expected_key: str | None = None,
        fresh: Sequence[TrackingEvent] = (),
        common: dict[str, Any] | None = None,
    ) -> StatusChange | None:
        common = common if common is not None else self._common(claim, state, events, now, fresh=fresh)
        if not replace:
            return self.store.apply_tracking_state(claim.shipment_id, state, **common)
        return self.store.replace_tracking_state(claim.shipment_id, state, expected_key=expected_key, **common)

    def _common(
        self,
        claim: TrackingClaim,
        state: TrackingState,
        events: Sequence[TrackingEvent],
        now: datetime,
        *,
        fresh: Sequence[TrackingEvent],
    ) -> dict[str, Any]:
        """What a winning state's write carries besides the state: the winning scan's text, place and
        provider, the stall mark, the poll due time, the proof of delivery and the re-estimate."""
        winner = next(e for e in events if e.content_hash == state.event_hash)
        quiet = timedelta(hours=self.config.poller.quiet_hours * self.config.poller.time_scale)
        common: dict[str, Any] = {
            "last_event_text": winner.raw_text or None,
            "stall": self._stall_mark(claim, state),
            "now": now,
            "poll_due": None if is_terminal(state.status) else now + quiet,  # same write: no extra UpdateItem
            "location": winner.location,
            "provider": winner.provider.value,
        }
        proof = proof_of_delivery(winner)
        if proof is not None:  # same conditional write: the proof lands with the DELIVERED state it comes from
            common["proof"] = proof
        estimate = self._estimate(claim, state, winner, fresh, now)
        if estimate is not None:
            common["estimate"] = estimate  # same conditional write: lands only with the state it belongs to
        return common

    def _estimate(
        self,
        claim: TrackingClaim,
        state: TrackingState,
        winner: TrackingEvent,
        fresh: Sequence[TrackingEvent],
        now: datetime,
    ) -> DeliveryWindow | None:
        """The re-estimate this write carries: from the newest milestone scan among the winner and the scans
        new in this batch (a pickup and an in-transit scan in one push re-estimate from the pickup), none
        when no milestone was passed (the estimate stays)."""
        if self.estimator is None or is_terminal(state.status):
            return None
        passed = [e for e in (winner, *fresh) if e.time_flag is None and e.status in MILESTONES]
        if not passed:
            return None
        milestone = max(passed, key=lambda e: (e.occurred_at, e is winner))
        return self.estimator.at_scan(
            self.lane_facts(claim),
            claim.carrier,
            milestone.status,
            milestone.occurred_at,
            now,
            carrier_estimate=milestone.estimated_delivery_at or winner.estimated_delivery_at,
        )

    def _stall_mark(self, claim: TrackingClaim, state: TrackingState) -> StallMark | None:
        rules = self.config.stall
        shipment_id = claim.shipment_id

        def due(province: str) -> Any:
            return stall_due(
                shipment_id=shipment_id,
                status=state.status,
                sub_status=state.sub_status,
                since=state.occurred_at,
                state_key=state.key,
                destination_province=province,
                rules=rules,
            )

        mark = due("")
        if mark is not None and mark.rule is StallRule.NO_UPDATE_IN_TRANSIT and rules.in_transit_hours_by_province:
            mark = due(self.facts(claim)[0])
        if mark is None:
            return None
        return StallMark(due_at=mark.due_at, rule=mark.rule.value, episode=mark.episode)

    def facts(self, claim: TrackingClaim) -> tuple[str, datetime]:
        """The destination province and creation time (see :meth:`lane_facts`)."""
        facts = self.lane_facts(claim)
        return facts.lane.destination_province, facts.created_at

    def lane_facts(self, claim: TrackingClaim) -> LaneFacts:
        """Lane, service and creation time: from the claim, which carries them since the waybill step claims
        with them (issue 21); for a claim written without them, one GetItem per shipment and warm process
        (they never change)."""
        if claim.facts is not None:
            return LaneFacts(service=claim.facts.service, lane=claim.facts.lane, created_at=claim.facts.created_at)
        try:
            cache = _FACTS.setdefault(self.store, collections.OrderedDict())
        except TypeError:  # a store that cannot be weakly referenced: no cache
            cache = collections.OrderedDict()
        facts = cache.get(claim.shipment_id)
        if facts is None:
            facts = LaneFacts.of(self.store.get(claim.shipment_id))
            cache[claim.shipment_id] = facts
            while len(cache) > _FACTS_CACHE_SIZE:
                cache.popitem(last=False)
        return facts
