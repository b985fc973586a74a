"""``GET /v1/analytics/scorecards`` through the OMS API handler on moto: facts recorded by the real
scorecards adapter, figures read back through the API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from functions.shipments_api.handler import lambda_handler
from parcelhub import composition
from parcelhub.domain.lanes import DeliveryFact, Lane, Outcome
from parcelhub.domain.models import CHINA_TZ
from tests.conftest import LOCAL_API_KEY, HubAws

pytestmark = pytest.mark.integration

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=CHINA_TZ)  # 2026-W48
HZ_GZ = Lane("浙江省", "杭州市", "广东省", "广州市")
HZ_BJ = Lane("浙江省", "杭州市", "北京市", "北京市")


class Context:
    function_name = "parcelhub-test-shipments-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:parcelhub-test-shipments-api"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def get(query: str, *, key: str | None = LOCAL_API_KEY) -> tuple[int, Any]:
    path = "/v1/analytics/scorecards"
    headers = {"host": "api.example.com"} | ({"x-api-key": key} if key else {})
    event = {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(pair.split("=", 1) for pair in query.split("&")) if query else None,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "t"},
            "requestId": "id",
            "routeKey": f"GET {path}",
            "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1796000000000,
        },
        "isBase64Encoded": False,
    }
    response = lambda_handler(event, Context())
    return response["statusCode"], json.loads(response.get("body") or "null")


def fact(
    n: int,
    *,
    carrier: str = "ZTO",
    lane: Lane = HZ_GZ,
    transit_h: float = 30,
    pickup_h: float = 4,
    outcome: Outcome = Outcome.DELIVERED,
    late: bool = False,
    attempts: int = 1,
    reasons: tuple[str, ...] = (),
    cost_fen: int = 1600,
) -> DeliveryFact:
    created = MONDAY + timedelta(hours=n)
    picked = created + timedelta(hours=pickup_h)
    delivered = picked + timedelta(hours=transit_h) if outcome is Outcome.DELIVERED else None
    ended = delivered or picked + timedelta(hours=100)
    return DeliveryFact(
        shipment_id=f"shp_{carrier}_{n}",
        carrier=carrier,
        provider="kdniao" if carrier == "ZTO" else "sf",
        service="standard",
        lane=lane,
        outcome=outcome,
        created_at=created,
        picked_up_at=picked,
        delivered_at=delivered,
        ended_at=ended,
        attempts=attempts if delivered else 0,
        exception_reasons=reasons,
        promised_latest=(ended - timedelta(hours=1)) if late else (ended + timedelta(hours=12)),
        cost_fen=cost_fen,
    )


@pytest.fixture
def recorded(hub_aws: HubAws) -> None:
    scorecards = composition.scorecards()
    facts = [
        fact(1, transit_h=26),
        fact(2, transit_h=30),
        fact(3, transit_h=50, late=True, attempts=2, reasons=("RECIPIENT_UNREACHABLE",)),
        fact(4, outcome=Outcome.RETURNED, reasons=("REFUSED",), cost_fen=2000),
        fact(5, carrier="SF", lane=HZ_BJ, transit_h=20, pickup_h=2, cost_fen=2300),
    ]
    for f in facts:
        assert scorecards.record_fact(f)
    assert not scorecards.record_fact(facts[0])  # recorded once


def test_lane_scorecards_show_the_recorded_parcels(recorded: None) -> None:
    # When the OMS asks for the lane scorecards of week 48
    status, body = get("level=lane&period=2026-W48")
    # Then each carrier's lane shows the figures of its parcels
    assert status == 200
    rows = {(r["carrier"], r["destination"]): r for r in body["rows"]}
    assert set(rows) == {("ZTO", "广东省/广州市"), ("SF", "北京市/北京市")}
    zto = rows["ZTO", "广东省/广州市"]
    assert (zto["origin"], zto["period"], zto["volume"], zto["delivered"], zto["returned"]) == (
        "浙江省/杭州市", "2026-W48", 4, 3, 1,
    )  # fmt: skip
    assert zto["on_time_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert zto["first_attempt_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert zto["return_rate"] == 0.25
    assert zto["exception_rate"] == 0.5
    assert zto["exception_rates"] == {"RECIPIENT_UNREACHABLE": 0.25, "REFUSED": 0.25}
    assert zto["cost_per_parcel"] == "17.00"  # (3 x 16 + 20) / 4 CNY
    # transit 26, 30, 50 h: the fixed buckets put the median in 28-32 h and the p90 in 48-52 h
    assert 28 <= zto["transit_hours_p50"] <= 32
    assert 48 <= zto["transit_hours_p90"] <= 52
    assert 2 <= zto["pickup_hours_p50"] <= 6
    sf = rows["SF", "北京市/北京市"]
    assert (sf["volume"], sf["on_time_rate"], sf["cost_per_parcel"]) == (1, 1.0, "23.00")


def test_filters_levels_and_periods(recorded: None) -> None:
    status, body = get("level=destination&destination=广东省")
    assert status == 200
    assert [(r["carrier"], r["destination"], r["volume"], r["period"]) for r in body["rows"]] == [
        ("ZTO", "广东省", 4, "all")
    ]
    _, body = get("level=carrier&carrier=SF&period=2026-W47..2026-W48")
    assert [(r["carrier"], r["volume"], r["period"]) for r in body["rows"]] == [("SF", 1, "2026-W47..2026-W48")]
    _, body = get("level=province&origin=浙江省&period=2026-W47..2026-W48&by_week=true")
    assert sorted((r["carrier"], r["destination"], r["period"]) for r in body["rows"]) == [
        ("SF", "北京市", "2026-W48"),
        ("ZTO", "广东省", "2026-W48"),
    ]
    _, body = get("level=lane&period=2026-W47")
    assert body["rows"] == []


def test_the_scorecards_need_a_key_and_valid_filters(recorded: None) -> None:
    assert get("level=lane", key=None)[0] == 401
    assert get("level=lane", key="wrong")[0] == 401
    status, body = get("period=2026-48")
    assert (status, body["fields"][0]["field"]) == (422, "period")
    status, body = get("period=2026-W99")
    assert (status, body["fields"][0]["field"]) == (422, "period")


def test_every_query_the_document_allows_is_answered(recorded: None) -> None:
    # a filter on a part the level's rows lack keeps no row; a range given backwards is the same range
    assert get("level=carrier&origin=浙江省") == (200, {"level": "carrier", "period": "all", "rows": []})
    assert get("period=2026-W10..2026-W01")[0] == 200
