"""Tracking records: tracking-number claims, the timeline (events deduplicated by content hash) and the
conditional, order-independent status write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Expr, Table, TransactionCanceled
from parcelhub.domain.lanes import Lane
from parcelhub.domain.models import DeliveryWindow, ProofOfDelivery, TrackingEvent, first_of_each_hash
from parcelhub.domain.status import Status, SubStatus, TrackingState, is_terminal
from parcelhub.ports.changes import TRACKING
from parcelhub.ports.errors import (
    ShipmentNotFound,
    StoreUnavailable,
    TrackingClaimConflict,
)
from parcelhub.ports.store import ClaimFacts, StallMark, StatusChange, TrackingClaim

#: the most scan hashes one write records with its state (each is a ``NOT contains`` of the condition,
#: which DynamoDB caps at 4 KB); more fall back to the two writes
RECORD_IN_ONE_MAX = 50


class TrackingRecords(Table):
    """The :class:`~parcelhub.ports.store.TrackingClaims` and :class:`~parcelhub.ports.store.Timeline` ports."""

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
        expr = Expr()
        expr.set("shipment_id", shipment_id).set("order_id", order_id)
        expr.set("carrier", carrier).set("tracking_number", tracking_number)
        if facts is not None:  # what never changes of the shipment: the ingest then needs no read of it
            lane = facts.lane
            route = [lane.origin_province, lane.origin_city, lane.destination_province, lane.destination_city]
            expr.set("lane", route).set("service", facts.service).set("created_at", ser.iso(facts.created_at))
        condition = f"attribute_not_exists({expr.n('pk')}) OR {expr.n('shipment_id')} = {expr.v(shipment_id)}"
        if replacing is not None:
            # a re-issued number: the claim moves to the new shipment and its dedupe hashes start afresh
            # (the old shipment's events stay in its own partition: its history is untouched)
            expr.remove("known_hashes")
            condition += f" OR {expr.n('shipment_id')} = {expr.v(replacing)}"
        try:
            self._update(ser.tracking_pk(carrier, tracking_number), ser.TRK, expr, condition)
        except ConditionFailed as failed:
            owner = str((failed.old or {}).get("shipment_id", ""))
            raise TrackingClaimConflict(carrier, tracking_number, owner) from None

    def find_by_tracking(self, carrier: str, tracking_number: str) -> TrackingClaim | None:
        item = self._get_item(ser.tracking_pk(carrier, tracking_number), ser.TRK)
        return None if item is None else _claim(item)

    def find_claims(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], TrackingClaim]:
        items = self._batch_get(
            [(ser.tracking_pk(carrier, number), ser.TRK) for carrier, number in keys], what="claims", consistent=True
        )
        claims = (_claim(item) for item in items if "shipment_id" in item)
        return {(claim.carrier, claim.tracking_number): claim for claim in claims}

    def flag_parked(self, carrier: str, tracking_number: str, waiting: bool) -> None:
        expr = Expr()
        if waiting:
            expr.set("parked_waiting", True)
        else:
            expr.remove("parked_waiting")
        try:
            self._update(ser.tracking_pk(carrier, tracking_number), ser.TRK, expr, f"attribute_exists({expr.n('pk')})")
        except ConditionFailed:
            return

    def append_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        fresh = claim.unseen(events)
        if not fresh:
            return []
        # 1) the event items first: a crash before step 2 leaves them re-writable (same key, same content)
        self.put_events([(claim.shipment_id, e) for e in fresh])
        # 2) then the claim's hash set
        return self.record_events(claim, fresh)

    def put_events(self, events: Sequence[tuple[str, TrackingEvent]]) -> None:
        self._batch_write([{"PutRequest": {"Item": ser.to_wire(ser.event_to_item(sid, e))}} for sid, e in events])

    def record_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> list[TrackingEvent]:
        if not events:
            return []
        # one atomic ADD to the claim's hash set; the set as it was before (ALL_OLD: UPDATED_OLD may omit an
        # attribute the ADD did not change) tells which hashes a concurrent writer added first, so each event
        # is reported new exactly once
        expr = Expr()
        expr.adds.append(f"{expr.n('known_hashes')} {expr.v({e.content_hash for e in events})}")
        try:
            old = self._update(
                ser.tracking_pk(claim.carrier, claim.tracking_number),
                ser.TRK,
                expr,
                f"attribute_exists({expr.n('pk')})",
                return_values="ALL_OLD",
            )
        except ConditionFailed:
            raise ShipmentNotFound(f"tracking claim {claim.carrier}/{claim.tracking_number}") from None
        return first_of_each_hash(events, {str(h) for h in old.get("known_hashes", ())})

    def rewrite_events(self, claim: TrackingClaim, events: Sequence[TrackingEvent]) -> None:
        unique = list({e.content_hash: e for e in events}.values())
        if not unique:
            return
        self._batch_write(
            [{"PutRequest": {"Item": ser.to_wire(ser.event_to_item(claim.shipment_id, e))}} for e in unique]
        )
        expr = Expr()
        expr.adds.append(f"{expr.n('known_hashes')} {expr.v({e.content_hash for e in unique})}")
        try:
            self._update(
                ser.tracking_pk(claim.carrier, claim.tracking_number),
                ser.TRK,
                expr,
                f"attribute_exists({expr.n('pk')})",
            )
        except ConditionFailed:
            raise ShipmentNotFound(f"tracking claim {claim.carrier}/{claim.tracking_number}") from None

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
        expr = self._state_expr(
            shipment_id,
            state,
            last_event_text=last_event_text,
            stall=stall,
            now=now,
            poll_due=poll_due,
            location=location,
            provider=provider,
            estimate=estimate,
            proof=proof,
        )
        return self._write_state(shipment_id, state, expr, _newer(expr, state))

    def record_and_apply_state(
        self, claim: TrackingClaim, events: Sequence[TrackingEvent], state: TrackingState, **write: Any
    ) -> tuple[list[TrackingEvent], StatusChange | None] | None:
        """``write``: the keyword arguments of :meth:`apply_tracking_state` (the port names them)."""
        # One TransactWriteItems: the claim's hash ADD, on condition that none of the hashes is there yet
        # (so each scan is still reported new exactly once), and the state's conditional update. Twice the
        # write units of the two updates, one request instead of two.
        unique = first_of_each_hash(events)
        if not unique or len(unique) > RECORD_IN_ONE_MAX:
            return None
        claim_expr = Expr()
        known = claim_expr.n("known_hashes")
        claim_expr.adds.append(f"{known} {claim_expr.v({e.content_hash for e in unique})}")
        unseen = " AND ".join(f"NOT contains({known}, {claim_expr.v(e.content_hash)})" for e in unique)
        claim_condition = f"attribute_exists({claim_expr.n('pk')}) AND {unseen}"
        expr = self._state_expr(claim.shipment_id, state, **write)
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    self._update_request(
                        ser.tracking_pk(claim.carrier, claim.tracking_number), ser.TRK, claim_expr, claim_condition
                    ),
                    self._update_request(ser.shipment_pk(claim.shipment_id), ser.META, expr, _newer(expr, state)),
                ],
                # a retry of this very request (the SDK's, after a timeout) is answered as the first one was
                ClientRequestToken=str(uuid.uuid4()),
            )
        except TransactionCanceled as cancelled:
            on_claim, on_state = ([*cancelled.reasons, {}, {}])[:2]
            claim_held = str(on_claim.get("Code") or "None") == "None"
            if claim_held and on_state.get("Code") == "ConditionalCheckFailed" and on_state.get("Item"):
                return self.record_events(claim, unique), None  # a newer state is stored: the hashes alone
            return None
        except StoreUnavailable as busy:
            # cancelled for no condition (a concurrent transaction on these items: reason TransactionConflict,
            # or a throttled item): the two writes decide
            if busy.code == "TransactionCanceledException":
                return None
            raise
        return unique, StatusChange(
            shipment_id=claim.shipment_id,
            order_id=claim.order_id,
            carrier=claim.carrier,
            tracking_number=claim.tracking_number,
            old_status=None,
            new_status=state.status,
            new_sub_status=state.sub_status,
            occurred_at=state.occurred_at,
            old_sub_status=None,
        )

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
        expr = self._state_expr(
            shipment_id,
            state,
            last_event_text=last_event_text,
            stall=stall,
            now=now,
            poll_due=poll_due,
            location=location,
            provider=provider,
            estimate=estimate,
            proof=proof,
        )
        key, status = expr.n("status_key"), expr.n("status")
        expected = f"attribute_not_exists({key})" if expected_key is None else f"{key} = {expr.v(expected_key)}"
        condition = f"attribute_exists({expr.n('pk')}) AND {expected} AND {status} <> {expr.v(Status.CANCELLED.value)}"
        return self._write_state(shipment_id, state, expr, condition)

    def _state_expr(
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
    ) -> Expr:
        """The attributes a winning tracking state writes (status, its key and scan, stall and poll index)."""
        expr = Expr()
        expr.set("status", state.status.value).set("sub_status", state.sub_status.value)
        expr.set("status_key", state.key).set("last_event_at", ser.iso(state.occurred_at))
        expr.set("status_source", TRACKING).set("updated_at", ser.iso(now))
        expr.set_raw(f"{expr.n('version')} = {expr.n('version')} + {expr.v(1)}")
        for name, value in (("last_event_text", last_event_text), ("last_event_location", location)):
            if value is None:
                expr.remove(name)
            else:
                expr.set(name, value)
        if provider is not None:
            expr.set("last_event_provider", provider)
        if estimate is not None:
            expr.set("estimated_delivery", ser.window_value(estimate))
        if proof is not None:  # with the DELIVERED state it proves (a receipt copied later is kept)
            expr.set("proof", ser.model_value(proof))
        if stall is None:
            expr.remove(*ser.STALL_ATTRS)
        else:
            self._set_stall_attrs(expr, shipment_id, stall)
        expr.remove(*ser.STALL_ALERT_ATTRS)  # a new winning state ends the current stall episode
        if is_terminal(state.status):
            expr.remove(*ser.POLL_ATTRS)
        elif poll_due is not None:
            expr.set("poll_pk", ser.poll_pk(ser.shard_of(shipment_id, self.shards))).set("poll_sk", ser.iso(poll_due))
        return expr

    def _write_state(self, shipment_id: str, state: TrackingState, expr: Expr, condition: str) -> StatusChange | None:
        try:
            # ALL_OLD (not UPDATED_OLD): the change report needs order_id/carrier/tracking_number too, and
            # returned values cost no read capacity
            old = self._update(ser.shipment_pk(shipment_id), ser.META, expr, condition, return_values="ALL_OLD")
        except ConditionFailed as failed:
            if failed.old is None:
                raise ShipmentNotFound(shipment_id) from None
            return None
        return StatusChange(
            shipment_id=shipment_id,
            order_id=str(old["order_id"]),
            carrier=old.get("carrier"),
            tracking_number=old.get("tracking_number"),
            old_status=Status(old["status"]),
            new_status=state.status,
            new_sub_status=state.sub_status,
            occurred_at=state.occurred_at,
            old_sub_status=SubStatus(old.get("sub_status") or SubStatus.NONE),
        )

    def list_events(self, shipment_id: str, limit: int = 200) -> list[TrackingEvent]:
        events: list[TrackingEvent] = []
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": ser.shipment_pk(shipment_id)},
                ":prefix": {"S": ser.EVENT_PREFIX},
            },
            "ScanIndexForward": False,
        }
        while len(events) < limit:
            response = self._call("query", Limit=limit - len(events), **params)
            events.extend(ser.event_from_item(ser.from_wire(item)) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return events

    # ----------------------------------------------------------------------------------------- stalls


def _claim(item: dict[str, Any]) -> TrackingClaim:
    return TrackingClaim(
        shipment_id=str(item["shipment_id"]),
        order_id=str(item["order_id"]),
        carrier=str(item["carrier"]),
        tracking_number=str(item["tracking_number"]),
        known_hashes=frozenset(str(h) for h in item.get("known_hashes", ())),
        facts=_claim_facts(item),
        parked=bool(item.get("parked_waiting")),
    )


def _claim_facts(item: dict[str, Any]) -> ClaimFacts | None:
    """The shipment's facts kept on its claim (claims written before they were kept have none)."""
    route, service, created_at = item.get("lane"), item.get("service"), item.get("created_at")
    if not isinstance(route, list) or len(route) != 4 or not service or not created_at:
        return None
    return ClaimFacts(
        lane=Lane(*(str(part) for part in route)), service=str(service), created_at=ser.parse_iso(str(created_at))
    )


def _newer(expr: Expr, state: TrackingState) -> str:
    """The condition of a tracking state's write: the shipment exists and holds no newer (or equal) state."""
    key = expr.n("status_key")
    return f"attribute_exists({expr.n('pk')}) AND (attribute_not_exists({key}) OR {key} < {expr.v(state.key)})"
