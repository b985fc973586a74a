"""When Lambda SnapStart for Python would pay for itself, from the measured cold starts and its price.

SnapStart (Python 3.12+) snapshots an execution environment after its INIT phase and restores new
environments from the snapshot. For Python it is billed on top of the usual requests and duration: the
snapshot is cached for as long as the published version is active (per GB of the function's memory, per
second) and every restore is charged (per GB of memory). Prices: us-east-1, x86_64, list prices collected
2026-11-30 (the AWS documentation states both charges apply to Python; the figures are from a third-party
summary of the AWS price page, marked unverified like the other unchecked lines of ``bench/prices.py``).
"""

from __future__ import annotations

from typing import Any

#: USD per GB-second a snapshot is cached (x86_64, us-east-1)
CACHE_USD_PER_GB_SECOND = 0.0000015046
#: USD per GB restored (each new execution environment restored from the snapshot)
RESTORE_USD_PER_GB = 0.0001397998
#: on-demand duration, x86_64, first tier (``bench/prices.py``'s ``lambda.gb_seconds``)
DURATION_USD_PER_GB_SECOND = 0.0000166667
SECONDS_PER_MONTH = 30 * 24 * 3600
SOURCES = (
    (
        "https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html (SnapStart pricing: caching and restoration "
        "charges for Python and .NET)"
    ),
    (
        "https://awsnegotiations.com/blog/lambda-snapstart-cost-impact/ (the per-GB-second and per-GB figures; "
        "unverified against https://aws.amazon.com/lambda/pricing/)"
    ),
)


def economics(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """Per function: the monthly cache fee of one published version, the fee per restore, the duration a
    restore would save at most (the whole cold start's CPU time: what an execution environment with the
    machine to itself spends, AWS waits excluded, billed at on-demand rates), so the net USD per cold start,
    and the latency it could save."""
    gb = row["memory_mb"] / 1024
    saved_seconds = row["cpu_ms"] / 1000
    restore = gb * RESTORE_USD_PER_GB
    saved_duration = gb * saved_seconds * DURATION_USD_PER_GB_SECOND
    return {
        "function": name,
        "memory_mb": row["memory_mb"],
        "cache_usd_per_month": round(gb * CACHE_USD_PER_GB_SECOND * SECONDS_PER_MONTH, 2),
        "restore_usd": restore,
        "duration_saved_usd": saved_duration,
        "net_usd_per_cold_start": restore - saved_duration,
        "latency_saved_ms_at_most": row["cpu_ms"],
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        (
            "| function | memory MB | cache USD/month (one version) | restore USD per cold start "
            "| duration saved USD per cold start (at most) | latency saved ms (at most) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        if "error" in row or "memory_mb" not in row:
            continue
        e = economics(name, row)
        lines.append(
            f"| {name} | {e['memory_mb']} | {e['cache_usd_per_month']:.2f} | {e['restore_usd']:.7f} | "
            f"{e['duration_saved_usd']:.7f} | {e['latency_saved_ms_at_most']} |"
        )
    return "\n".join(lines)


def fleet_cache_usd_per_month(results: dict[str, Any]) -> float:
    return round(sum(float(economics(n, r)["cache_usd_per_month"]) for n, r in results.items() if "memory_mb" in r), 2)
