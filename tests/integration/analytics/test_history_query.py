"""The S3 history queried with DuckDB (``tools.history``): the JSON lines the consumer writes, read back
as typed columns, a retried batch's duplicate dropped by the ``facts`` view."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import boto3

from parcelhub import composition
from parcelhub.domain.lanes import DeliveryFact, Lane, Outcome
from parcelhub.domain.models import CHINA_TZ
from tests.conftest import REGION, HubAws
from tools import history

DAY = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)


def a_fact(n: int, carrier: str, hours: float, day: datetime = DAY) -> DeliveryFact:
    return DeliveryFact(
        shipment_id=f"shp_{n}",
        carrier=carrier,
        provider="kdniao",
        service="standard",
        lane=Lane("浙江省", "杭州市", "广东省", "广州市"),
        outcome=Outcome.DELIVERED,
        created_at=day - timedelta(hours=hours + 4),
        picked_up_at=day - timedelta(hours=hours),
        delivered_at=day,
        ended_at=day,
        attempts=1,
        exception_reasons=("HELD",) if n % 2 else (),
        cost_fen=1600 + n,
    )


def test_the_history_is_queried_with_duckdb(hub_aws: HubAws, tmp_path: Path) -> None:
    # Given facts written to the history in two batches, one fact twice (a retried batch) and one a day later
    archive = composition.fact_history()
    archive.put_facts([a_fact(1, "ZTO", 30), a_fact(2, "ZTO", 40), a_fact(3, "SF", 20)])
    archive.put_facts([a_fact(2, "ZTO", 40), a_fact(4, "SF", 22, DAY + timedelta(days=1))])
    # When the CLI's download and DuckDB views read them
    s3 = boto3.client("s3", region_name=REGION)
    assert history.download(s3, "parcelhub-test-history", tmp_path) == 3
    days = sorted(p.parent.name for p in tmp_path.glob("dt=*/*.jsonl"))
    assert days == ["dt=2026-11-26", "dt=2026-11-26", "dt=2026-11-27"]
    names, rows = history.query(
        tmp_path,
        "SELECT carrier, count(*) AS parcels, "
        "round(median(date_diff('minute', picked_up_at, delivered_at)) / 60.0, 1) AS transit_h, "
        "sum(cost_fen) AS cost_fen, count(*) FILTER (WHERE list_contains(exception_reasons, 'HELD')) AS held "
        "FROM facts GROUP BY carrier ORDER BY carrier",
    )
    # Then each shipment counts once, with typed times, arrays and numbers
    assert names == ["carrier", "parcels", "transit_h", "cost_fen", "held"]
    assert rows == [("SF", 2, 21.0, 1603 + 1604, 1), ("ZTO", 2, 35.0, 1601 + 1602, 1)]
    assert history.query(tmp_path, "SELECT count(*) FROM facts_raw")[1] == [(5,)]
    assert history.query(tmp_path, "SELECT dt, count(*) FROM facts GROUP BY dt ORDER BY dt")[1] == [
        (date(2026, 11, 26), 3),
        (date(2026, 11, 27), 1),
    ]


def test_an_empty_history_has_the_columns_and_no_rows(tmp_path: Path) -> None:
    names, rows = history.query(tmp_path, "SELECT shipment_id, cost_fen FROM facts")
    assert (names, rows) == (["shipment_id", "cost_fen"], [])


def test_the_cli_reads_a_directory(tmp_path: Path, capsys: object) -> None:
    from parcelhub.adapters.s3_history import json_lines

    day = tmp_path / "dt=2026-11-26"
    day.mkdir()
    (day / "batch.jsonl").write_bytes(json_lines([a_fact(7, "YTO", 10)]))
    sql = "SELECT carrier, attempts FROM facts"
    assert history.main(["--dir", str(tmp_path), "--format", "json", "query", sql]) == 0
    assert '"carrier": "YTO"' in capsys.readouterr().out  # type: ignore[attr-defined]
