"""Runs the benchmark parts, writes ``bench/results.json`` and the tables of ``docs/performance.md``.

Every figure is printed (and written) with the command that produced it. Nothing here asserts a timing:
the benchmark measures, it does not judge.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cold_start, cost, hot_path, prices, scorecards, selection, stall_sweep

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
#: keys of results.json written by other commands, kept when ``make bench`` rewrites the file
KEPT_KEYS = ("edd_backtest",)
PERFORMANCE = ROOT / "docs" / "performance.md"


@dataclass(frozen=True)
class Settings:
    shipments: int = cost.DEFAULT_SHIPMENTS
    updates: int = cost.DEFAULT_UPDATES
    repetitions: int = cold_start.DEFAULT_REPETITIONS
    sweep_sizes: tuple[int, ...] = stall_sweep.DEFAULT_SIZES
    due: int = stall_sweep.DEFAULT_DUE
    api_items: int = stall_sweep.DEFAULT_API_ITEMS
    batch: int = 100
    batches: int = 20
    webhook_pushes: int = 200
    tracking_pages: int = 200
    scorecard_sizes: tuple[int, ...] = scorecards.DEFAULT_SIZES
    scorecard_api_facts: int = scorecards.DEFAULT_API_FACTS
    selection_facts: int = selection.DEFAULT_FACTS

    def commands(self) -> dict[str, str]:
        return {
            "cold_start": cold_start.command(self.repetitions),
            "hot_path": hot_path.command(self.batch, self.batches, self.webhook_pushes, self.tracking_pages),
            "stall_sweep": stall_sweep.command(list(self.sweep_sizes), self.due, self.api_items),
            "cost": cost.command(self.shipments, self.updates),
            "scorecards": scorecards.command(self.scorecard_sizes, self.scorecard_api_facts),
            "selection": selection.command(self.selection_facts),
        }


def commit() -> str:
    """The commit measured (``-dirty`` when the work tree has changes), read-only git."""
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "system": platform.system(),
    }


def _part(name: str, command: str, work: Callable[[], Any], echo: Callable[[str], None]) -> tuple[Any, float, str]:
    echo(f"\n$ {command}")
    started = time.monotonic()
    try:
        result = work()
    except Exception as exc:
        echo(f"  {name} failed: {exc!r}")
        return None, time.monotonic() - started, "".join(traceback.format_exception(exc)[-3:])
    return result, time.monotonic() - started, ""


def collect(settings: Settings, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every part (independent of each other: one failing does not lose the others)."""
    commands = settings.commands()
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "commands": {**commands, "all": "make bench  (.venv/bin/python -m bench)"},
        "settings": settings.__dict__
        | {"sweep_sizes": list(settings.sweep_sizes), "scorecard_sizes": list(settings.scorecard_sizes)},
        "durations_s": {},
        "errors": {},
    }

    cold, seconds, error = _part(
        "cold_start", commands["cold_start"], lambda: cold_start.run(settings.repetitions), echo
    )
    results["durations_s"]["cold_start"] = round(seconds, 1)
    if cold is not None:
        results["cold_start"] = cold
        echo(cold_start.table(cold))
    else:
        results["errors"]["cold_start"] = error

    hot, seconds, error = _part(
        "hot_path",
        commands["hot_path"],
        lambda: hot_path.run(settings.batch, settings.batches, settings.webhook_pushes, settings.tracking_pages),
        echo,
    )
    results["durations_s"]["hot_path"] = round(seconds, 1)
    if hot is not None:
        results["hot_path"] = hot
        echo(hot_path.tables(hot))
    else:
        results["errors"]["hot_path"] = error

    sweep, seconds, error = _part(
        "stall_sweep",
        commands["stall_sweep"],
        lambda: stall_sweep.run(list(settings.sweep_sizes), settings.due, settings.api_items),
        echo,
    )
    results["durations_s"]["stall_sweep"] = round(seconds, 1)
    if sweep is not None:
        results["stall_sweep"] = sweep
        echo(stall_sweep.table(sweep))
    else:
        results["errors"]["stall_sweep"] = error

    cards, seconds, error = _part(
        "scorecards",
        commands["scorecards"],
        lambda: scorecards.run(settings.scorecard_sizes, settings.scorecard_api_facts),
        echo,
    )
    results["durations_s"]["scorecards"] = round(seconds, 1)
    if cards is not None:
        results["scorecards"] = cards
        echo(scorecards.table(cards))
    else:
        results["errors"]["scorecards"] = error

    choice, seconds, error = _part(
        "selection", commands["selection"], lambda: selection.run(settings.selection_facts), echo
    )
    results["durations_s"]["selection"] = round(seconds, 1)
    if choice is not None:
        results["selection"] = choice
        echo(selection.table(choice))
    else:
        results["errors"]["selection"] = error

    bill, seconds, error = _part("cost", commands["cost"], lambda: cost.run(settings.shipments, settings.updates), echo)
    results["durations_s"]["cost"] = round(seconds, 1)
    if bill is not None:
        results["cost_usd_per_1k_shipments"] = bill["cost_usd_per_1k_shipments"]
        results["cost_by_service"] = bill["cost_by_service"]
        results["aws_requests_per_tracking_update"] = bill["aws_requests_per_tracking_update"]
        results["cost"] = bill
        echo(cost.tables(bill))
    else:
        results["errors"]["cost"] = error
    results["prices"] = {
        "collected": prices.PRICES_COLLECTED,
        "checked": prices.PRICES_CHECKED,
        "region": prices.REGION,
        "table": {key: _price(p) for key, p in prices.PRICES.items()},
    }
    return results


def _price(p: prices.Price) -> dict[str, Any]:
    return {
        "service": p.service,
        "unit": p.unit,
        "usd": p.usd,
        "per": p.per,
        "source": p.source,
        "verified": p.verified,
    }


# ------------------------------------------------------------------------------------------ markdown


def markdown(results: dict[str, Any]) -> str:
    commands = results["commands"]
    out = [
        "# parcelhub performance and cost",
        "",
        (
            f"Measured {results['measured_at']} at commit `{results['commit']}` on "
            f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']} "
            f"({results['machine']['machine']}). Generated by `make bench` (`.venv/bin/python -m bench`), which writes "
            "`bench/results.json` and this page; every table names the command that produced it. The benchmark "
            "measures and never asserts a timing; `make test` runs a tiny smoke version so it cannot rot."
        ),
        "",
    ]
    if "cost" in results:
        bill = results["cost"]
        out += [
            "## Cost per 1,000 shipments",
            "",
            f"`{commands['cost']}`",
            "",
            (
                f"{bill['shipments']} shipments driven through their whole life on the local stack "
                f"(`python -m sandbox.local`): order -> waybill (providers {bill['providers']}) -> "
                f"{bill['updates_per_shipment']} tracking pushes each from the carrier sandboxes -> delivered "
                f"(final statuses {bill['statuses']}). Every AWS request counted (botocore hooks in the runner, plus "
                "what AWS does on our behalf: API Gateway requests, Lambda invocations and GB-seconds, the SQS event "
                "source mapping's receive/delete, EventBridge events and rule deliveries, the Step Functions "
                "workflow's executions and durations (and its transitions, for the Standard comparison), "
                "bytes to S3 and to CloudWatch Logs), priced with `bench/prices.py` "
                f"(us-east-1 list prices collected {results['prices']['collected']}, checked "
                f"{results['prices']['checked']}, no free tier)."
            ),
            "",
            "| service | USD per 1,000 shipments |",
            "|---|---|",
        ]
        out += [f"| {service} | {usd:.4f} |" for service, usd in bill["cost_by_service"].items()]
        out += [
            f"| **total** | **{bill['cost_usd_per_1k_shipments']:.4f}** |",
            "",
            (
                f"- AWS requests per tracking update (everything billable: API call, Lambda invocation, queue "
                f"receive/delete, DB writes, events): **{bill['aws_requests_per_tracking_update']}**; of these, API "
                f"calls made by our code: {bill['aws_api_calls_per_tracking_update']}."
            ),
            f"- AWS requests per shipment, whole life: {bill['aws_requests_per_shipment']}.",
            (
                f"- Raw payload archive in S3: {bill['s3']['bytes']:,} bytes in {bill['s3']['objects']} objects "
                f"(USD {bill['s3']['usd_per_1k_shipments_per_month_stored']} per 1,000 shipments per month kept)."
            ),
            (
                "- DynamoDB request units are estimated from the counted operations and the item sizes found in the "
                "table (moto does not model consumed capacity); X-Ray assumes the default 5% sampling."
            ),
            "",
            "| peer | USD per tracked shipment | peer price / parcelhub |",
            "|---|---|---|",
        ]
        for name, peer in bill["peers"].items():
            low, high = peer["usd_per_shipment"]
            times = peer["times_parcelhub"] or ["-", "-"]
            price = f"{low}" if low == high else f"{low}–{high}"
            ratio = f"{times[0]}x" if times[0] == times[1] else f"{times[0]}x–{times[1]}x"
            out.append(f"| {name} | {price} | {ratio} |")
        out += [
            "",
            (
                f"17TRACK's CNY prices at {prices.CNY_PER_USD} CNY/USD. Fixed monthly costs, whatever the volume "
                "(scheduled sweeps with nothing due, and Lambda's idle long-polling of each SQS event source):"
            ),
            "",
            "| fixed cost | USD per month |",
            "|---|---|",
        ]
        out += [f"| {name} | {usd:.4f} |" for name, usd in bill["fixed_usd_per_month"].items()]
        out.append("")
        out += cost.workflow_markdown(bill) + cost.requests_markdown(bill)
        if bill.get("notes"):
            out += ["Notes from the run:", "", *[f"- {note}" for note in bill["notes"]], ""]
    if "cold_start" in results:
        out += [
            cold_start.markdown(results["cold_start"], commands["cold_start"], results.get("cold_start_measured")),
            "",
        ]
    if "hot_path" in results:
        out += [
            "## Hot path",
            "",
            f"`{commands['hot_path']}`",
            "",
            (
                "Normalizer CPU per tracking update (queue envelope -> verify + parse + map -> fold), no I/O, at "
                "batch size 100 of the recorded fixture pushes (each re-numbered and re-signed); then the webhook "
                "handler in-process against moto: verify, ONE SendMessage, the provider's ACK (the first call builds "
                "the clients and reads the pushing provider's push secret); then the customer tracking page "
                "`GET /t/{token}` in-process against moto, round-robin over a shipment in every canonical status "
                "(HTML, zh-CN and en): handler time, DynamoDB reads per page (target <= 2; issue 20 asks p95 < 50 ms)."
            ),
            "",
            hot_path.tables(results["hot_path"]),
            "",
        ]
        if "tracking_page" in commands:  # measured alone (``--part tracking_page``) after the full run
            out += [f"Tracking page measured alone: `{commands['tracking_page']}`.", ""]
    if "stall_sweep" in results:
        out += [
            "## Stall sweep scaling",
            "",
            f"`{commands['stall_sweep']}`",
            "",
            (
                "Items DynamoDB reads per sweep of the sparse `stall` index (8 write shards) as active shipments grow "
                "and the number due stays fixed: the sweep reads what is due, not the table (a Scan would read "
                "every item). Timings are moto's, not DynamoDB's."
            ),
            "",
            stall_sweep.table(results["stall_sweep"]),
            "",
        ]
    if "scorecards" in results:
        out += [
            "## Scorecards: the cost of recording a delivery fact as history grows",
            "",
            f"`{commands['scorecards']}`",
            "",
            (
                "DynamoDB requests to record one more delivery fact (the fact item and its 8 scorecard cells in one "
                "`TransactWriteItems`), to replay it (refused by its condition: counted once) and to read the "
                "carrier-level scorecard, with that many facts already recorded. Timings are moto's."
            ),
            "",
            scorecards.table(results["scorecards"]),
            "",
        ]
    if "selection" in results:
        out += [
            "## Carrier selection: what the smart strategy costs per call",
            "",
            f"`{commands['selection']}`",
            "",
            "DynamoDB requests per quote and per order's carrier selection (docs/selection.md).",
            "",
            selection.table(results["selection"]),
            "",
        ]
    if results.get("errors"):
        out += ["## Parts that failed in this run", ""]
        out += [f"- `{name}`: see `bench/results.json` (`errors.{name}`)" for name in results["errors"]]
        out.append("")
    out += [
        "## Prices used",
        "",
        f"`bench/prices.py` (collected {results['prices']['collected']}, checked {results['prices']['checked']}):",
        "",
        prices.table_markdown(),
        "",
    ]
    return "\n".join(out)


def write(results: dict[str, Any], results_path: Path = RESULTS, markdown_path: Path = PERFORMANCE) -> None:
    results_path.parent.mkdir(parents=True, exist_ok=True)
    if results_path.exists():  # keep what other commands wrote (``make backtest``'s edd_backtest)
        kept = json.loads(results_path.read_text(encoding="utf-8"))
        results = {**{k: v for k, v in kept.items() if k in KEPT_KEYS}, **results}
    results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(markdown(results), encoding="utf-8")


def main(settings: Settings, results_path: Path = RESULTS, markdown_path: Path = PERFORMANCE) -> int:
    started = time.monotonic()
    results = collect(settings)
    results["durations_s"]["total"] = round(time.monotonic() - started, 1)
    write(results, results_path, markdown_path)
    print(f"\nwrote {results_path} and {markdown_path} in {results['durations_s']['total']} s", file=sys.stderr)
    return 1 if results["errors"] else 0
