"""The scorecard report: carrier scorecards read from ``GET /v1/analytics/scorecards`` and drawn as one
self-contained HTML file (inline SVG, no CDN), or as a section of the demo's report.

    make report                                   # the running local stack (var/local-stack.json)
    python -m sandbox.demo.scorecards --api https://.../prod --key "$KEY" --out var/scorecards.html

Charts: on-time rate by carrier and by lane, transit time (p50-p90, picked up -> delivered) by carrier and
lane, exception reasons by carrier, parcels per ISO week by carrier; then the lane table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import requests

from sandbox.demo.charts import FAILED, FONT, MUTED, PALETTE, _svg

WEEKS = 12
TOP_LANES = 12
_COLOURS = ("#2f6fde", "#1a1a1a", "#2a9d8f", "#edae49", "#d1495b", "#6a4c93", "#8a8f98")


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def fetch(api: str, headers: Mapping[str, str], *, today: date | None = None, timeout: float = 30) -> dict[str, Any]:
    """Everything the report draws, from the API: carrier, lane and destination rows for all time, and
    carrier rows per week for the last :data:`WEEKS` weeks."""
    today = today or datetime.now(UTC).date()
    weeks = f"{_week(today - timedelta(weeks=WEEKS - 1))}..{_week(today)}"
    queries = {
        "carrier": "level=carrier",
        "lane": "level=lane",
        "destination": "level=destination",
        "weekly": f"level=carrier&period={weeks}&by_week=true",
    }
    data: dict[str, Any] = {"fetched_at": datetime.now(UTC).isoformat(timespec="seconds"), "weeks": weeks}
    for name, query in queries.items():
        reply = requests.get(
            f"{api.rstrip('/')}/v1/analytics/scorecards?{query}", headers=dict(headers), timeout=timeout
        )
        reply.raise_for_status()
        data[name] = reply.json()["rows"]
    return data


# ------------------------------------------------------------------------------------------ charts


def _colour(carrier: str, carriers: Sequence[str]) -> str:
    named = {"SF": PALETTE["sf"], "ZTO": PALETTE["kdniao"]}
    return named.get(carrier) or _COLOURS[(carriers.index(carrier) + 2) % len(_COLOURS)]


def _empty(chart: str, title: str, message: str = "no delivered parcels yet") -> str:
    text = f"<text x='180' y='40' text-anchor='middle' {FONT} fill='{MUTED}'>{escape(message)}</text>"
    return _svg(360, 70, [text], chart=chart, title=title)


def rate_bars(items: Sequence[tuple[str, float | None, str]], *, chart: str, title: str) -> str:
    """One horizontal bar per item: a rate from 0 to 100 %, with a note (the parcels it rests on)."""
    items = [i for i in items if i[1] is not None]
    if not items:  # on-time needs a promise: made at waybill creation by the delivery estimate
        return _empty(chart, title, "no delivered parcel had a promise")
    width, row, left = 720, 26, 230
    plot = width - left - 150
    body = [f"<line x1='{left}' y1='4' x2='{left}' y2='{8 + row * len(items)}' stroke='{MUTED}'/>"]
    for n, (label, rate, note) in enumerate(items):
        y, value = 6 + n * row, float(rate or 0)
        colour = "#2a9d8f" if value >= 0.9 else ("#edae49" if value >= 0.75 else FAILED)
        body.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end' {FONT}>{escape(label)}</text>")
        body.append(
            f"<rect class='bar' x='{left}' y='{y + 2}' width='{plot * value:.1f}' height='{row - 8}' rx='3' "
            f"fill='{colour}'><title>{escape(label)}: {100 * value:.1f}% ({escape(note)})</title></rect>"
        )
        body.append(
            f"<text x='{left + plot * value + 6:.1f}' y='{y + 15}' {FONT}>{100 * value:.0f}% · {escape(note)}</text>"
        )
    return _svg(width, 14 + row * len(items), body, chart=chart, title=title)


def range_bars(items: Sequence[tuple[str, float | None, float | None]], *, chart: str, title: str) -> str:
    """Transit times: a bar from p50 to p90 with the median marked, on one hour axis."""
    items = [i for i in items if i[1] is not None and i[2] is not None]
    if not items:
        return _empty(chart, title)
    width, row, left = 720, 26, 230
    plot = width - left - 110
    top = max(float(p90 or 0) for _, _, p90 in items) or 1.0
    body = []
    for n, (label, p50, p90) in enumerate(items):
        y = 6 + n * row
        x50, x90 = left + plot * float(p50 or 0) / top, left + plot * float(p90 or 0) / top
        body.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end' {FONT}>{escape(label)}</text>")
        body.append(
            f"<line x1='{left}' y1='{y + 10}' x2='{x50:.1f}' y2='{y + 10}' stroke='{MUTED}' stroke-dasharray='2 3'/>"
        )
        body.append(
            f"<rect class='bar' x='{x50:.1f}' y='{y + 3}' width='{max(x90 - x50, 2):.1f}' height='{row - 10}' rx='3' "
            f"fill='#2f6fde' fill-opacity='0.55'><title>{escape(label)}: p50 {p50} h, p90 {p90} h</title></rect>"
        )
        body.append(
            f"<line x1='{x50:.1f}' y1='{y + 1}' x2='{x50:.1f}' y2='{y + row - 5}' stroke='#1a1a1a' stroke-width='2'/>"
        )
        body.append(f"<text x='{x90 + 6:.1f}' y='{y + 15}' {FONT}>{p50} / {p90} h</text>")
    axis = 10 + row * len(items)
    body.append(f"<line x1='{left}' y1='{axis}' x2='{left + plot}' y2='{axis}' stroke='{MUTED}'/>")
    for frac in (0, 0.5, 1):
        body.append(
            f"<text x='{left + plot * frac:.1f}' y='{axis + 14}' text-anchor='middle' {FONT}>{top * frac:.0f} h</text>"
        )
    return _svg(width, axis + 22, body, chart=chart, title=title)


def count_bars(items: Sequence[tuple[str, int]], *, chart: str, title: str) -> str:
    """Horizontal bars of counts (exception reasons)."""
    if not items:
        return _empty(chart, title)
    width, row, left = 720, 24, 300
    top = max(count for _, count in items) or 1
    plot = width - left - 60
    body = []
    for n, (label, count) in enumerate(items):
        y, bar = 6 + n * row, plot * count / top
        body.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end' {FONT}>{escape(label)}</text>")
        body.append(
            f"<rect class='bar' x='{left}' y='{y + 3}' width='{bar:.1f}' height='{row - 8}' rx='3' fill='{FAILED}' "
            f"fill-opacity='0.8'><title>{escape(label)}: {count}</title></rect>"
        )
        body.append(f"<text x='{left + bar + 6:.1f}' y='{y + 15}' {FONT}>{count}</text>")
    return _svg(width, 12 + row * len(items), body, chart=chart, title=title)


def weekly_bars(rows: Sequence[Mapping[str, Any]], weeks: Sequence[str], *, chart: str, title: str) -> str:
    """Parcels per ISO week, stacked by carrier."""
    if not rows:
        return _empty(chart, title)
    carriers = sorted({str(r["carrier"]) for r in rows})
    volume = {(str(r["period"]), str(r["carrier"])): int(r["volume"]) for r in rows}
    width, height, left, bottom = 760, 240, 40, 40
    plot_w, plot_h = width - left - 120, height - bottom - 16
    top = max(sum(volume.get((w, c), 0) for c in carriers) for w in weeks) or 1
    step = plot_w / max(len(weeks), 1)
    body = [f"<line x1='{left}' y1='{16 + plot_h}' x2='{left + plot_w}' y2='{16 + plot_h}' stroke='{MUTED}'/>"]
    body.append(f"<text x='{left - 6}' y='22' text-anchor='end' {FONT}>{top}</text>")
    for i, week in enumerate(weeks):
        y = float(16 + plot_h)
        for carrier in carriers:
            count = volume.get((week, carrier), 0)
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            body.append(
                f"<rect class='bar' x='{left + i * step + 2:.1f}' y='{y:.1f}' width='{max(step - 4, 2):.1f}' "
                f"height='{h:.1f}' fill='{_colour(carrier, carriers)}'>"
                f"<title>{week} {escape(carrier)}: {count}</title></rect>"
            )
        if i % max(1, len(weeks) // 6) == 0 or i == len(weeks) - 1:
            body.append(
                f"<text x='{left + (i + 0.5) * step:.1f}' y='{height - 22}' text-anchor='middle' {FONT}>"
                f"{week[5:]}</text>"
            )
    for n, carrier in enumerate(carriers):
        y = 20 + n * 18
        body.append(
            f"<rect x='{width - 100}' y='{y - 10}' width='12' height='12' fill='{_colour(carrier, carriers)}'/>"
        )
        body.append(f"<text x='{width - 82}' y='{y}' {FONT}>{escape(carrier)}</text>")
    return _svg(width, height, body, chart=chart, title=title)


# ------------------------------------------------------------------------------------------ the section


def _lane(row: Mapping[str, Any]) -> str:
    origin = str(row.get("origin") or "").split("/")[-1]
    destination = str(row.get("destination") or "").split("/")[-1]
    return f"{row['carrier']} {origin}→{destination}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _lane_table(rows: Sequence[Mapping[str, Any]]) -> str:
    headers = ("carrier", "origin", "destination", "parcels", "pickup p50 h", "transit p50 h", "transit p90 h",
               "on time", "first attempt", "exceptions", "returns", "CNY / parcel")  # fmt: skip
    body = []
    for r in rows:
        cells = (r["carrier"], r["origin"] or "-", r["destination"] or "-", r["volume"], r["pickup_hours_p50"],
                 r["transit_hours_p50"], r["transit_hours_p90"], _pct(r["on_time_rate"]),
                 _pct(r["first_attempt_rate"]), _pct(r["exception_rate"]), _pct(r["return_rate"]),
                 r["cost_per_parcel"])  # fmt: skip
        tds = "".join(
            f"<td{' class=num' if n > 2 else ''}>{escape('-' if c is None else str(c))}</td>"
            for n, c in enumerate(cells)
        )
        body.append(f"<tr>{tds}</tr>")
    if not rows:
        body.append(f"<tr><td colspan='{len(headers)}'>none</td></tr>")
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return (
        f"<table class='sortable' data-table='scorecard-lanes'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def section(data: Mapping[str, Any]) -> str:
    """The scorecards as an HTML section (charts and the lane table)."""
    carriers: list[Mapping[str, Any]] = sorted(data.get("carrier") or [], key=lambda r: -int(r["volume"]))
    lanes: list[Mapping[str, Any]] = sorted(data.get("lane") or [], key=lambda r: -int(r["volume"]))[:TOP_LANES]
    reasons: dict[str, int] = {}
    for r in carriers:
        for reason, rate in (r.get("exception_rates") or {}).items():
            reasons[f"{r['carrier']} · {reason}"] = round(float(rate) * int(r["volume"]))
    weeks_range = str(data.get("weeks") or "")
    first, _, last = weeks_range.partition("..")
    weeks: list[str] = []
    if first and last:
        start, end = (
            date.fromisocalendar(int(first[:4]), int(first[6:]), 1),
            date.fromisocalendar(int(last[:4]), int(last[6:]), 1),
        )
        weeks = [_week(start + timedelta(weeks=i)) for i in range((end - start).days // 7 + 1)]
    total = sum(int(r["volume"]) for r in carriers)
    return "".join(
        [
            "<section data-section='scorecards'><h2>Carrier scorecards</h2>",
            (
                f"<p class='sub'>{total} parcels ended (delivered, returned, lost or cancelled after pickup), from "
                "<code>GET /v1/analytics/scorecards</code>; on time = delivered by the promised latest time; transit = "
                "first pickup scan to delivery.</p>"
            ),
            "<h3>On-time rate by carrier</h3>",
            rate_bars(
                [(str(r["carrier"]), r["on_time_rate"], f"{r['delivered']} delivered") for r in carriers],
                chart="ontime-carrier",
                title="On-time rate by carrier",
            ),
            "<h3>On-time rate by lane</h3>",
            rate_bars(
                [(_lane(r), r["on_time_rate"], f"{r['delivered']} delivered") for r in lanes],
                chart="ontime-lane",
                title="On-time rate by lane",
            ),
            "<h3>Transit time (p50 to p90, hours)</h3>",
            range_bars(
                [(str(r["carrier"]), r["transit_hours_p50"], r["transit_hours_p90"]) for r in carriers]
                + [(_lane(r), r["transit_hours_p50"], r["transit_hours_p90"]) for r in lanes],
                chart="transit",
                title="Transit time by carrier and lane",
            ),
            "<h3>Exception reasons</h3>",
            count_bars(sorted(reasons.items(), key=lambda kv: -kv[1]), chart="exceptions", title="Exception reasons"),
            f"<h3>Parcels per week ({escape(weeks_range)})</h3>",
            weekly_bars(data.get("weekly") or [], weeks, chart="volume-week", title="Parcels per week by carrier"),
            "<h3>Lanes</h3>",
            _lane_table(sorted(data.get("lane") or [], key=lambda r: -int(r["volume"]))),
            "</section>",
        ]
    )


def page(data: Mapping[str, Any], source: str) -> str:
    """The scorecards as one self-contained HTML file."""
    from sandbox.demo.report import _SCRIPT, _STYLE

    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>parcelhub carrier scorecards</title><style>{_STYLE}</style></head><body><main>"
        "<h1>parcelhub carrier scorecards</h1>"
        f"<p class='sub'>{escape(source)} · fetched {escape(str(data.get('fetched_at', '')))}</p>"
        + section(data)
        + f"<script>{_SCRIPT}</script></main></body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo.scorecards", description=__doc__.splitlines()[0])
    parser.add_argument("--api", help="the API's base URL (default: the running local stack's)")
    parser.add_argument("--key", help="an OMS API key (default: the local stack's)")
    parser.add_argument("--local-dir", type=Path, default=Path("var"), help="the local stack's directory")
    parser.add_argument("--out", type=Path, default=Path("var/scorecards-report.html"))
    args = parser.parse_args(argv)
    api, key = args.api, args.key
    if api is None or key is None:
        handle = json.loads((args.local_dir / "local-stack.json").read_text(encoding="utf-8"))
        api, key = api or str(handle["api_url"]), key or str(handle["api_key"])
    data = fetch(api, {"x-api-key": key})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page(data, api), encoding="utf-8")
    print(f"{args.out}: {sum(int(r['volume']) for r in data['carrier'])} parcels, {len(data['lane'])} lanes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
