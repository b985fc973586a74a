"""The scorecard report: the API's rows drawn as inline SVG charts in one self-contained HTML file."""

from __future__ import annotations

import re
from typing import Any

from sandbox.demo.scorecards import page, section


def row(carrier: str, volume: int, **figures: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "carrier": carrier, "level": "carrier", "origin": None, "destination": None, "period": "all",
        "volume": volume, "delivered": volume - 1, "returned": 1, "lost": 0,
        "pickup_hours_p50": 3.0, "pickup_hours_p90": 9.0, "transit_hours_p50": 30.0, "transit_hours_p90": 52.0,
        "on_time_rate": 0.9, "first_attempt_rate": 0.95, "exception_rate": 0.1,
        "exception_rates": {"RECIPIENT_UNREACHABLE": 0.1}, "return_rate": 0.05, "cost_per_parcel": "12.40",
    }  # fmt: skip
    return base | figures


DATA = {
    "fetched_at": "2026-11-30T12:00:00+00:00",
    "weeks": "2026-W46..2026-W48",
    "carrier": [row("ZTO", 40), row("SF", 10, on_time_rate=0.7, exception_rates={})],
    "lane": [
        row("ZTO", 30, level="lane", origin="浙江省/杭州市", destination="广东省/广州市"),
        row("SF", 10, level="lane", origin="浙江省/杭州市", destination="北京市/北京市", on_time_rate=0.7),
    ],
    "destination": [],
    "weekly": [
        row("ZTO", 15, period="2026-W47"),
        row("ZTO", 25, period="2026-W48"),
        row("SF", 10, period="2026-W48"),
    ],
}


def test_the_section_draws_every_chart_from_the_rows() -> None:
    html = section(DATA)
    charts = re.findall(r"data-chart='([^']+)'", html)
    assert charts == ["ontime-carrier", "ontime-lane", "transit", "exceptions", "volume-week"]
    assert "ZTO 杭州市→广州市" in html
    assert "<title>ZTO: 90.0% (39 delivered)</title>" in html
    assert "<title>2026-W48 SF: 10</title>" in html
    assert "<title>ZTO · RECIPIENT_UNREACHABLE: 4</title>" in html  # 10 % of 40 parcels
    assert html.count("<tr>") == 1 + 2  # the lane table: header + 2 lanes


def test_the_page_is_self_contained() -> None:
    html = page(DATA, "http://127.0.0.1:4566")
    assert html.startswith("<!doctype html>")
    assert not re.search(r"(src|href)=['\"]https?://", html)
    assert html.count("<svg") == 5


def test_no_parcels_yet_draws_empty_charts() -> None:
    html = section({"carrier": [], "lane": [], "weekly": [], "weeks": "2026-W48..2026-W48"})
    assert html.count("no delivered parcels yet") == 3
    assert html.count("no delivered parcel had a promise") == 2
