"""The end of the demo: the summary tables in the terminal (rich) and the HTML report (inline SVG)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sandbox.demo.analysis import LatencyFigures, Summary
from sandbox.demo.charts import funnel_chart, histogram, timeline_chart
from sandbox.demo.scorecards import section as scorecard_section


def _named(parcels: list[str], shown: int = 8) -> str:
    """A count and the parcels it counts (shipment ids), so an extra alert is named, not only counted."""
    if not parcels:
        return "0"
    more = f", and {len(parcels) - shown} more" if len(parcels) > shown else ""
    return f"{len(parcels)}: {', '.join(parcels[:shown])}{more}"


def _fmt(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.2f} {unit}"


Rows = list[tuple[str, ...]]


def _rows(summary: Summary) -> dict[str, Rows]:
    """Every table of the summary as rows of text (shared by the terminal and the HTML report)."""
    p = summary.pushes
    rejected_reasons: Rows = [
        (str(r["order_id"]), str(r["field"] or "-"), str(r["reason"] or "-"), str(r.get("planted") or "-"))
        for r in summary.rejected
    ]
    aws: Rows = [(service, f"{n:.2f}") for service, n in summary.aws_per_shipment.items()]
    aws.append(("total", f"{sum(summary.aws_per_shipment.values()):.2f}"))
    failover_reasons: dict[tuple[str, str, str], int] = {}
    for f in summary.failovers:
        key = (f["from"], f["to"], str(f["reason"]))
        failover_reasons[key] = failover_reasons.get(key, 0) + 1
    return {
        "orders": [
            ("orders sent by the OMS", str(summary.orders_sent)),
            ("accepted (202)", str(summary.accepted)),
            ("rejected with 422 (bad input)", str(len(summary.rejected))),
            ("sent twice (OMS retry) -> same shipment", f"{summary.replays_same_shipment}/{summary.replays}"),
            ("not answered (transport errors)", str(len(summary.send_errors))),
        ],
        "waybills": [(provider, carrier, str(n)) for (provider, carrier), n in sorted(summary.waybills.items())],
        "failovers": [(a, b, reason, str(n)) for (a, b, reason), n in sorted(failover_reasons.items())],
        "rejected": rejected_reasons,
        "statuses": [(status, str(n)) for status, n in summary.final_statuses.most_common()],
        "stalls": [
            ("parcels the carriers stopped moving", str(len(summary.stalled))),
            ("stall alerts raised", str(summary.stall_alerts)),
            (
                "other stall alerts: not planted, genuinely late (no newer scan pushed before the alert)",
                _named(summary.late_stalls),
            ),
            (
                (
                    "other stall alerts: not planted, the local stack's lag (a newer scan was pushed before the alert, "
                    "not yet folded: the machine fell behind the demo's accelerated clock)"
                ),
                _named(summary.lagged_stalls),
            ),
            ("stall sweeps triggered by the demo", str(summary.extra.get("sweeps", 0))),
            *[(f"alerts: {kind}", str(n)) for kind, n in sorted(summary.alerts.items())],
        ],
        "pushes": [
            ("pushes sent by the carriers", str(p.get("sent", 0))),
            ("duplicate pushes", str(p.get("duplicates", 0))),
            ("pushes arriving out of order", str(p.get("out_of_order", 0))),
            ("snapshots with shuffled scans", str(p.get("shuffled_snapshots", 0))),
            ("distinct scans pushed / events stored", f"{p.get('distinct_scans', 0)} / {p.get('stored_events', 0)}"),
            ("timelines identical to the scans pushed", f"{p.get('timelines_matching', 0)}/{p.get('timelines', 0)}"),
            *[
                (f"pushes NOT accepted: {what}", str(n))
                for what, n in (summary.extra.get("push_failures") or {}).items()
            ],
        ],
        "aws": aws,
        "lambda": [(function, f"{n:.2f}") for function, n in summary.lambda_per_shipment.items()],
        "latency": [
            (f.name, str(len(f.samples)), _fmt(f.p50), _fmt(f.p95), _fmt(f.max), f.note)
            for f in (summary.order_to_waybill, summary.push_to_visible, summary.webhook_ack)
        ],
        "invariants": [
            ("PASS" if r.ok else "FAIL", r.name, str(r.checked), "; ".join(r.problems[:3])) for r in summary.invariants
        ],
        "selection": _selection_rows(summary.extra.get("selection") or {}),
    }


def _selection_rows(figures: dict[str, Any]) -> Rows:
    """The smart strategy's choices (none under the rules): parcels per carrier and why, the saving against
    the fixed rules and the promises the choice could not keep."""
    if not figures.get("shipments"):
        return []
    rows: Rows = [(str(carrier), str(reason), str(n)) for carrier, reason, n in figures["by_choice"]]
    rows += [(f"{carrier} passed over", str(why), str(n)) for carrier, why, n in figures.get("passed_over") or []]
    saving = int(figures.get("saving_fen") or 0) / 100
    rows.append(("saving against the fixed rules", f"tariff prices of {figures['priced']} parcels", f"{saving:.2f}"))
    rows.append(("promise not met (fastest chosen)", "flagged", str(figures.get("promise_not_met", 0))))
    return rows


_HEADERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "orders": ("Orders", ("", "count")),
    "waybills": ("Waybills per provider and carrier", ("provider", "carrier", "waybills")),
    "failovers": ("Failovers", ("first choice", "waybill from", "why", "shipments")),
    "rejected": ("Rejected orders", ("order", "field", "reason", "planted fault")),
    "statuses": ("Final statuses", ("status", "shipments")),
    "stalls": ("Stalls and alerts", ("", "count")),
    "pushes": ("Duplicates and out-of-order pushes absorbed", ("", "count")),
    "aws": ("AWS requests per shipment, by service", ("service", "requests / shipment")),
    "lambda": ("Lambda invocations per shipment", ("function", "invocations / shipment")),
    "latency": ("Latency", ("measure", "samples", "p50", "p95", "max", "how")),
    "invariants": ("Invariants", ("", "invariant", "checked", "problems")),
    "selection": ("Smart carrier selection", ("carrier", "why", "parcels / CNY")),
}


# ------------------------------------------------------------------------------------------ terminal


def terminal_summary(summary: Summary, report_path: str | None = None) -> Group:
    rows = _rows(summary)
    tables = []
    for key, (title, headers) in _HEADERS.items():
        if key == "invariants":
            continue
        if not rows[key]:
            continue
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, min_width=len(title) + 2)
        for n, header in enumerate(headers):
            table.add_column(
                header,
                justify="right" if n and key not in {"rejected", "latency"} else "left",
                overflow="fold",
                max_width=60,
            )
        for row in rows[key]:
            table.add_row(*row)
        tables.append(table)
    verdict = Text()
    for result in summary.invariants:
        verdict.append(("PASS  " if result.ok else "FAIL  "), style="bold green" if result.ok else "bold red")
        verdict.append(result.name)
        verdict.append(f"  ({result.checked} checked)\n" if result.ok else "\n")
        for problem in result.problems[:8]:
            verdict.append(f"      {problem}\n", style="red")
    footer = Text(
        f"ran in {summary.duration_seconds:.0f} s (local stack ready in {summary.stack_ready_seconds:.1f} s)"
        + (f"\nHTML report: {report_path}" if report_path else ""),
        style="bold",
    )
    links = Text()
    for link in summary.extra.get("tracking_links") or []:
        links.append(f"  {link['status']:<22} {link['order_id']:<22} ", style="dim")
        links.append(f"{link['url']}\n")
    if links:
        links = Text(f"customer tracking pages ({TRACKING_LINKS_NOTE}):\n", style="bold") + links
        return Group(
            *tables, Panel(verdict, title="invariants", border_style="green" if summary.ok else "red"), links, footer
        )
    return Group(*tables, Panel(verdict, title="invariants", border_style="green" if summary.ok else "red"), footer)


# ------------------------------------------------------------------------------------------ HTML

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI','PingFang SC','Noto Sans CJK SC',sans-serif;margin:0;
color:#1a1a1a;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5b616b}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.card{background:#fff;border-radius:8px;padding:10px 14px;min-width:120px;box-shadow:0 1px 2px #0001}
.card b{display:block;font-size:22px}.verdict{padding:12px 16px;border-radius:8px;margin:12px 0;background:#fff}
.pass{border-left:6px solid #2a9d8f}.fail{border-left:6px solid #d1495b}
table{border-collapse:collapse;background:#fff;margin:6px 0 14px;box-shadow:0 1px 2px #0001}
th,td{padding:5px 10px;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
th{cursor:pointer;background:#fafbfc;user-select:none}
th.sorted-asc:after{content:' ▲'}th.sorted-desc:after{content:' ▼'}
td.num{text-align:right;font-variant-numeric:tabular-nums}.grid{display:flex;flex-wrap:wrap;gap:16px}
.chart{background:#fff;border-radius:8px;box-shadow:0 1px 2px #0001;max-width:100%;height:auto}
.bar.hover{opacity:.6}.ok{color:#2a9d8f;font-weight:600}.bad{color:#d1495b;font-weight:600}
"""

_SCRIPT = """
(function(){
  function cell(row, i){var c=row.children[i];return c?c.textContent.trim():'';}
  function num(v){var n=parseFloat(v.replace(/[^0-9.\\-]/g,''));return isNaN(n)?null:n;}
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th, i){
      th.addEventListener('click', function(){
        var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
        var asc=!th.classList.contains('sorted-asc');
        table.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
        th.classList.add(asc?'sorted-asc':'sorted-desc');
        rows.sort(function(a,b){var x=cell(a,i),y=cell(b,i),nx=num(x),ny=num(y);
          var r=(nx!==null&&ny!==null)?nx-ny:x.localeCompare(y);return asc?r:-r;});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  document.querySelectorAll('svg.chart .bar').forEach(function(bar){
    bar.addEventListener('mouseenter',function(){bar.classList.add('hover');});
    bar.addEventListener('mouseleave',function(){bar.classList.remove('hover');});
  });
  document.documentElement.setAttribute('data-charts', String(document.querySelectorAll('svg.chart').length));
  document.documentElement.setAttribute('data-ready', '1');
})();
"""


TRACKING_LINKS_NOTE = "served by the run's local stack: they answer while it runs"

TIMELINE_INTRO = (
    "<h2>Failover timeline</h2><p class='sub'>Waybills issued per provider in each time slice; failed and "
    "circuit-skipped attempts below the axis; dashed lines mark the outage and the circuit breaker.</p>"
)
TABLE_ORDER = (
    "latency",
    "orders",
    "waybills",
    "selection",
    "failovers",
    "rejected",
    "statuses",
    "stalls",
    "pushes",
    "aws",
    "lambda",
    "invariants",
)


def _table(key: str, rows: Sequence[tuple[str, ...]]) -> str:
    title, headers = _HEADERS[key]
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for n, value in enumerate(row):
            numeric = n > 0 and value.replace(".", "", 1).replace(" s", "").replace("/", "").replace(" ", "").isdigit()
            cls = " class='num'" if numeric else ""
            if key == "invariants" and n == 0:
                cls = " class='ok'" if value == "PASS" else " class='bad'"
            cells.append(f"<td{cls}>{escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        body.append(f"<tr><td colspan='{len(headers)}'>none</td></tr>")
    return (
        f"<h2>{escape(title)}</h2><table class='sortable' data-table='{key}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _latency_chart(figures: LatencyFigures, chart: str) -> str:
    return histogram(figures.samples, chart=chart, title=f"{figures.name} (seconds)")


def html_report(summary: Summary, *, generated_at: datetime | None = None) -> str:
    rows = _rows(summary)
    generated = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    delivered = summary.final_statuses.get("DELIVERED", 0)
    cards = [
        ("orders", summary.orders_sent),
        ("accepted", summary.accepted),
        ("rejected (422)", len(summary.rejected)),
        ("waybills", sum(summary.waybills.values())),
        ("failovers", len(summary.failovers)),
        ("delivered", delivered),
        ("stalls alerted", summary.stall_alerts),
        ("duplicate pushes absorbed", summary.pushes.get("duplicates", 0)),
    ]
    verdict_rows = "".join(
        f"<li><span class='{'ok' if r.ok else 'bad'}'>{'PASS' if r.ok else 'FAIL'}</span> {escape(r.name)}"
        + (f" ({r.checked} checked)" if r.ok else f": {escape('; '.join(r.problems[:5]))}")
        + "</li>"
        for r in summary.invariants
    )
    outage = summary.outage
    outage_text = (
        f"SF Express's API was down from {outage['outage_on']:.0f} s to {outage['outage_off']:.0f} s into the day"
        if {"outage_on", "outage_off"} <= outage.keys()
        else "no outage was injected"
    )
    subtitle = (
        f"<p class='sub'>run {escape(summary.run_id)} · generated {generated} · ran in "
        f"{summary.duration_seconds:.0f} s on the local stack (moto + carrier sandboxes) · {escape(outage_text)}</p>"
    )
    headline = "All invariants hold" if summary.ok else "An invariant failed"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>parcelhub demo report - {escape(summary.run_id)}</title><style>{_STYLE}</style></head><body><main>",
        "<h1>parcelhub demo: a day of DTC shipping</h1>",
        subtitle,
        f"<div class='verdict {'pass' if summary.ok else 'fail'}'><b>{headline}</b><ul>{verdict_rows}</ul></div>",
        "<div class='cards'>" + "".join(f"<div class='card'><b>{v}</b>{escape(k)}</div>" for k, v in cards) + "</div>",
        "<h2>Status funnel</h2>",
        funnel_chart(summary.funnel),
        TIMELINE_INTRO,
        timeline_chart(summary.timeline),
        "<h2>Latency distribution</h2><div class='grid'>",
        _latency_chart(summary.order_to_waybill, "latency-order-to-waybill"),
        _latency_chart(summary.push_to_visible, "latency-push-to-visible"),
        "</div>",
    ]
    for key in TABLE_ORDER:
        if key == "selection" and not rows[key]:
            continue  # the rules strategy: nothing chosen from data
        parts.append(_table(key, rows[key]))
    links = summary.extra.get("tracking_links") or []
    if links:
        parts.append(
            f"<h2>Customer tracking pages</h2><p class='sub'>What the brand sends its customers; {TRACKING_LINKS_NOTE}."
            "</p><ul data-section='tracking-links'>"
            + "".join(
                f"<li>{escape(link['status'])} · order {escape(link['order_id'])}: "
                f"<a href='{escape(link['url'])}'>{escape(link['url'])}</a></li>"
                for link in links
            )
            + "</ul>"
        )
    scorecards = summary.extra.get("scorecards")
    if scorecards and "error" not in scorecards:
        parts.append(scorecard_section(scorecards))
    elif scorecards:
        parts.append(f"<h2>Carrier scorecards</h2><p class='bad'>not read: {escape(str(scorecards['error']))}</p>")
    alerts = summary.extra.get("alert_titles") or []
    parts.append("<h2>Ops alerts raised</h2><ul>" + "".join(f"<li>{escape(t)}</li>" for t in alerts[:100]) + "</ul>")
    parts.append(f"<script>{_SCRIPT}</script></main></body></html>")
    return "\n".join(parts)


def summary_json(summary: Summary) -> dict[str, Any]:
    """The headline figures as JSON (for tooling and tests)."""
    return {
        "ok": summary.ok,
        "invariants": {r.name: r.ok for r in summary.invariants},
        "orders_sent": summary.orders_sent,
        "accepted": summary.accepted,
        "rejected": len(summary.rejected),
        "failovers": len(summary.failovers),
        "final_statuses": dict(summary.final_statuses),
        "stalled": len(summary.stalled),
        "stall_alerts": summary.stall_alerts,
        "latency": {
            f.name: {"p50": f.p50, "p95": f.p95, "max": f.max, "samples": len(f.samples)}
            for f in (summary.order_to_waybill, summary.push_to_visible, summary.webhook_ack)
        },
        "duration_seconds": summary.duration_seconds,
        "selection": summary.extra.get("selection"),
    }
