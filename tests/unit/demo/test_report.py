"""Report rendering: self-contained HTML with well-formed inline SVG charts, and the terminal summary."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest
from rich.console import Console

from sandbox.demo.analysis import summarize
from sandbox.demo.charts import funnel_chart, histogram, timeline_chart
from sandbox.demo.report import html_report, summary_json, terminal_summary

from .conftest import alert_line, stall_text

pytestmark = pytest.mark.unit

CHARTS = {"funnel", "failover-timeline", "latency-order-to-waybill", "latency-push-to-visible"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.void = {"meta", "br", "img", "input", "link", "hr"}
        self.errors: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value and re.match(r"^(https?:)?//", value):
                self.external.append(value)
        if tag not in self.void:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        return

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with {self.stack[-3:]}")
            return
        self.stack.pop()


def test_the_report_is_self_contained_and_balanced(record: dict[str, Any]) -> None:
    # Given the summary of a recorded run
    html = html_report(summarize(record))
    # When parsed
    parser = _Tags()
    parser.feed(html)
    # Then every tag closes, nothing is loaded from the network, and the four charts are there
    assert parser.errors == []
    assert parser.stack == []
    assert parser.external == []
    assert set(re.findall(r"data-chart='([^']+)'", html)) == CHARTS
    assert "All invariants hold" in html


def test_every_chart_is_well_formed_svg(record: dict[str, Any]) -> None:
    html = html_report(summarize(record))
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) == 4
    for svg in svgs:
        root = ET.fromstring(svg)  # raises on malformed markup
        assert root.tag.endswith("svg")
        assert root.find("{http://www.w3.org/2000/svg}title") is not None


def test_hostile_text_is_escaped(record: dict[str, Any]) -> None:
    # Given an order id and an alert carrying markup (the OMS and carriers are not trusted)
    record["orders"][3]["order_id"] = "<script>alert(1)</script>"
    record["alerts"].append(alert_line(stall_text("shp_<b>", "7<img src=x>"), 50))
    html = html_report(summarize(record))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x>" not in html
    assert html.count("<script>") == 1  # only the report's own script


def test_a_failed_invariant_is_said_plainly(record: dict[str, Any]) -> None:
    # Given a run where the stalled parcel was never alerted
    record["alerts"] = [a for a in record["alerts"] if "[Parcel stalled]" not in a["text"]]
    summary = summarize(record)
    # Then the HTML, the terminal and the JSON all say which invariant failed
    html = html_report(summary)
    assert "An invariant failed" in html
    assert "shp_c stopped in IN_TRANSIT: alerted 0 times" in html
    console = Console(record=True, width=140)
    console.print(terminal_summary(summary, "/tmp/x.html"))
    text = console.export_text()
    assert "FAIL  every stalled parcel alerted exactly once" in text
    assert "shp_c stopped in IN_TRANSIT: alerted 0 times" in text
    assert "/tmp/x.html" in text
    assert summary_json(summary)["invariants"]["every stalled parcel alerted exactly once"] is False


def test_terminal_summary_has_every_table(record: dict[str, Any]) -> None:
    console = Console(record=True, width=160)
    console.print(terminal_summary(summarize(record)))
    text = console.export_text()
    for title in (
        "Orders",
        "Waybills per provider and carrier",
        "Failovers",
        "Rejected orders",
        "Final statuses",
        "Stalls and alerts",
        "Duplicates and out-of-order pushes absorbed",
        "AWS requests per shipment",
        "Latency",
        "PASS  no shipment regressed",
    ):
        assert title in text, title
    assert "receiver.phone" in text
    assert "SF via sf" in text


def test_charts_cope_with_empty_data() -> None:
    for svg in (funnel_chart([]), timeline_chart({}), histogram([], chart="x", title="empty")):
        ET.fromstring(svg)
    assert "no samples" in histogram([], chart="x", title="empty")


def test_histogram_marks_p50_and_p95() -> None:
    svg = histogram([float(v) for v in range(1, 101)], chart="lat", title="latency")
    assert "p50 50.00s" in svg
    assert "p95 95.00s" in svg


def test_the_summary_and_the_report_link_a_few_tracking_pages(record: dict[str, Any]) -> None:
    # Given shipment views that carry their customer tracking page (as the API gives them)
    for sid, view in record["shipments"].items():
        view["tracking_url"] = f"http://127.0.0.1:3000/dev/t/{sid}.mac"
    summary = summarize(record)
    links = summary.extra["tracking_links"]
    # Then a few parcels, in different statuses, are linked from the terminal summary and the HTML report
    assert 1 <= len(links) <= 4
    assert len({link["status"] for link in links}) == len(links)
    console = Console(record=True, width=200)
    console.print(terminal_summary(summary))
    text = console.export_text()
    html = html_report(summary)
    for link in links:
        assert link["url"] in text
        assert f"<a href='{link['url']}'>" in html
    assert "they answer while it runs" in text


def test_a_record_without_tracking_links_renders_as_before(record: dict[str, Any]) -> None:
    summary = summarize(record)
    assert summary.extra["tracking_links"] == []
    assert "data-section='tracking-links'" not in html_report(summary)


def test_a_stall_alert_for_a_parcel_not_planted_is_named_as_late_when_its_carrier_went_quiet(
    record: dict[str, Any],
) -> None:
    """Given a run whose stall detector also alerted a parcel the carriers did not stop, raised before its
    carrier pushed anything newer than the state it names (shp_a: in transit at 12 s, the next push at 14 s),
    when the summary is printed, then that parcel is named as genuinely late, apart from the planted stalls."""
    a = record["shipments"]["shp_a"]["tracking_number"]
    record = {**record, "alerts": [*record["alerts"], alert_line(stall_text("shp_a", a), 13.5)]}
    summary = summarize(record)
    assert (summary.late_stalls, summary.lagged_stalls) == (["shp_a"], [])
    line = _summary_line(summary, "genuinely late")
    assert "1: shp_a" in line


def test_a_stall_alert_raised_after_its_carrier_pushed_a_newer_scan_is_named_as_the_local_stacks_lag(
    record: dict[str, Any],
) -> None:
    """Given an alert for shp_a in transit raised at 30 s, when its carrier had pushed the scans up to its
    delivery (14 s, 18 s) before it, then the summary names it as the local stack's lag, not a late parcel."""
    a = record["shipments"]["shp_a"]["tracking_number"]
    record = {**record, "alerts": [*record["alerts"], alert_line(stall_text("shp_a", a), 30)]}
    summary = summarize(record)
    assert (summary.late_stalls, summary.lagged_stalls) == ([], ["shp_a"])
    assert "1: shp_a" in _summary_line(summary, "local stack's lag")
    assert _summary_line(summary, "genuinely late").split("│")[-1].strip() == "0"


def test_a_push_the_webhook_refused_is_no_evidence_of_lag(record: dict[str, Any]) -> None:
    """Given the same alert at 30 s, when every push of shp_a after its in-transit scan was refused (401),
    then nothing newer reached the hub before the alert: it is named late."""
    a = record["shipments"]["shp_a"]["tracking_number"]
    pushes = record["sandboxes"]["kdniao"]["pushes"]
    for push in pushes:
        if push["tracking_number"] == a and push["sent_at"] > record["orders_started_at"] + 12:
            push["status"] = 401
    record = {**record, "alerts": [*record["alerts"], alert_line(stall_text("shp_a", a), 30)]}
    summary = summarize(record)
    assert (summary.late_stalls, summary.lagged_stalls) == (["shp_a"], [])


def _summary_line(summary: Any, words: str) -> str:
    console = Console(record=True, width=240)
    console.print(terminal_summary(summary))
    return next(row for row in console.export_text().splitlines() if words in row)
