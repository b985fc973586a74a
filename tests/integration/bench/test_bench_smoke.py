"""A tiny ``make bench`` so it cannot rot: every part runs for real (local stack subprocess, moto, fresh
interpreters) on small numbers, and the results have the shape other tools read. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cold_start, cost, prices, report, stall_sweep

pytestmark = pytest.mark.integration

SMOKE = report.Settings(
    shipments=3,
    updates=10,
    repetitions=2,
    sweep_sizes=(100, 200),
    due=20,
    api_items=150,
    batch=10,
    batches=2,
    webhook_pushes=5,
    tracking_pages=5,
    scorecard_sizes=(20, 60),
    scorecard_api_facts=10,
    selection_facts=30,
)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_the_smoke_bench_writes_results_with_the_documented_shape(tmp_path: Path) -> None:
    # Given the smallest settings that still exercise every part
    results_path, markdown_path = tmp_path / "results.json", tmp_path / "performance.md"

    # When the benchmark runs and writes its files
    results = report.collect(SMOKE, echo=lambda _: None)
    report.write(results, results_path, markdown_path)

    # Then every part ran and the JSON has the keys other tools read
    assert results["errors"] == {}
    written = json.loads(results_path.read_text("utf-8"))
    for key in (
        "cost_usd_per_1k_shipments",
        "cost_by_service",
        "aws_requests_per_tracking_update",
        "cold_start",
        "stall_sweep",
        "scorecards",
        "selection",
        "measured_at",
        "commit",
    ):
        assert key in written, key
    assert written["commit"]
    assert written["measured_at"].endswith("+00:00")

    # cost: positive, by service, and every shipment really went from order to DELIVERED
    assert _positive(written["cost_usd_per_1k_shipments"])
    by_service = written["cost_by_service"]
    assert {"Lambda", "DynamoDB", "API Gateway", "SQS", "Step Functions", "EventBridge"} <= set(by_service)
    assert sum(by_service.values()) == pytest.approx(written["cost_usd_per_1k_shipments"], rel=1e-3)
    bill = written["cost"]
    assert bill["statuses"] == {"DELIVERED": SMOKE.shipments}
    assert bill["tracking_updates_pushed"] >= SMOKE.shipments * SMOKE.updates
    # a tracking update costs at least the webhook's API request, its Lambda invocation and one SendMessage,
    # and (plausibility) far fewer than a hundred requests
    assert 3 <= written["aws_requests_per_tracking_update"] < 100
    # the waybill workflow billed as its type bills (Express: one request per execution), and priced both ways
    assert bill["phases"]["order_to_waybill"]["billable_requests"]["step_functions_executions"] == SMOKE.shipments
    workflow = bill["step_functions"]
    assert workflow["type"] == "EXPRESS"
    assert workflow["transitions_per_shipment"] >= 8
    assert {"STANDARD", "EXPRESS", "EXPRESS_local_wall_clock"} <= set(workflow["usd_per_1k_shipments_by_type"])
    assert by_service["Step Functions"] == pytest.approx(workflow["usd_per_1k_shipments_by_type"]["EXPRESS"], rel=1e-2)
    for peer in bill["peers"].values():
        assert all(_positive(x) for x in peer["times_parcelhub"])

    # cold start: every function served its first request in a fresh interpreter on the local stack, made
    # AWS calls there (waited on, split out), and a minimal boto3 handler replayed them for the ratio
    assert set(written["cold_start"]) == set(cold_start.function_names())
    for name, figures in written["cold_start"].items():
        assert "error" not in figures, (name, figures)
        assert figures["rounds"] == SMOKE.repetitions, name
        assert figures["rounds_missed"] == 0, name
        for key in ("import_ms", "first_invocation_ms", "boto3_ms", "minimal_cold_ms", "overhead_ratio"):
            assert _positive(figures[key]), (name, key)
        assert figures["cold_ms"] == pytest.approx(figures["import_ms"] + figures["first_invocation_ms"], abs=0.2)
        assert 0 < figures["aws_wait_ms"] < figures["first_invocation_ms"], name
        # every call the first round recorded was waited on (rounds may serve different batches)
        assert figures["aws_requests_first_round"] >= sum(figures["calls_first_round"].values()) >= 1, name
    cold = written["cold_start"]
    assert cold["shipments_api"]["request"] == "POST /v1/shipments"
    assert cold["carrier_webhook"]["request"].startswith("POST /v1/webhooks/")
    assert cold["waybill_tasks"]["request"].startswith("task ")
    assert "sqs.SendMessage" in cold["carrier_webhook"]["calls_first_round"]

    # stall sweep: one row per size; the sweep reads what is due, not the table
    # scorecards: recording one fact costs the same requests at every history size, and a replay adds nothing
    cards = written["scorecards"]
    assert cards["equal"] is True
    assert [r["record_one_fact"] for r in cards["sizes"]] == [{"requests": {"TransactWriteItems": 1}, "items": 9}] * 2
    assert [r["national_parcels"] for r in cards["sizes"]] == [21, 62]

    rows = written["stall_sweep"]
    assert [(r["active"], r["due"]) for r in rows] == [(100, 20), (200, 20)]
    assert all(r["items_read"] == 20 for r in rows)
    assert rows[-1]["loaded_via_moto_backend"] == 50

    # hot path: every provider parsed and every webhook push enqueued with one SendMessage
    hot = written["hot_path"]
    assert set(hot["normalizer"]) == {"kdniao", "sf", "kuaidi100"}
    assert all(_positive(r["cpu_us_per_update"]) and r["events_per_update"] >= 1 for r in hot["normalizer"].values())
    assert all(r["aws_requests_per_push"] == {"sqs.SendMessage": 1.0} for r in hot["webhook"].values())
    # the tracking page: every view answered from one DynamoDB read
    page = hot["tracking_page"]
    assert page["pages"] == SMOKE.tracking_pages
    assert page["dynamodb_reads_per_page"] == 1.0
    assert _positive(page["p95_ms"])

    # and the page quotes the figures with the command that produced them
    page = markdown_path.read_text("utf-8")
    assert cost.command(SMOKE.shipments, SMOKE.updates) in page
    assert cold_start.command(SMOKE.repetitions) in page
    assert f"{written['cost_usd_per_1k_shipments']:.4f}" in page


def test_the_lifecycle_pushed_per_parcel_ends_delivered() -> None:
    # Given any number of updates per parcel, When the stages are planned, Then the last one is DELIVERED
    for updates in (3, 5, 10, 12):
        stages = cost.stages_for(updates)
        assert len(stages) == updates
        assert stages[0] == "picked_up"
        assert stages[-1] == "delivered"


def test_dynamodb_units_follow_the_size_rules() -> None:
    # Given a 2.5 KB shipment item and 300-byte events
    sizes = {
        "META": {"items": 1, "mean_bytes": 2500.0},
        "EVT": {"items": 10, "mean_bytes": 300.0},
        "ORDER": {"items": 1, "mean_bytes": 120.0},
    }
    # When one create, three updates, one event batch and two reads are priced
    units = cost.dynamodb_units({"TransactWriteItems": 1, "UpdateItem": 3, "BatchWriteItem": 1, "GetItem": 2}, sizes)
    # Then: the transaction is 2 x (3 KB + 1 KB), updates 3 KB each, 10 events 1 KB each; reads 1 RRU each
    assert units == {"wru": 2 * (3 + 1) + 3 * 3 + 10 * 1, "rru": 2}


def test_prices_are_one_dated_table_with_a_source_per_line() -> None:
    # Given the one price table, Then every line has a source and a positive unit, and costs scale by it
    assert prices.PRICES_COLLECTED
    assert prices.PRICES_CHECKED
    for key, price in prices.PRICES.items():
        assert price.source.startswith("https://aws.amazon.com/"), key
        assert price.per > 0, key
        assert price.usd >= 0, key
    # 1M Lambda requests cost 0.20 USD; the 17TRACK range converts to dollars
    assert prices.cost("lambda.requests", 1_000_000) == pytest.approx(0.20)
    low, high = prices.peer_usd("17TRACK")
    assert 0 < low < high < 0.01


def test_the_sweep_table_is_built_from_the_template() -> None:
    # Given template.yaml, When the bench builds its table, Then it has the sparse stall index
    spec = stall_sweep.table_spec()
    assert {index["IndexName"] for index in spec["GlobalSecondaryIndexes"]} >= {"stall"}


def test_the_cold_start_section_is_spliced_into_the_page_alone() -> None:
    # Given a generated page with a cold-start section between two others
    page = "# title\n\n## Cost\n\ncost table\n\n## Cold start: old\n\nold table\n\n### Method\n\nold\n\n"
    page += "## Hot path\n\nhot\n"
    # When a new cold-start section is written into it
    spliced = cold_start.splice(page, "## Cold starts: new\n\nnew table\n\n")
    # Then only that section changed (its subsections with it), and a page without one gets it before the hot path
    assert spliced == "# title\n\n## Cost\n\ncost table\n\n## Cold starts: new\n\nnew table\n\n## Hot path\n\nhot\n"
    assert cold_start.splice("# t\n\n## Hot path\n\nhot\n", "## Cold starts\n\n") == (
        "# t\n\n## Cold starts\n\n## Hot path\n\nhot\n"
    )
