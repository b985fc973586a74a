"""A delivery fact as a flat record: the fact item in the table and one JSON line in the S3 history.

Flat, snake_case columns (what the Glue table declares and DuckDB reads): the lane's four parts, times
as ISO 8601 with their offset, ``exception_reasons`` as an array, ``dt`` (the China-time day the shipment
ended, the history's partition) and ``week`` (its ISO week, the scorecards' period).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from parcelhub.domain.lanes import DeliveryFact, Lane, Outcome
from parcelhub.domain.models import CHINA_TZ

#: the history's columns, in order (template.yaml's Glue table declares the same)
COLUMNS = (
    "shipment_id", "carrier", "provider", "service",
    "origin_province", "origin_city", "destination_province", "destination_city",
    "outcome", "created_at", "picked_up_at", "arrived_at", "out_for_delivery_at", "first_attempt_at",
    "delivered_at", "ended_at", "attempts", "exception_reasons", "promised_latest", "promised_most_likely",
    "cost_fen", "cost_billed", "weight_kg", "week",
)  # fmt: skip
_TIMES = (
    "created_at", "picked_up_at", "arrived_at", "out_for_delivery_at", "first_attempt_at", "delivered_at",
    "ended_at", "promised_latest", "promised_most_likely",
)  # fmt: skip


def ended_at(fact: DeliveryFact) -> datetime:
    return (fact.ended_at or fact.delivered_at or fact.created_at).astimezone(CHINA_TZ)


def day_of(fact: DeliveryFact) -> str:
    """``YYYY-MM-DD``: the China-time day the shipment ended (the history's ``dt`` partition)."""
    return ended_at(fact).date().isoformat()


def week_of(fact: DeliveryFact) -> str:
    """``YYYY-Www``: the ISO week (China time) the shipment ended (the scorecards' period)."""
    year, week, _ = ended_at(fact).isocalendar()
    return f"{year}-W{week:02d}"


def to_record(fact: DeliveryFact) -> dict[str, Any]:
    record: dict[str, Any] = {
        "shipment_id": fact.shipment_id,
        "carrier": fact.carrier,
        "provider": fact.provider,
        "service": fact.service,
        "origin_province": fact.lane.origin_province,
        "origin_city": fact.lane.origin_city,
        "destination_province": fact.lane.destination_province,
        "destination_city": fact.lane.destination_city,
        "outcome": fact.outcome.value,
        "attempts": fact.attempts,
        "exception_reasons": list(fact.exception_reasons),
        "cost_fen": fact.cost_fen,
        "cost_billed": fact.cost_billed,
        "weight_kg": fact.weight_kg,
        "week": week_of(fact),
    }
    for name in _TIMES:
        moment = getattr(fact, name)
        record[name] = moment.isoformat() if moment is not None else None
    return {column: record[column] for column in COLUMNS}


def from_record(record: Mapping[str, Any]) -> DeliveryFact:
    def moment(name: str) -> datetime | None:
        value = record.get(name)
        return datetime.fromisoformat(str(value)) if value else None

    created = moment("created_at")
    if created is None:
        raise ValueError("a delivery fact has a creation time")
    return DeliveryFact(
        shipment_id=str(record["shipment_id"]),
        carrier=str(record["carrier"]),
        provider=str(record.get("provider") or ""),
        service=str(record["service"]),
        lane=Lane(
            str(record["origin_province"]),
            str(record["origin_city"]),
            str(record["destination_province"]),
            str(record["destination_city"]),
        ),
        outcome=Outcome(str(record["outcome"])),
        created_at=created,
        picked_up_at=moment("picked_up_at"),
        arrived_at=moment("arrived_at"),
        out_for_delivery_at=moment("out_for_delivery_at"),
        first_attempt_at=moment("first_attempt_at"),
        delivered_at=moment("delivered_at"),
        ended_at=moment("ended_at"),
        attempts=int(record.get("attempts") or 0),
        exception_reasons=tuple(str(r) for r in record.get("exception_reasons") or ()),
        promised_latest=moment("promised_latest"),
        promised_most_likely=moment("promised_most_likely"),
        cost_fen=int(record["cost_fen"]) if record.get("cost_fen") is not None else None,
        cost_billed=bool(record.get("cost_billed")),
        weight_kg=float(record["weight_kg"]) if record.get("weight_kg") is not None else None,
    )
