"""``python -m sandbox.demo`` (``make demo``): watch a day of a DTC brand's shipping on the local stack.

Starts the local stack, lets a simulated OMS send ``DEMO_ORDERS`` orders (default 200), takes SF
Express's API down midway and brings it back, has the carriers push duplicated and shuffled tracking,
stops a few parcels, and shows it all live. Ends with a summary, ``var/demo-report.html`` and an exit
code: 0 only when the demo's invariants hold (``sandbox/demo/invariants.py``).

``python -m sandbox.demo --render var/demo-run.json`` re-renders the summary and report from a record.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from sandbox.demo.analysis import summarize
from sandbox.demo.live import plain_line, render
from sandbox.demo.report import html_report, terminal_summary
from sandbox.demo.runner import Demo, DemoSettings
from sandbox.local.client import LocalStackError


def write_outputs(record: dict[str, Any], local_dir: Path, console: Console) -> int:
    summary = summarize(record)
    local_dir.mkdir(parents=True, exist_ok=True)
    report = local_dir / "demo-report.html"
    report.write_text(html_report(summary), encoding="utf-8")
    console.print(terminal_summary(summary, str(report.resolve())))
    if not summary.ok:
        failed = [r.name for r in summary.invariants if not r.ok]
        console.print(f"[bold red]demo FAILED: {'; '.join(failed)}[/]")
        return 1
    console.print("[bold green]demo passed: every invariant holds[/]")
    return 0


def _plain_progress(demo: Demo, console: Console, stop: threading.Event) -> None:
    shown = 0
    while not stop.wait(5.0):
        console.print(plain_line(demo), highlight=False)
        with demo.state.lock:
            fresh = demo.state.alerts[shown:]
            shown += len(fresh)
        for alert in fresh:
            console.print(f"  ALERT {alert['title']}", highlight=False)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (a CI timeout, `kill`): stop the local stack like Ctrl-C does


def run(settings: DemoSettings, console: Console) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    demo = Demo(settings)
    console.print(
        f"[bold]parcelhub demo[/]: {settings.orders} orders over {settings.send_window:.0f} s, "
        f"{settings.outage_provider} outage midway, duplicated + shuffled pushes, a few stalled parcels "
        f"(stack log: {settings.local_dir / 'demo-stack.log'})"
    )
    began = time.monotonic()
    try:
        if console.is_terminal:
            with Live(get_renderable=lambda: render(demo), console=console, refresh_per_second=4, transient=False):
                record = demo.run()
        else:
            stop = threading.Event()
            ticker = threading.Thread(target=_plain_progress, args=(demo, console, stop), daemon=True)
            ticker.start()
            try:
                record = demo.run()
            finally:
                stop.set()
    except LocalStackError as exc:
        console.print(f"[bold red]demo could not run:[/] {exc}")
        log = settings.local_dir / "demo-stack.log"
        if log.exists():
            console.print("".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-20:]))
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: the local stack is stopped[/]")
        return 130
    record["finished_at"] = time.time()
    record_path = settings.local_dir / "demo-run.json"
    record_path.write_text(json.dumps(record, ensure_ascii=False, default=str), encoding="utf-8")
    code = write_outputs(record, settings.local_dir, console)
    console.print(f"total wall time {time.monotonic() - began:.0f} s; raw record {record_path.resolve()}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--render", type=Path, help="re-render the summary and report from a recorded run")
    parser.add_argument("--orders", type=int, help="number of orders (default: $DEMO_ORDERS or 200)")
    args = parser.parse_args(argv)
    console = Console()
    settings = DemoSettings.from_env()
    if args.orders:
        settings = DemoSettings(**{**settings.__dict__, "orders": args.orders})
    if args.render:
        record = json.loads(args.render.read_text(encoding="utf-8"))
        return write_outputs(record, settings.local_dir, console)
    return run(settings, console)


if __name__ == "__main__":
    sys.exit(main())
