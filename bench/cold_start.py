"""Cold start: the time to import each function's handler module in a fresh interpreter.

For every ``functions/<name>/handler.py``: the median of N fresh interpreters timing
``import functions.<name>.handler`` (interpreter start-up excluded), next to the median of
``import boto3`` alone in the same run (runs interleaved, so machine noise hits both alike), as a ratio.
One extra ``-X importtime`` run per function splits the import time by top-level package.

    python -m bench.cold_start [--repetitions 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPETITIONS = 7
#: written to stderr just before the timed import, so start-up imports are left out of the breakdown
MARKER = "--bench-import--"

_PROBE = (
    "import sys, time, json\n"
    "sys.stderr.write('--bench-import--\\n'); sys.stderr.flush()\n"
    "t0 = time.perf_counter()\n"
    "import {module}\n"
    "t1 = time.perf_counter()\n"
    "print(json.dumps({{'ms': (t1 - t0) * 1000, 'boto3': 'boto3' in sys.modules, 'modules': len(sys.modules)}}))\n"
)


def command(repetitions: int) -> str:
    return f".venv/bin/python -m bench.cold_start --repetitions {repetitions}"


def function_names() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))


def _env() -> dict[str, str]:
    """A Lambda-like environment: no endpoint override, no debugger, nothing that changes imports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "PYTHONBREAKPOINT"))}
    env.update({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONHASHSEED": "0"})
    return env


def probe(module: str, *, importtime: bool = False) -> dict[str, Any]:
    """Import ``module`` in a fresh interpreter; return its timing (and ``-X importtime`` output)."""
    args = [sys.executable]
    if importtime:
        args += ["-X", "importtime"]
    args += ["-c", _PROBE.format(module=module)]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"import {module} failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if importtime:
        result["by_package"] = by_package(done.stderr)
    return result


def by_package(importtime_output: str, top: int = 6) -> dict[str, float]:
    """Self time (ms) per top-level package from ``-X importtime`` output (after the marker), biggest first."""
    totals: dict[str, float] = defaultdict(float)
    _, marker, after = importtime_output.partition(MARKER)
    for line in (after if marker else importtime_output).splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.split(":", 1)[1].split("|")
        if len(fields) != 3:
            continue
        self_us, _cumulative, name = fields
        totals[name.strip().split(".")[0]] += float(self_us) / 1000
    ordered = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    return {name: round(ms, 1) for name, ms in ordered[:top]}


def run(repetitions: int = DEFAULT_REPETITIONS, functions: list[str] | None = None) -> dict[str, Any]:
    """``{function: {"import_ms", "boto3_ms", "ratio", ...}}`` (medians over ``repetitions``)."""
    names = functions or function_names()
    boto3_ms: list[float] = []
    samples: dict[str, list[float]] = {name: [] for name in names}
    facts: dict[str, dict[str, Any]] = {}
    for _ in range(repetitions):
        boto3_ms.append(probe("boto3")["ms"])
        for name in names:
            result = probe(f"functions.{name}.handler")
            samples[name].append(result["ms"])
            facts[name] = result
    boto3_median = statistics.median(boto3_ms)
    out: dict[str, Any] = {}
    for name in names:
        median = statistics.median(samples[name])
        breakdown = probe(f"functions.{name}.handler", importtime=True)["by_package"]
        out[name] = {
            "import_ms": round(median, 1),
            "boto3_ms": round(boto3_median, 1),
            "ratio": round(median / boto3_median, 2),
            "min_ms": round(min(samples[name]), 1),
            "max_ms": round(max(samples[name]), 1),
            "imports_boto3": bool(facts[name]["boto3"]),
            "modules_loaded": int(facts[name]["modules"]),
            "top_packages_self_ms": breakdown,
        }
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        "| function | import ms (median) | `import boto3` ms | ratio | imports boto3 | heaviest packages (self ms) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        heavy = ", ".join(f"{pkg} {ms}" for pkg, ms in list(r["top_packages_self_ms"].items())[:4])
        lines.append(
            f"| {name} | {r['import_ms']} | {r['boto3_ms']} | {r['ratio']} | "
            f"{'yes' if r['imports_boto3'] else 'no'} | {heavy} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=DEFAULT_REPETITIONS)
    args = parser.parse_args(argv)
    print(f"$ {command(args.repetitions)}")
    print(table(run(args.repetitions)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
