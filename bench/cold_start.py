"""Cold start: a fresh interpreter's import plus its FIRST invocation, per function, on the local stack.

What a carrier's first push or the OMS's first order waits for when Lambda starts a new execution
environment: the handler module's import, then the first request it serves, with everything that request
does the first time (config and secret reads, client construction, model building, the AWS calls).

The method (``python -m bench.cold_start``):

1. The local stack (``sandbox.local.stack.LocalStack``: moto in its own process, every resource of
   template.yaml, the carrier sandboxes, the pollers) runs in a subprocess of this command.
2. Each round "arms" every function: the NEXT invocation of that function the stack makes (the API
   request of a new order, the event relay's first stream batch, the dispatch's SQS batch, the workflow's
   first task input, the carrier's first webhook push, the normalizer's SQS batch, the delivery-facts
   stream batch, and each schedule's event) is not run in-process but in a fresh interpreter
   (``bench.cold_probe``) with the function's own environment, pointed at the stack's moto. Its result
   goes back to the stack, so the flow goes on as it would. The round posts one order
   (``POST /v1/shipments``), fires each schedule once, and waits until every function has served its
   cold request (the sandboxes push the tracking stages by themselves until DELIVERED).
3. In the fresh interpreter, botocore's ``Endpoint._send`` is timed (the time waiting on AWS) and every
   API call is recorded. After the rounds, each recorded call list is replayed by a minimal hand-written
   handler in another fresh interpreter: ``import boto3``, one client per service, the same calls in the
   same order, nothing else. Each round also times ``import boto3`` alone.
4. Per function, medians over the rounds: import, first invocation, AWS wait, and the framework overhead
   (ours + Powertools + pydantic) = our cold start minus its AWS wait, as a ratio to the minimal handler's
   cold start minus ITS AWS wait. The waits are moto's on this machine, not AWS's: they are reported but
   kept out of the ratio.

    python -m bench.cold_start [--repetitions 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPETITIONS = 5
#: written to stderr just before the timed import, so start-up imports are left out of the breakdown
MARKER = "--bench-import--"
#: the longest a round waits for every function's cold request
ROUND_TIMEOUT = 180.0
#: the stack's settings for the run: schedules fired by the bench only, sandboxes advancing quickly
STACK_ENV = {
    "PARCELHUB_PORT": "0",
    "PARCELHUB_SCHEDULE_SCALE": "1000",
    "PARCELHUB_SANDBOX_STAGE_SECONDS": "0.5",
    "PARCELHUB_TIME_SCALE": "0.5",
    "PARCELHUB_LOCAL_CONCURRENCY": "2",
}

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


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A Lambda-like environment: no debugger, nothing that changes imports, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "PYTHONBREAKPOINT"))}
    env.update({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONHASHSEED": "0"})
    return env | (extra or {})


# ------------------------------------------------------------------------------- the fresh interpreters


def child(mode: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run ``bench.cold_probe <mode>`` in a fresh interpreter; its JSON answer."""
    with tempfile.TemporaryDirectory(prefix="cold-") as folder:
        source, target = Path(folder) / "in.json", Path(folder) / "out.json"
        source.write_text(json.dumps(spec), encoding="utf-8")
        done = subprocess.run(  # noqa: S603 - this interpreter, our own module
            [sys.executable, "-m", "bench.cold_probe", mode, str(source), str(target)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not target.exists():
            raise RuntimeError(f"cold probe {mode} failed ({done.returncode}): {done.stderr.strip()[-600:]}")
        answer: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
        return answer


def probe(module: str, *, importtime: bool = False) -> dict[str, Any]:
    """Import ``module`` in a fresh interpreter (no stack); its timing (and ``-X importtime`` output)."""
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


# ------------------------------------------------------------------------------- cold requests in the stack


def lambda_runtime_env(function: Any) -> dict[str, str]:
    """What Lambda's Python runtime sets (with ``Tracing: Active``): the X-Ray SDK and Powertools see they
    run in Lambda (``LAMBDA_TASK_ROOT``), so the tracer is on, samples from the trace header (no sampling
    client of its own) and sends its segments to the daemon's UDP address, as in an execution environment."""
    trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1"
    return {
        "LAMBDA_TASK_ROOT": str(ROOT),
        "LAMBDA_RUNTIME_DIR": str(ROOT),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": function.handler,
        "_X_AMZN_TRACE_ID": trace,
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "PYTHONHASHSEED": "0",
    }


class _TaskError(Exception):
    """A cold invocation's error, re-raised in the stack under the handler's exception class name (Step
    Functions matches Retry/Catch on it)."""


def _error(payload: dict[str, Any]) -> Exception:
    name = str(payload.get("errorType") or "Exception")
    error: Exception = type(name, (_TaskError,), {})(str(payload.get("errorMessage", "")))
    return error


def _route(event: dict[str, Any]) -> str:
    """An HTTP event's route; a function URL's (route key ``$default``) is its method and path, an SF URL
    token left out."""
    if event["routeKey"] != "$default":
        return str(event["routeKey"]).split("/{")[0]
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", ""))
    path = str(event.get("rawPath", ""))
    return f"{method} {path.split('/sf/', maxsplit=1)[0] + '/sf' if '/sf/' in path else path}"


def describe(event: Any) -> str:
    """What kind of request an event is (for the table)."""
    if not isinstance(event, dict):
        return type(event).__name__
    if "routeKey" in event:
        return _route(event)
    records = event.get("Records")
    if isinstance(records, list) and records:
        source = str(records[0].get("eventSource") or records[0].get("EventSource") or "?")
        kind = {"aws:sqs": "SQS batch", "aws:dynamodb": "stream batch"}.get(source, source)
        return f"{kind} of {len(records)}"
    if "action" in event:
        return f"task {event['action']}"
    if event.get("detail-type") == "Scheduled Event":
        return f"schedule ({event.get('source')})"
    return "event"


class ColdRounds:
    """Runs the next invocation of each armed function in a fresh interpreter (``bench.cold_probe``)."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.functions = stack.functions
        self._warm = self.functions.handler
        self.functions.handler = self.handler  # ``Functions.invoke`` looks the handler up per invocation
        self.armed: set[str] = set()
        self.samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.changed = threading.Condition()

    def handler(self, logical: str) -> Any:
        with self.changed:
            cold = logical in self.armed
            self.armed.discard(logical)
        if not cold:
            return self._warm(logical)
        return lambda event, context: self.cold(logical, event, context)

    def cold(self, logical: str, event: Any, context: Any) -> Any:
        function = self.stack.plan.functions[logical]
        spec = {
            "module": function.module,
            "attribute": function.attribute,
            "event": event,
            "context": {
                "function_name": context.function_name,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
        }
        env = dict(os.environ) | function.environment | lambda_runtime_env(function)
        try:
            out = child("handler", spec, env)
        except Exception as exc:
            out = {"error": {"errorType": "ProbeFailed", "errorMessage": str(exc)}, "probe_failed": True}
        out["request"] = describe(event)
        with self.changed:
            self.samples[logical].append(out)
            self.changed.notify_all()
        if "error" in out:
            raise _error(out["error"])
        return out.get("result")

    def arm(self, logicals: list[str]) -> None:
        with self.changed:
            self.armed = set(logicals)

    def wait(self, timeout: float) -> set[str]:
        """Until every armed function has served its cold request; the ones that did not, at the timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.armed and time.monotonic() < deadline:
                self.changed.wait(timeout=0.5)
            missing, self.armed = set(self.armed), set()
        return missing


def _order(index: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "tests" / "fixtures" / "waybill" / "shipment_request.json").read_text())
    body["order_id"] = f"COLD-{uuid.uuid4().hex[:8]}-{index:03d}"
    return body


def measure(repetitions: int, workdir: Path) -> dict[str, Any]:
    """The rounds on the local stack, then the minimal handlers' replays (see the module docstring)."""
    import requests

    from sandbox.local.lambdas import FunctionError
    from sandbox.local.schedules import scheduled_event
    from sandbox.local.settings import LocalSettings
    from sandbox.local.stack import FAKE_CREDENTIALS, LocalStack

    settings = LocalSettings.from_env(
        STACK_ENV | {"PARCELHUB_LOCAL_DIR": str(workdir), "PARCELHUB_TEMPLATE": str(ROOT / "template.yaml")}
    )
    boto3_ms: list[float] = []
    missing: dict[str, int] = defaultdict(int)
    with LocalStack(settings, echo=lambda _: None) as stack:
        if stack.unavailable:
            raise RuntimeError(f"functions not runnable: {stack.unavailable}")
        assert stack.plan is not None
        assert stack.functions is not None
        plan, functions = stack.plan, stack.functions
        rounds = ColdRounds(stack)
        logicals = sorted(plan.functions)
        schedules = {s.function: s for s in reversed(plan.schedules) if s.function and s.enabled}
        for index in range(repetitions):
            boto3_ms.append(child("boto3", {}, _env(FAKE_CREDENTIALS))["import_ms"])
            rounds.arm(logicals)
            for logical, schedule in sorted(schedules.items()):
                with contextlib.suppress(FunctionError):  # the error is recorded with the sample
                    functions.invoke(logical, scheduled_event(schedule))
            headers = {"x-api-key": stack.settings.api_key}
            reply = requests.post(f"{stack.api_url}/v1/shipments", json=_order(index), headers=headers, timeout=120)
            if reply.status_code not in (200, 201, 202):
                raise RuntimeError(f"POST /v1/shipments -> {reply.status_code}: {reply.text[:300]}")
            for logical in rounds.wait(ROUND_TIMEOUT):
                missing[logical] += 1
        time.sleep(1.0)
        replay_env = _env(FAKE_CREDENTIALS | {"AWS_ENDPOINT_URL": stack.moto_url})
        minimal: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for logical in logicals:
            for sample in rounds.samples[logical]:
                if "calls" in sample:
                    minimal[logical].append(child("minimal", {"calls": sample["calls"]}, replay_env))
        names = {logical: plan.functions[logical].module.split(".")[1] for logical in logicals}
        memory = {logical: plan.functions[logical].memory for logical in logicals}
        samples = dict(rounds.samples)
    results = summarize(names, samples, minimal, boto3_ms, dict(missing))
    for logical, name in names.items():
        results[name]["memory_mb"] = memory[logical]
    return results


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def summarize(
    names: dict[str, str],
    samples: dict[str, list[dict[str, Any]]],
    minimal: dict[str, list[dict[str, Any]]],
    boto3_ms: list[float],
    missing: dict[str, int],
) -> dict[str, Any]:
    """Per function (by its folder name): medians over the rounds, and the ratios."""
    out: dict[str, Any] = {}
    boto3_median = _median(boto3_ms)
    for logical, name in sorted(names.items(), key=lambda item: item[1]):
        runs = [s for s in samples.get(logical, []) if not s.get("probe_failed")]
        if not runs:
            out[name] = {"error": f"no cold request served ({missing.get(logical, 0)} rounds timed out)"}
            continue
        cold = [r["import_ms"] + r["invoke_ms"] for r in runs]
        own = [r["import_ms"] + r["invoke_ms"] - r["aws_wait_ms"] for r in runs]
        replays = minimal.get(logical, [])
        minimal_cold = [m["import_ms"] + m["invoke_ms"] for m in replays]
        minimal_own = [m["import_ms"] + m["invoke_ms"] - m["aws_wait_ms"] for m in replays]
        first = runs[0]
        calls: dict[str, int] = defaultdict(int)
        for call in first["calls"]:
            calls[f"{call['service']}.{call['operation']}"] += 1
        row = {
            "request": first["request"],
            "import_ms": _median([r["import_ms"] for r in runs]),
            "first_invocation_ms": _median([r["invoke_ms"] for r in runs]),
            "cold_ms": _median(cold),
            "aws_wait_ms": _median([r["aws_wait_ms"] for r in runs]),
            "aws_requests": int(statistics.median([r["aws_requests"] for r in runs])),
            "own_ms": _median(own),
            "boto3_ms": boto3_median,
            "minimal_cold_ms": _median(minimal_cold),
            "minimal_aws_wait_ms": _median([m["aws_wait_ms"] for m in replays]),
            "minimal_own_ms": _median(minimal_own),
            "import_ratio_to_boto3": round(_median([r["import_ms"] for r in runs]) / boto3_median, 2),
            "cold_ratio_to_minimal": round(_median(cold) / _median(minimal_cold), 2) if minimal_cold else None,
            "overhead_ratio": round(_median(own) / _median(minimal_own), 2) if minimal_own else None,
            # CPU time of the same interpreters: what the wall times are made of, less sensitive to whatever
            # else the machine runs (the comparisons before/after a change use it)
            "cpu_ms": _median([r["cpu_ms"] for r in runs]),
            "minimal_cpu_ms": _median([m["cpu_ms"] for m in replays]),
            "cpu_ratio": round(_median([r["cpu_ms"] for r in runs]) / _median([m["cpu_ms"] for m in replays]), 2)
            if replays
            else None,
            "calls_first_round": dict(calls),
            "aws_requests_first_round": int(first["aws_requests"]),
            "errors": sorted({r["error"]["errorType"] for r in runs if "error" in r}),
            "rounds": len(runs),
            "rounds_missed": missing.get(logical, 0),
            "modules_after_invoke": int(statistics.median([r["modules_after_invoke"] for r in runs])),
        }
        out[name] = row
    return out


def run(repetitions: int = DEFAULT_REPETITIONS, *, breakdown: bool = True) -> dict[str, Any]:
    """``{function: {...}}``: the rounds in a subprocess of their own (the stack's in-process handlers log
    to its stdout, and its moto state stays out of this process), plus one ``-X importtime`` run per
    function for the heaviest packages of the import."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        workdir = Path(folder)
        target = workdir / "cold.json"
        with (workdir / "stdout.log").open("w") as stdout, (workdir / "stderr.log").open("w") as stderr:
            done = subprocess.run(  # noqa: S603 - this interpreter, our own module
                [sys.executable, "-m", "bench.cold_start", "--repetitions", str(repetitions), "--json", str(target)],
                stdout=stdout,
                stderr=stderr,
                cwd=ROOT,
                env=_env(),
                timeout=ROUND_TIMEOUT * (repetitions + 2),
                check=False,
            )
        if done.returncode != 0 or not target.exists():
            tail = (workdir / "stderr.log").read_text(encoding="utf-8", errors="replace")[-1500:]
            raise RuntimeError(f"cold-start rounds failed ({done.returncode}): {tail}")
        results: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    if breakdown:
        for name, row in results.items():
            if "error" not in row:
                row["top_packages_self_ms"] = probe(f"functions.{name}.handler", importtime=True)["by_package"]
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        (
            "| function | first request | import ms | first invocation ms | of which AWS wait ms (requests) "
            "| cold start ms | minimal handler ms (AWS wait) | CPU ms: ours / minimal | **overhead ratio (CPU)** "
            "| wall ratio, AWS wait excluded | `import boto3` ms |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['request']} | {r['import_ms']} | {r['first_invocation_ms']} | "
            f"{r['aws_wait_ms']} ({r['aws_requests']}) | {r['cold_ms']} | "
            f"{r['minimal_cold_ms']} ({r['minimal_aws_wait_ms']}) | {r['cpu_ms']} / {r['minimal_cpu_ms']} | "
            f"**{r['cpu_ratio']}** | {r['overhead_ratio']} | {r['boto3_ms']} |"
        )
    return "\n".join(lines)


def breakdown_table(results: dict[str, Any]) -> str:
    lines = ["| function | AWS calls of the first request | heaviest packages of the import (self ms) |"]
    lines.append("|---|---|---|")
    for name, r in results.items():
        if "error" in r:
            continue
        calls = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in r["calls_first_round"].items()) or "none"
        heavy = ", ".join(f"{pkg} {ms}" for pkg, ms in list(r.get("top_packages_self_ms", {}).items())[:4])
        lines.append(f"| {name} | {calls} | {heavy} |")
    return "\n".join(lines)


#: what was reduced, each its own commit, with the medians before and after (``python -m bench.cold_start``
#: on this 2-core machine; the before/after pairs come from back-to-back runs, so compare within a pair)
REDUCTIONS: tuple[str, ...] = (
    (
        "- **One boto3 session** (`adapters/parameters.py`, commit faeb7a2): Powertools' SSM and Secrets Manager "
        "providers now use the process's cached clients; their default providers each built a boto3 session of "
        "their own, which loads botocore's endpoint rules and service data a second and third time. CPU ms of "
        "the cold start, median of 3 rounds, before -> after: shipments_api 679 -> 584, tracking_normalizer "
        "601 -> 502, tracking_poller 492 -> 425, waybill_tasks 632 -> 573, stall_detector 454 -> 406, "
        "delivery_facts 494 -> 464, carrier_webhook 411 -> 387 (waybill_dispatch and waybill_recovery read no "
        "config or secret on their first request: unchanged)."
    ),
    (
        "- **A smaller tracer** (`observability.py`, `carriers/http.py`, commit 96afb17): the X-Ray tracer "
        "patches botocore when it is built and `requests` when the first carrier session is made, instead of "
        "Powertools' default `patch_all` (every library the X-Ray SDK supports that is installed, importing "
        "requests and sqlite3 in functions that never use them). Before -> after: shipments_api 696 -> 594, "
        "delivery_facts 540 -> 466, tracking_poller 496 -> 433, stall_detector 481 -> 435, "
        "tracking_normalizer 603 -> 556, event_relay 535 -> 501, waybill_dispatch 457 -> 424, waybill_tasks "
        "625 -> 592, carrier_webhook 445 -> 429, waybill_recovery 513 -> 500. Every AWS call and every carrier "
        "call is still traced."
    ),
    (
        "- **Measured, not reduced**: the first requests' AWS calls are each needed (the OMS key hashes, the "
        "config document, the data key that encrypts the parties, the provider secrets that decide which "
        "carriers can issue a waybill, the pushing provider's push secret); the Lambda-mode X-Ray recorder "
        "makes no sampling call of its own. What is left of the overhead is importing and building the "
        "configuration and event models (pydantic) the first request validates, Powertools' logger, metrics "
        "and tracer, and botocore's per-client work that the minimal handler shares. Lazy model building "
        "(routers and event contracts built on first use) is the next step where a first request uses a small "
        "part of a module's models (the API's routes, the relay's contracts)."
    ),
)


def markdown(results: dict[str, Any], command_line: str, measured: dict[str, Any] | None = None) -> str:
    """The "Cold starts" section of docs/performance.md: the table, the method, the reductions, SnapStart.
    ``measured``: when and where, if this section was measured apart from the rest of the page."""
    from bench import snapstart

    rows = [r for r in results.values() if "error" not in r]
    worst = max(rows, key=lambda r: r["cpu_ms"]) if rows else None
    out = ["## Cold starts: import plus the first request", "", f"`{command_line}`", ""]
    if measured:
        out += [
            (
                f"Measured {measured['at']} at commit `{measured['commit']}` on {measured['machine']['cpus']} CPUs, "
                f"Python {measured['machine']['python']}, load average {measured.get('load_average', '?')} "
                "(`python -m bench.cold_start --write`)."
            ),
            "",
        ]
    out += [
        (
            "What the first request a new execution environment serves waits for: the handler's import, then its "
            "first invocation with everything it does the first time (config and secret reads, boto3 sessions and "
            "clients, Powertools' logger/metrics/tracer, pydantic models built, the AWS calls). Medians over the "
            "rounds; times in ms on this machine (2 cores), AWS waits are moto's on loopback, not AWS's."
        ),
        "",
        table(results),
        "",
        (
            "*overhead ratio (CPU)* = the CPU time of our cold start (import + first invocation) / the CPU time of "
            "a hand-written handler that imports boto3 and makes the same AWS calls, in the same order, with one "
            "client per service: what ours + Powertools + pydantic cost, waits on AWS excluded by construction. "
            "It is the headline because this machine is shared: wall times swing with its load (see the load "
            "average above; `import boto3` alone is about 110 ms of wall time when the machine is idle), CPU "
            "times barely. The wall ratio is (cold start - its AWS wait) / (minimal - its AWS wait)."
        ),
        "",
        breakdown_table(results),
        "",
        "### Method",
        "",
        (
            "1. `bench/cold_start.py` starts the local stack (moto in its own process, every resource of "
            "template.yaml, the carrier sandboxes, the pollers) and, each round, *arms* every function: the "
            "stack's next invocation of it runs not in-process but in a fresh interpreter (`bench/cold_probe.py`) "
            "with the function's environment and Lambda's runtime variables (`LAMBDA_TASK_ROOT`, a sampled "
            "`_X_AMZN_TRACE_ID`: the tracer is on, as with `Tracing: Active`), pointed at the stack's moto. Its "
            "answer goes back to the stack, so the flow goes on. A round posts one order and fires each schedule "
            "once; the stack's own flow then delivers the event relay's and the delivery facts' stream batches, "
            "the dispatch's SQS batch, the workflow's first task input, the carriers' webhook pushes and the "
            "normalizer's SQS batch — real events, not fixtures."
        ),
        (
            "2. In the fresh interpreter nothing but the standard library is loaded before the clock starts; an "
            "import hook patches botocore as it is imported (no early import): `Endpoint._send` is timed (the AWS "
            "wait: every HTTP round trip, retries included) and `BaseClient._make_api_call` records each call."
        ),
        (
            "3. Each recorded call list is then replayed by the minimal handler in another fresh interpreter "
            "(`import boto3`, `boto3.client(service)` per service, the calls; an error answer still counts as the "
            "request it is). Each round also times `import boto3` alone. IAM checks of the local stack are not "
            "applied in the fresh interpreters (the same calls pass them in-process)."
        ),
        "",
    ]
    if REDUCTIONS:
        out += ["### What was reduced", "", *REDUCTIONS, ""]
    out += [
        "### SnapStart for Python: when it would pay for itself",
        "",
        (
            f"Prices: cache USD {snapstart.CACHE_USD_PER_GB_SECOND:.10f} per GB-second a published version's "
            f"snapshot is kept, restore USD {snapstart.RESTORE_USD_PER_GB:.10f} per GB per new execution environment, "
            f"on top of requests and duration (on-demand duration USD {snapstart.DURATION_USD_PER_GB_SECOND:.10f} per "
            "GB-second). Sources: " + "; ".join(snapstart.SOURCES) + "."
        ),
        "",
        snapstart.table(results),
        "",
        (
            f"- In money it never pays: a restore costs about {_times(results)} times the duration it could save "
            "(the whole cold start's CPU time, billed at on-demand rates), and keeping one "
            f"version of each of the {len(rows)} functions cached costs USD "
            f"{snapstart.fleet_cache_usd_per_month(results)} a month whatever the traffic — what "
            f"{snapstart.fleet_cache_usd_per_month(results) / 0.10:,.0f} thousand shipments cost at this project's "
            "target of USD 0.10 per 1,000, before any restore."
        ),
        (
            "- It would only buy latency, and only after a change: these handlers defer their imports into the "
            "first invocation (nothing at import time in the layer), so a snapshot of the INIT phase would hold "
            "almost nothing. SnapStart pays only with the imports and model building moved into INIT (or a "
            "before-snapshot hook that warms them), while secrets, config and connections must still be read "
            "after restore (a snapshot must not carry them)."
        ),
        (
            "- So it pays for itself when a caller's deadline is at stake: the slowest first request measured "
            + (
                f"here is {_name(results, worst)}'s: {worst['cpu_ms']} ms of CPU ({worst['cold_ms']} ms of wall time "
                "on this shared machine), "
                if worst
                else ""
            )
            + "well inside a carrier's push timeout (a few seconds) and the OMS's. Revisit when CloudWatch "
            "shows a function's Init Duration plus first Duration above about 2 s at p99 for the webhook or the "
            "API, or when cold starts become a large share of invocations (bursty traffic after idle periods)."
        ),
        "",
    ]
    return "\n".join(out)


def _name(results: dict[str, Any], row: dict[str, Any]) -> str:
    return next(name for name, r in results.items() if r is row)


def _times(results: dict[str, Any]) -> str:
    from bench import snapstart

    ratios = []
    for name, row in results.items():
        if "error" in row or "memory_mb" not in row:
            continue
        e = snapstart.economics(name, row)
        if e["duration_saved_usd"] > 0:
            ratios.append(e["restore_usd"] / e["duration_saved_usd"])
    return f"{min(ratios):.0f}-{max(ratios):.0f}" if ratios else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=DEFAULT_REPETITIONS)
    parser.add_argument("--json", type=Path, help="(internal) measure in this process and write the rounds here")
    parser.add_argument(
        "--write",
        action="store_true",
        help="also replace the cold_start section of bench/results.json (the other sections kept) and regenerate "
        "docs/performance.md from it",
    )
    args = parser.parse_args(argv)
    if args.json:
        with tempfile.TemporaryDirectory(prefix="bench-cold-stack-") as folder:
            args.json.write_text(json.dumps(measure(args.repetitions, Path(folder)), indent=2), encoding="utf-8")
        return 0
    print(f"$ {command(args.repetitions)}")
    started = time.monotonic()
    results = run(args.repetitions)
    print(table(results))
    print()
    print(breakdown_table(results))
    if args.write:
        write(results, args.repetitions, time.monotonic() - started)
    return 0


def write(results: dict[str, Any], repetitions: int, seconds: float) -> None:
    """This run's figures into bench/results.json's cold-start keys and docs/performance.md's cold-start
    section; every other key and section is left as the last ``make bench`` wrote it."""
    from datetime import UTC, datetime

    from bench import report

    document: dict[str, Any] = json.loads(report.RESULTS.read_text(encoding="utf-8"))
    document["cold_start"] = results
    document.setdefault("commands", {})["cold_start"] = command(repetitions)
    document.setdefault("durations_s", {})["cold_start"] = round(seconds, 1)
    document["cold_start_measured"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": report.commit(),
        "machine": report.machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
    report.RESULTS.write_text(text, encoding="utf-8")
    section = markdown(results, document["commands"]["cold_start"], document["cold_start_measured"])
    page = report.PERFORMANCE.read_text(encoding="utf-8")
    report.PERFORMANCE.write_text(splice(page, section.rstrip("\n") + "\n\n"), encoding="utf-8")


def splice(page: str, section: str) -> str:
    """``page`` with its cold-start section (a ``## Cold start`` heading up to the next ``## ``) replaced by
    ``section``, or ``section`` put before the hot-path section (or at the end) when it has none."""
    lines = page.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("## Cold start")), None)
    if start is None:
        start = next((i for i, line in enumerate(lines) if line.startswith("## Hot path")), len(lines))
        end = start
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "".join(lines[:start]) + section + "".join(lines[end:])


if __name__ == "__main__":
    raise SystemExit(main())
