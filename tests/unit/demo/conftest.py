"""A small, real-shaped demo record: what the runner writes to ``var/demo-run.json``.

Shipment views have the API's shape (``ShipmentView``), push-log entries the sandboxes' shape, alert
lines the local stack's ``alerts.jsonl`` shape with texts built by the real alert functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from parcelhub.domain.status import Status
from parcelhub.events import AttemptSummary, circuit_opened_alert, stall_alert, waybill_failed_alert

T0 = datetime(2024, 11, 11, 2, 0, 0, tzinfo=UTC)  # 10:00 in Shanghai on Double 11
CHINA = "+08:00"


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def china(seconds: float) -> str:
    """The carriers' wall-clock time (Asia/Shanghai), as the API shows event times."""
    return (T0 + timedelta(seconds=seconds, hours=8)).strftime("%Y-%m-%dT%H:%M:%S") + CHINA


def attempt(provider: str, carrier: str, outcome: str, at: float) -> dict[str, Any]:
    return {
        "provider": provider,
        "carrier": carrier,
        "outcome": outcome,
        "error_code": None,
        "error_message": None,
        "at": iso(at),
    }


def shipment(
    sid: str,
    *,
    status: str,
    attempts: list[dict[str, Any]],
    scans: list[tuple[str, float]] = (),  # type: ignore[assignment]
    created: float = 0.0,
) -> dict[str, Any]:
    winner = next((a for a in attempts if a["outcome"] == "created"), None)
    number = f"7{abs(hash(sid)) % 10**13:013d}" if winner else None
    return {
        "shipment_id": sid,
        "order_id": f"ORD-{sid}",
        "status": status,
        "sub_status": "NONE",
        "carrier": winner["carrier"] if winner else None,
        "provider": winner["provider"] if winner else None,
        "tracking_number": number,
        "customer_tier": "regular",
        "destination_province": "上海市",
        "destination_city": "上海市",
        "created_at": iso(created),
        "updated_at": iso(created + 30),
        "last_event_at": iso(scans[-1][1]) if scans else None,
        "waybill_attempts": attempts,
        "events": [{"occurred_at": china(at), "status": st, "sub_status": "NONE"} for st, at in reversed(scans)],
    }


def alert_line(text: str, at: float) -> dict[str, Any]:
    return {
        "time": iso(at),
        "topic": "parcelhub-dev-ops-alerts",
        "subject": None,
        "message": json.dumps(text),
        "text": text,
    }


def stall_text(sid: str, number: str) -> str:
    return stall_alert(
        shipment_id=sid,
        order_id=f"ORD-{sid}",
        carrier="ZTO",
        provider="kdniao",
        tracking_number=number,
        status=Status.IN_TRANSIT,
        rule="no_update_in_transit",
        stalled_for_seconds=21,
        threshold_seconds=20,
        last_event_text="【杭州市】快件已发往 上海转运中心",
        last_event_at=T0,
    ).message


def failed_text(sid: str) -> str:
    attempts = [
        AttemptSummary(provider="sf", carrier="SF", outcome="unavailable", error_code="HTTP_503", at=T0),
        AttemptSummary(provider="kdniao", carrier="ZTO", outcome="unavailable", error_code="HTTP_503", at=T0),
    ]
    return waybill_failed_alert(sid, f"ORD-{sid}", attempts).message


def circuit_text() -> str:
    return circuit_opened_alert(
        provider="sf",
        failures=5,
        window_seconds=60,
        cool_down_seconds=30,
        opened_at=T0,
        half_open_at=T0 + timedelta(seconds=30),
        last_error_code="HTTP_503",
    ).message


def push(
    number: str, scans: list[tuple[str, float]], *, at: float, duplicate: bool = False, status: int = 200
) -> dict[str, Any]:
    return {
        "time": (T0 + timedelta(seconds=at + 0.05)).timestamp(),
        "sent_at": (T0 + timedelta(seconds=at)).timestamp(),
        "status": status,
        "tracking_number": number,
        "carrier": "ZTO",
        "order_id": "",
        "duplicate": duplicate,
        "scans": [[stage, china(t)] for stage, t in scans],
    }


HAPPY = [
    ("PICKED_UP", 10.0),
    ("IN_TRANSIT", 12.0),
    ("ARRIVED_AT_DESTINATION_CITY", 14.0),
    ("OUT_FOR_DELIVERY", 16.0),
    ("DELIVERED", 18.0),
]


@pytest.fixture
def record() -> dict[str, Any]:
    """Three accepted orders and one rejected: one delivered, one failed over from SF, one stalled."""
    delivered = shipment("shp_a", status="DELIVERED", attempts=[attempt("kdniao", "ZTO", "created", 2)], scans=HAPPY)
    failover = shipment(
        "shp_b",
        status="DELIVERED",
        created=1,
        attempts=[attempt("sf", "SF", "unavailable", 3), attempt("kdniao", "ZTO", "created", 5)],
        scans=HAPPY,
    )
    stalled = shipment(
        "shp_c", status="IN_TRANSIT", created=2, attempts=[attempt("kdniao", "ZTO", "created", 4)], scans=HAPPY[:2]
    )
    a, b, c = (s["tracking_number"] for s in (delivered, failover, stalled))
    stages = [(s.lower(), t) for s, t in HAPPY]
    pushes = [
        push(a, stages[:1], at=10),
        push(a, stages[:3], at=14),
        push(a, stages[:2], at=14.5),  # late snapshot
        push(a, stages[:3], at=14.6, duplicate=True),
        push(a, stages, at=18),
        push(b, list(reversed(stages)), at=18),  # one shuffled snapshot with everything
        push(c, stages[:2], at=12),
    ]
    parcels = [
        {
            "carrier": "ZTO",
            "tracking_number": a,
            "order_id": "shp_a",
            "subscribed": True,
            "cancelled": False,
            "stall_after": None,
            "scans": [s for s, _ in stages],
        },
        {
            "carrier": "ZTO",
            "tracking_number": b,
            "order_id": "shp_b",
            "subscribed": True,
            "cancelled": False,
            "stall_after": None,
            "scans": [s for s, _ in stages],
        },
        {
            "carrier": "ZTO",
            "tracking_number": c,
            "order_id": "shp_c",
            "subscribed": True,
            "cancelled": False,
            "stall_after": 2,
            "scans": [s for s, _ in stages[:2]],
        },
    ]
    start = T0.timestamp()
    return {
        "version": 1,
        "run_id": "DEMO-TEST",
        "started_at": start - 8,
        "orders_started_at": start,
        "finished_at": start + 60,
        "stack_ready_seconds": 6.5,
        "settings": {"orders": 4, "probe_interval": 1.0},
        "orders": [
            {"index": 0, "order_id": "ORD-shp_a", "status_code": 202, "shipment_id": "shp_a", "stall_after": None},
            {
                "index": 1,
                "order_id": "ORD-shp_b",
                "status_code": 202,
                "shipment_id": "shp_b",
                "stall_after": None,
                "resend": True,
                "replay_status_code": 200,
                "replay_shipment_id": "shp_b",
            },
            {"index": 2, "order_id": "ORD-shp_c", "status_code": 202, "shipment_id": "shp_c", "stall_after": 2},
            {
                "index": 3,
                "order_id": "ORD-bad",
                "status_code": 422,
                "bad_input": "phone_with_letter",
                "error": {
                    "error": "validation_failed",
                    "field": "receiver.phone",
                    "message": "String should match pattern",
                },
            },
        ],
        "chaos": [
            {"at": start + 2, "kind": "outage_on", "provider": "sf"},
            {"at": start + 20, "kind": "outage_off", "provider": "sf"},
        ],
        "observations": {
            "shp_a": [
                [start + 1, "PENDING", None],
                [start + 5, "WAYBILL_CREATED", None],
                [start + 15, "ARRIVED_AT_DESTINATION_CITY", iso(14)],
                [start + 20, "DELIVERED", iso(18)],
            ],
            "shp_b": [[start + 2, "PENDING", None], [start + 20, "DELIVERED", iso(18)]],
            "shp_c": [[start + 3, "WAYBILL_CREATED", None], [start + 13, "IN_TRANSIT", iso(12)]],
        },
        "first_seen": {"shp_a": {china(10): start + 11.0, china(14): start + 15.5, china(18): start + 19.0}},
        "sweeps": [
            {"at": start + 30, "due": 1, "alerted": 1, "already_alerted": 0},
            {"at": start + 34, "due": 1, "alerted": 0, "already_alerted": 1},
        ],
        "shipments": {s["shipment_id"]: s for s in (delivered, failover, stalled)},
        "alerts": [alert_line(circuit_text(), 4), alert_line(stall_text("shp_c", c), 33)],
        "sandboxes": {
            "kdniao": {"parcels": parcels, "pushes": pushes, "requests": []},
            "sf": {"parcels": [], "pushes": [], "requests": []},
        },
        "metrics": {
            "aws_calls_by_function": {
                "ShipmentsApiFunction": {
                    "dynamodb.TransactWriteItems": 3,
                    "dynamodb.GetItem": 40,
                    "dynamodb.Query": 40,
                    "sqs.SendMessage": 3,
                },
                "WaybillTasksFunction": {"dynamodb.GetItem": 12, "dynamodb.UpdateItem": 6, "s3.PutObject": 3},
            },
            "http_requests": {"GET /v1/shipments/{shipment_id}": 40, "POST /v1/shipments": 4},
            "lambda": {"ShipmentsApiFunction": {"invocations": 44}, "WaybillTasksFunction": {"invocations": 15}},
        },
        "callbacks": 14,
    }


@pytest.fixture
def alert_of() -> Callable[[str, str], dict[str, Any]]:
    texts = {"stall": lambda sid: stall_text(sid, "73100000000301"), "failed": failed_text}
    return lambda kind, sid: alert_line(texts[kind](sid), 40)
