"""Query the delivery-fact history with DuckDB (embedded): the JSON lines the delivery-facts consumer
writes to ``facts/dt=YYYY-MM-DD/*.jsonl`` in the history bucket, or the same layout in a directory.

    python -m tools.history query "SELECT carrier, count(*) FROM facts GROUP BY carrier"
    python -m tools.history --dir var/history query "SELECT ..."           # files already on disk
    python -m tools.history --stack parcelhub-prod --since 2026-11-01 query "SELECT ..."   # deployed

Sources: the running local stack (``var/local-stack.json``: moto's endpoint and the bucket; the
default), a deployed stack's ``HistoryBucketName`` output (standard AWS credentials), or ``--dir``. From
S3 the partitions (``--since``/``--until`` days) are copied into a cache directory first, then DuckDB
reads them locally (no DuckDB extension to download). Two views: ``facts`` (one row per shipment:
the history is written at least once, so a retried batch's duplicate is dropped) and ``facts_raw``
(every line, with its ``dt``). Athena queries the same files through the Glue table
(``docs/analytics.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

PREFIX = "facts/"
#: the columns and their DuckDB types (the Glue table in template.yaml declares the same)
COLUMNS: dict[str, str] = {
    "shipment_id": "VARCHAR",
    "carrier": "VARCHAR",
    "provider": "VARCHAR",
    "service": "VARCHAR",
    "origin_province": "VARCHAR",
    "origin_city": "VARCHAR",
    "destination_province": "VARCHAR",
    "destination_city": "VARCHAR",
    "outcome": "VARCHAR",
    "created_at": "TIMESTAMPTZ",
    "picked_up_at": "TIMESTAMPTZ",
    "arrived_at": "TIMESTAMPTZ",
    "out_for_delivery_at": "TIMESTAMPTZ",
    "first_attempt_at": "TIMESTAMPTZ",
    "delivered_at": "TIMESTAMPTZ",
    "ended_at": "TIMESTAMPTZ",
    "attempts": "INTEGER",
    "exception_reasons": "VARCHAR[]",
    "promised_latest": "TIMESTAMPTZ",
    "promised_most_likely": "TIMESTAMPTZ",
    "cost_fen": "BIGINT",
    "cost_billed": "BOOLEAN",
    "weight_kg": "DOUBLE",
    "week": "VARCHAR",
}


def _day(key: str) -> date | None:
    part = key.removeprefix(PREFIX).split("/", 1)[0]
    try:
        return date.fromisoformat(part.removeprefix("dt="))
    except ValueError:
        return None


def download(s3: Any, bucket: str, target: Path, since: date | None = None, until: date | None = None) -> int:
    """Copy the history's objects (the days asked for) into ``target``, keeping the ``dt=`` layout."""
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for obj in page.get("Contents", []):
            day = _day(obj["Key"])
            if day is None or (since and day < since) or (until and day > until):
                continue
            path = target / obj["Key"].removeprefix(PREFIX)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            count += 1
    return count


def connect(directory: Path) -> Any:
    """A DuckDB connection with the ``facts_raw`` and ``facts`` views over the JSON lines in ``directory``."""
    import duckdb

    connection = duckdb.connect()
    files = sorted(directory.glob("dt=*/*.jsonl"))
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    if files:
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        structure = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS.items()) + "}"
        connection.execute(
            f"CREATE VIEW facts_raw AS SELECT * FROM read_json([{listing}], format = 'newline_delimited', "  # noqa: S608 - paths we listed
            f"columns = {structure}, hive_partitioning = true)"
        )
    else:  # an empty history: the same columns, no rows
        connection.execute(f"CREATE TABLE facts_raw ({columns}, dt DATE)")
    connection.execute(
        "CREATE VIEW facts AS SELECT * EXCLUDE (rank) FROM ("
        " SELECT *, row_number() OVER (PARTITION BY shipment_id ORDER BY dt) AS rank FROM facts_raw"
        ") WHERE rank = 1"
    )
    return connection


def query(directory: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    connection = connect(directory)
    result = connection.execute(sql)
    names = [d[0] for d in result.description or []]
    return names, [tuple(row) for row in result.fetchall()]


def _s3_of_local(local_dir: Path) -> tuple[Any, str]:
    from sandbox.local.stack import moto_client

    handle = json.loads((local_dir / "local-stack.json").read_text(encoding="utf-8"))
    s3 = moto_client("s3", str(handle["moto_url"]))
    return s3, str(handle["resources"]["HistoryBucket"])


def _s3_of_stack(name: str) -> tuple[Any, str]:
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return boto3.client("s3"), outputs["HistoryBucketName"]


def query_local(local_dir: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``sql`` over the running local stack's history bucket."""
    s3, bucket = _s3_of_local(local_dir)
    with tempfile.TemporaryDirectory(prefix="parcelhub-history-") as cache:
        download(s3, bucket, Path(cache))
        return query(Path(cache), sql)


def _print(names: Sequence[str], rows: Sequence[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps([dict(zip(names, row, strict=True)) for row in rows], ensure_ascii=False, default=str))
        return
    cells = [[str(n) for n in names], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(names))]
    for index, line in enumerate(cells):
        print("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.history", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dir", type=Path, help="a directory holding dt=YYYY-MM-DD/*.jsonl")
    source.add_argument("--stack", help="a deployed stack's name (its HistoryBucketName output)")
    parser.add_argument("--local-dir", type=Path, default=Path("var"), help="the local stack's directory")
    parser.add_argument("--since", type=date.fromisoformat, help="first day (YYYY-MM-DD) to read from S3")
    parser.add_argument("--until", type=date.fromisoformat, help="last day (YYYY-MM-DD) to read from S3")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("query", help="run SQL over the views facts and facts_raw")
    ask.add_argument("sql")
    args = parser.parse_args(argv)
    if args.dir is not None:
        names, rows = query(args.dir, args.sql)
    else:
        s3, bucket = _s3_of_stack(args.stack) if args.stack else _s3_of_local(args.local_dir)
        with tempfile.TemporaryDirectory(prefix="parcelhub-history-") as cache:
            download(s3, bucket, Path(cache), args.since, args.until)
            names, rows = query(Path(cache), args.sql)
    _print(names, rows, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
