"""The live terminal view while the demo runs (rich): progress, statuses, failovers, alerts as they fire."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from sandbox.demo.runner import Demo

STATUS_ORDER = (
    "PENDING",
    "WAYBILL_CREATED",
    "PICKED_UP",
    "IN_TRANSIT",
    "ARRIVED_AT_DESTINATION_CITY",
    "OUT_FOR_DELIVERY",
    "AVAILABLE_FOR_PICKUP",
    "DELIVERED",
    "DELIVERY_FAILED",
    "EXCEPTION",
    "WAYBILL_FAILED",
)
ALERT_STYLE = {"stall": "yellow", "waybill_failed": "red", "circuit_opened": "magenta"}


def figures(demo: Demo) -> dict[str, int]:
    state = demo.state
    with state.lock:
        orders = list(state.orders)
        latest = dict(state.latest)
        alerts = list(state.alerts)
    accepted = [o["shipment_id"] for o in orders if o.get("shipment_id")]
    views = [latest.get(sid) or {} for sid in accepted]
    return {
        "planned": len(demo.plan),
        "sent": len(orders),
        "accepted": len(accepted),
        "rejected": sum(1 for o in orders if o.get("status_code") == 422),
        "waybills": sum(1 for v in views if v.get("tracking_number")),
        "delivered": sum(1 for v in views if v.get("status") == "DELIVERED"),
        "failovers": sum(
            1 for v in views if any(a.get("outcome") != "created" for a in v.get("waybill_attempts") or [])
        ),
        "stall_alerts": sum(1 for a in alerts if a["kind"] == "stall"),
        "stalls_planned": len(demo.state.stall_planned),
        "alerts": len(alerts),
    }


def _bar(label: str, done: int, total: int, style: str) -> Table:
    row = Table.grid(padding=(0, 1))
    row.add_column(width=18)
    row.add_column(width=44)
    row.add_column()
    bar = ProgressBar(total=max(total, 1), completed=done, width=44, complete_style=style)
    row.add_row(label, bar, f"{done}/{total}")
    return row


def render(demo: Demo) -> RenderableType:
    f = figures(demo)
    counts = Counter(demo.state.counts())
    elapsed = time.time() - demo.started_at
    header = Text.assemble(
        (f"{elapsed:5.0f} s  ", "bold"),
        (demo.state.phase, "bold red" if demo.state.outage_active else "bold cyan"),
    )
    statuses = Table(title="shipments by status", title_justify="left", show_edge=False, pad_edge=False)
    statuses.add_column("status")
    statuses.add_column("n", justify="right")
    for status in STATUS_ORDER:
        if counts.get(status):
            statuses.add_row(status, str(counts[status]))
    facts = Table(title="what the hub handled", title_justify="left", show_edge=False, pad_edge=False)
    facts.add_column("")
    facts.add_column("n", justify="right")
    facts.add_row("rejected by the API (422)", str(f["rejected"]))
    facts.add_row("failovers to a backup carrier", str(f["failovers"]))
    facts.add_row("stalled parcels alerted", f"{f['stall_alerts']}/{f['stalls_planned']}")
    facts.add_row("ops alerts", str(f["alerts"]))
    columns = Table.grid(padding=(0, 4))
    columns.add_row(statuses, facts)
    with demo.state.lock:
        recent = list(demo.state.alerts[-6:])
    alert_lines = Text()
    for alert in recent:
        at = (alert.get("time") or time.time()) - demo.started_at
        alert_lines.append(f"{at:5.0f} s  ", style="dim")
        alert_lines.append(alert["title"][:110] + "\n", style=ALERT_STYLE.get(alert["kind"], "white"))
    return Panel(
        Group(
            header,
            Text(""),
            _bar("orders sent", f["sent"], f["planned"], "cyan"),
            _bar("waybills issued", f["waybills"], max(f["accepted"], 1), "blue"),
            _bar("delivered", f["delivered"], max(f["accepted"] - f["stalls_planned"], 1), "green"),
            Text(""),
            columns,
            Panel(alert_lines or Text("none yet", style="dim"), title="ops alerts as they fire", border_style="yellow"),
        ),
        title="parcelhub demo - a day of DTC shipping on the local stack",
        border_style="cyan",
    )


def plain_line(demo: Demo) -> str:
    """One status line for terminals that cannot redraw (CI logs)."""
    f = figures(demo)
    return (
        f"[{time.time() - demo.started_at:5.0f} s] {demo.state.phase} | sent {f['sent']}/{f['planned']} "
        f"waybills {f['waybills']} delivered {f['delivered']} rejected {f['rejected']} failovers {f['failovers']} "
        f"stall alerts {f['stall_alerts']} alerts {f['alerts']}"
    )
