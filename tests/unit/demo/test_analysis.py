"""From a recorded run to the figures: alerts parsed, pushes absorbed, AWS requests, latencies, funnel."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.demo.analysis import parse_alert, percentile, push_figures, summarize

from .conftest import alert_line, circuit_text, failed_text, stall_text

pytestmark = pytest.mark.unit


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 50) is None


@pytest.mark.parametrize(
    ("text", "kind", "shipment", "provider"),
    [
        (stall_text("shp_x", "73100000000301"), "stall", "shp_x", None),
        (failed_text("shp_y"), "waybill_failed", "shp_y", None),
        (circuit_text(), "circuit_opened", None, "sf"),
    ],
)
def test_alerts_are_recognised_from_the_real_alert_texts(
    text: str, kind: str, shipment: str | None, provider: str | None
) -> None:
    # Given an alerts.jsonl line carrying an alert text built by parcelhub.events
    alert = parse_alert(alert_line(text, 5))
    # Then the kind, the shipment and the provider are recovered, and the title is the English headline
    assert (alert["kind"], alert["shipment_id"], alert["provider"]) == (kind, shipment, provider)
    assert alert["title"].startswith("[")
    assert alert["time"] is not None


def test_duplicates_and_out_of_order_pushes_are_counted(record: dict[str, Any]) -> None:
    # Given the sandbox push log: a late smaller snapshot, a duplicate, a shuffled snapshot
    figures, acks = push_figures(record["sandboxes"], record["shipments"])
    # Then each is counted, and the stored timelines equal the distinct scans pushed
    assert figures["sent"] == 7
    assert figures["duplicates"] == 1
    assert figures["out_of_order"] == 1
    assert figures["shuffled_snapshots"] == 1
    assert figures["distinct_scans"] == figures["stored_events"] == 12
    assert figures["timelines_matching"] == figures["timelines"] == 3
    assert all(abs(a - 0.05) < 1e-3 for a in acks)


def test_a_timeline_missing_a_scan_is_not_matching(record: dict[str, Any]) -> None:
    # Given the hub lost one scan of the delivered parcel
    record["shipments"]["shp_a"]["events"].pop()
    figures, _ = push_figures(record["sandboxes"], record["shipments"])
    assert figures["timelines_matching"] == 2
    assert figures["stored_events"] == figures["distinct_scans"] - 1


def test_summary_of_a_recorded_run(record: dict[str, Any]) -> None:
    summary = summarize(record)
    assert (summary.orders_sent, summary.accepted, len(summary.rejected)) == (4, 3, 1)
    assert summary.rejected[0]["field"] == "receiver.phone"
    assert summary.replays == summary.replays_same_shipment == 1
    assert summary.waybills == {("kdniao", "ZTO"): 3}
    assert [(f["from"], f["to"], f["reason"]) for f in summary.failovers] == [
        ("SF via sf", "ZTO via kdniao", "unavailable")
    ]
    assert summary.stalled == ["shp_c"]
    assert summary.stall_alerts == 1
    assert (summary.late_stalls, summary.lagged_stalls) == ([], [])
    assert summary.alerts == {"circuit_opened": 1, "stall": 1}
    # order -> waybill from the server's clocks: 2 s, 4 s, 2 s
    assert sorted(summary.order_to_waybill.samples) == [2.0, 2.0, 4.0]
    # push -> visible for the probe: 1.0 s, 1.5 s (the pushed-at-14 s snapshot), 1.0 s
    assert sorted(round(s, 2) for s in summary.push_to_visible.samples) == [1.0, 1.0, 1.5]
    assert summary.funnel[0] == ("orders sent", 4)
    assert dict(summary.funnel)["delivered"] == 2
    assert dict(summary.funnel)["in transit"] == 3
    assert summary.ok


def test_aws_requests_per_shipment_leave_out_the_demos_own_reads(record: dict[str, Any]) -> None:
    summary = summarize(record)
    # 3 shipments: API writes (3 + 3) and the workflow's (12 + 6 + 3); the 80 reads of polling are left out
    assert summary.aws_per_shipment == {"dynamodb": 7.0, "s3": 1.0, "sqs": 1.0}
    assert summary.lambda_per_shipment == {"ShipmentsApiFunction": 1.33, "WaybillTasksFunction": 5.0}


def test_timeline_buckets_and_marks(record: dict[str, Any]) -> None:
    timeline = summarize(record).timeline
    assert timeline["created"]["kdniao"][1] == 1  # shp_a at 2 s
    assert sum(timeline["failed"]) == 1
    labels = [m["label"] for m in timeline["marks"]]
    assert labels == ["sf outage on", "circuit opened: sf", "sf outage off"]


def test_the_smart_choices_are_counted_per_carrier_and_reason_with_the_saving_and_unmet_promises() -> None:
    from sandbox.demo.analysis import selection_figures
    from sandbox.demo.report import _selection_rows

    prices = {"ZTO": 1100, "SF": 1700}

    def chosen(carrier: str, reason: str, *, issued: str | None = None, met: bool = True, passed: Any = (),
               rules: str = "SF", refused: str | None = None) -> Any:  # fmt: skip
        actual = issued or carrier
        attempts = [{"carrier": carrier, "outcome": "rejected", "error_code": refused}] if refused else []
        return {"carrier": actual, "provider": "sf" if actual == "SF" else "kdniao", "waybill_attempts": attempts,
                "selection": {"carrier": carrier, "provider": "sf" if carrier == "SF" else "kdniao",
                              "reason": reason, "promise_met": met, "rules_carrier": rules,
                              "rules_price_fen": prices[rules], "passed_over": [list(p) for p in passed],
                              "prices": prices}}  # fmt: skip

    # Given smart choices: two ZTO under SF-first rules (each 6.00 cheaper), one SF that could not meet its
    # promise, one SF past a full ZTO that the rules would also have tried first (no saving counted), one
    # chosen as ZTO that ZTO refused at its create because it was full, one chosen as SF that failed over to
    # ZTO while SF's circuit was open (6.00 cheaper than the rules' SF); and one from before the strategy
    shipments = {
        "a": chosen("ZTO", "cheapest_meeting_promise"),
        "b": chosen("ZTO", "cheapest_meeting_promise"),
        "c": chosen("SF", "fastest_promise_not_met", met=False),
        "e": chosen("SF", "cheapest_meeting_promise", rules="ZTO", passed=[("ZTO", "cap_reached")]),
        "f": chosen("ZTO", "cheapest_meeting_promise", issued="SF", rules="ZTO", refused="CAPACITY_CAP_REACHED"),
        "g": chosen("SF", "cheapest_meeting_promise", issued="ZTO", rules="SF")
        | {"waybill_attempts": [{"carrier": "SF", "outcome": "skipped_circuit_open", "error_code": "CIRCUIT_OPEN"}]},
        "h": chosen("SF", "all_blocked_fastest", rules="SF")
        | {
            "carrier": None,
            "provider": None,
            "status": "WAYBILL_FAILED",
            "waybill_attempts": [{"carrier": "SF", "outcome": "skipped_circuit_open", "error_code": "CIRCUIT_OPEN"}],
        },
        "d": {"carrier": "SF"},
    }
    # When summarised
    figures = selection_figures(shipments)
    # Then the parcels per issuing carrier and why, the carriers passed over, the saving against the rules
    # where the rules' choice had room, and the unmet promise are reported
    assert figures == {
        "shipments": 7,
        "by_choice": [
            ["SF via sf", "ZTO full at its create", 1],
            ["SF via sf", "cheapest_meeting_promise", 1],
            ["SF via sf", "fastest_promise_not_met", 1],
            ["ZTO via kdniao", "SF skipped_circuit_open", 1],
            ["ZTO via kdniao", "cheapest_meeting_promise", 2],
            ["no waybill", "SF skipped_circuit_open", 1],
        ],
        "passed_over": [["ZTO", "cap_reached", 1]],
        "saving_fen": 1800,
        "priced": 4,
        "promise_not_met": 1,
    }
    assert _selection_rows(figures)[-3:] == [
        ("ZTO passed over", "cap_reached", "1"),
        ("saving against the fixed rules", "tariff prices of 4 parcels", "18.00"),
        ("promise not met (fastest chosen)", "flagged", "1"),
    ]
    # and under the rules strategy there is nothing to show
    assert _selection_rows(selection_figures({"d": {"carrier": "SF"}})) == []


def test_the_latency_notes_say_how_much_our_handlers_ran_and_leave_the_rest_to_the_emulator() -> None:
    from sandbox.demo.analysis import handler_time

    # Given the stack's per-function figures for 10 shipments and 40 pushes
    metrics = {
        "lambda": {
            "WaybillTasksFunction": {"invocations": 60, "duration_ms": 30_000.0},
            "WaybillDispatchFunction": {"invocations": 10, "duration_ms": 2_000.0},
            "CarrierWebhookFunction": {"invocations": 40, "duration_ms": 8_000.0},
            "TrackingNormalizerFunction": {"invocations": 8, "duration_ms": 12_000.0},
        }
    }
    # When split
    notes = handler_time(metrics, shipments=10, pushes=40)
    # Then order -> waybill names 3.0 s of task time and 0.2 s of dispatch per shipment, push -> visible a
    # webhook call (0.2 s) plus one normalizer batch (1.5 s)
    assert notes["order_to_waybill"].startswith(
        "our handlers ran 3.2 s of it per shipment (6.0 waybill tasks of 0.50 s"
    )
    assert notes["push_to_visible"].startswith("our handlers ran 1.7 s of it (webhook 0.20 s per push, one normalizer")
    assert "batching window" not in notes["push_to_visible"]
    # and with the normalizer's configured batching window known, push -> visible names it as a configured wait
    waited = handler_time(metrics, shipments=10, pushes=40, batch_window=5.0)
    assert (
        "the normalizer's batching window, a configured wait, gathers pushes for up to 5 s" in waited["push_to_visible"]
    )
    # and a run without figures says nothing it cannot back
    assert handler_time({}, shipments=10, pushes=40) == {}
