"""Inline SVG charts for the HTML report (no library, no CDN: the machine may be offline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

PALETTE = {"kdniao": "#2f6fde", "sf": "#1a1a1a", "kuaidi100": "#2a9d8f"}
FAILED = "#d1495b"
SKIPPED = "#edae49"
MUTED = "#8a8f98"
FONT = "font-family='system-ui, -apple-system, Segoe UI, sans-serif' font-size='12'"


def _svg(width: int, height: int, body: list[str], *, chart: str, title: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' data-chart='{escape(chart, quote=True)}' "
        f"viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
        f"aria-label='{escape(title, quote=True)}'><title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def funnel_chart(stages: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, one per stage, scaled to the first stage."""
    width, row, left = 720, 30, 170
    top = max((count for _, count in stages), default=0) or 1
    body: list[str] = []
    for n, (label, count) in enumerate(stages):
        y = 10 + n * row
        bar = (width - left - 90) * count / top
        share = f"{100 * count / top:.0f}%"
        body.append(f"<text x='{left - 8}' y='{y + 17}' text-anchor='end' {FONT}>{escape(label)}</text>")
        body.append(
            f"<rect class='bar' x='{left}' y='{y + 3}' width='{bar:.1f}' height='{row - 8}' rx='3' fill='#2f6fde' "
            f"fill-opacity='{0.35 + 0.65 * count / top:.2f}'><title>{escape(label)}: {count}</title></rect>"
        )
        body.append(f"<text x='{left + bar + 6:.1f}' y='{y + 17}' {FONT}>{count} ({share})</text>")
    return _svg(width, 20 + row * len(stages), body, chart="funnel", title="Status funnel")


def timeline_chart(data: Mapping[str, Any]) -> str:
    """Stacked bars of waybills issued per provider per time bucket, failed / skipped attempts below the
    axis, and vertical marks for the outage and the circuit breaker."""
    slots = max(int(data.get("slots") or 0), 1)
    bucket = float(data.get("bucket") or 1.0)
    created: Mapping[str, Sequence[int]] = data.get("created") or {}
    failed: Sequence[int] = data.get("failed") or [0] * slots
    skipped: Sequence[int] = data.get("skipped") or [0] * slots
    width, height, left, right, mid = 760, 300, 44, 16, 190
    plot = width - left - right
    step = plot / slots
    up = max((sum(c[i] for c in created.values()) for i in range(slots)), default=0) or 1
    down = max((failed[i] + skipped[i] for i in range(slots)), default=0) or 1
    scale_up, scale_down = (mid - 30) / up, (height - mid - 40) / max(down, 1)
    body = [
        f"<line x1='{left}' y1='{mid}' x2='{width - right}' y2='{mid}' stroke='{MUTED}'/>",
        f"<text x='{left - 6}' y='{mid - 4}' text-anchor='end' {FONT}>0</text>",
        f"<text x='{left - 6}' y='{30}' text-anchor='end' {FONT}>{up}</text>",
    ]
    for i in range(slots):
        x = left + i * step
        y: float = mid
        for provider, counts in created.items():
            value = counts[i] if i < len(counts) else 0
            if value:
                h = value * scale_up
                y -= h
                body.append(
                    f"<rect class='bar' x='{x + 1:.1f}' y='{y:.1f}' width='{max(step - 2, 1):.1f}' height='{h:.1f}' "
                    f"fill='{PALETTE.get(provider, MUTED)}'><title>{i * bucket:.0f}-{(i + 1) * bucket:.0f} s: "
                    f"{value} waybills via {escape(provider)}</title></rect>"
                )
        y = mid
        below = ((failed[i], FAILED, "failed attempts"), (skipped[i], SKIPPED, "skipped (circuit open)"))
        for value, colour, what in below:
            if value:
                h = value * scale_down
                body.append(
                    f"<rect class='bar' x='{x + 1:.1f}' y='{y:.1f}' width='{max(step - 2, 1):.1f}' height='{h:.1f}' "
                    f"fill='{colour}'><title>{i * bucket:.0f}-{(i + 1) * bucket:.0f} s: {value} {what}</title></rect>"
                )
                y += h
    for n, mark in enumerate(data.get("marks") or []):
        x = left + float(mark["t"]) / bucket * step
        body.append(
            f"<line x1='{x:.1f}' y1='14' x2='{x:.1f}' y2='{height - 28}' stroke='{FAILED}' stroke-dasharray='4 3'/>"
        )
        label = escape(str(mark["label"]))
        body.append(f"<text x='{x + 3:.1f}' y='{14 + 13 * (n % 3)}' {FONT} fill='{FAILED}'>{label}</text>")
    for i in range(0, slots + 1, max(1, slots // 8)):
        x = left + i * step
        body.append(f"<text x='{x:.1f}' y='{height - 10}' text-anchor='middle' {FONT}>{i * bucket:.0f}s</text>")
    legend = " · ".join(
        f"<tspan fill='{c}'>■</tspan> {escape(t)}"
        for t, c in [
            *[(f"waybills via {p}", PALETTE.get(p, MUTED)) for p in created],
            ("failed attempts", FAILED),
            ("skipped: circuit open", SKIPPED),
        ]
    )
    body.append(f"<text x='{left}' y='{height + 14}' {FONT} fill='{MUTED}'>{legend}</text>")
    return _svg(width, height + 22, body, chart="failover-timeline", title="Failover timeline")


def histogram(samples: Sequence[float], *, chart: str, title: str, bins: int = 20, unit: str = "s") -> str:
    """A latency distribution with p50 / p95 marks."""
    width, height, left, bottom = 360, 200, 36, 28
    body: list[str] = []
    if not samples:
        empty = f"<text x='{width / 2}' y='{height / 2}' text-anchor='middle' {FONT} fill='{MUTED}'>no samples</text>"
        body.append(empty)
        return _svg(width, height, body, chart=chart, title=title)
    low, high = 0.0, max(samples) or 1.0
    size = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in samples:
        counts[min(int((value - low) / size), bins - 1)] += 1
    top = max(counts) or 1
    plot_w, plot_h = width - left - 10, height - bottom - 14
    step = plot_w / bins
    for i, count in enumerate(counts):
        h = plot_h * count / top
        body.append(
            f"<rect class='bar' x='{left + i * step + 1:.1f}' y='{14 + plot_h - h:.1f}' width='{max(step - 2, 1):.1f}' "
            f"height='{h:.1f}' fill='#2a9d8f'><title>{low + i * size:.2f}-{low + (i + 1) * size:.2f} {unit}: "
            f"{count}</title></rect>"
        )
    ordered = sorted(samples)
    for q, colour in ((50, "#1a1a1a"), (95, FAILED)):
        value = ordered[max(0, min(len(ordered) - 1, -(-q * len(ordered) // 100) - 1))]
        x = left + (value - low) / (high - low or 1) * plot_w
        body.append(
            f"<line x1='{x:.1f}' y1='10' x2='{x:.1f}' y2='{14 + plot_h}' stroke='{colour}' stroke-dasharray='3 2'/>"
        )
        y = 22 if q == 50 else 36
        anchor, dx = ("end", -3) if x > width * 0.6 else ("start", 3)
        label = f"p{q} {value:.2f}{unit}"
        body.append(f"<text x='{x + dx:.1f}' y='{y}' text-anchor='{anchor}' {FONT} fill='{colour}'>{label}</text>")
    body.append(f"<line x1='{left}' y1='{14 + plot_h}' x2='{width - 10}' y2='{14 + plot_h}' stroke='{MUTED}'/>")
    for frac in (0, 0.5, 1):
        x = left + frac * plot_w
        tick = low + frac * (high - low)
        body.append(f"<text x='{x:.1f}' y='{height - 8}' text-anchor='middle' {FONT}>{tick:.1f}{unit}</text>")
    body.append(f"<text x='{left - 4}' y='{20}' text-anchor='end' {FONT}>{top}</text>")
    return _svg(width, height, body, chart=chart, title=title)
