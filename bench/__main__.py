"""``python -m bench`` (``make bench``): cost, cold start, hot path and stall-sweep benchmarks.

Writes ``bench/results.json`` and ``docs/performance.md``. ``BENCH_SHIPMENTS`` (default 200) sets how
many shipments the cost run drives through the local stack.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

from bench import report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    defaults = report.Settings()
    parser.add_argument("--shipments", type=int, default=int(os.environ.get("BENCH_SHIPMENTS", defaults.shipments)))
    parser.add_argument("--updates", type=int, default=defaults.updates)
    parser.add_argument("--repetitions", type=int, default=defaults.repetitions)
    parser.add_argument("--sweep-sizes", default=",".join(map(str, defaults.sweep_sizes)))
    parser.add_argument("--due", type=int, default=defaults.due)
    parser.add_argument("--webhook-pushes", type=int, default=defaults.webhook_pushes)
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    parser.add_argument("--markdown", type=Path, default=report.PERFORMANCE)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    settings = report.Settings(
        shipments=args.shipments,
        updates=args.updates,
        repetitions=args.repetitions,
        sweep_sizes=tuple(int(s) for s in args.sweep_sizes.split(",") if s),
        due=args.due,
        webhook_pushes=args.webhook_pushes,
    )
    return report.main(settings, args.results, args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())
