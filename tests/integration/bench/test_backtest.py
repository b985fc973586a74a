"""``make backtest``: the default history meets the issue's bar, a brand's CSV runs the same way, and a
bad CSV row is refused naming its row and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import backtest
from sandbox.lanes import HISTORY_FIELDS, generate_history, write_csv

pytestmark = pytest.mark.integration

GOOD_ROW = (
    "SF,standard,浙江省,杭州市,北京市,北京市,"
    "2026-10-09T10:12:00+08:00,2026-10-09T17:40:00+08:00,2026-10-11T11:05:00+08:00"
)


def test_the_default_history_beats_both_baselines_with_a_window_covering_75_to_95_percent() -> None:
    # Given the sandboxes' seeded synthetic history
    rows = generate_history()

    # When the estimator is backtested on its last 40 %
    result = backtest.run(rows)

    # Then it beats both baselines on MAE and on the ±1-day share, and its window covers 75-95 %
    figures = result["results"]
    for baseline in ("static_table", "national_median"):
        assert figures["estimator"]["mae_days"] < figures[baseline]["mae_days"]
        assert figures["estimator"]["within_1_day"] > figures[baseline]["within_1_day"]
    assert 0.75 <= figures["estimator"]["window_coverage"] <= 0.95
    assert result["holiday_crossing"]["parcels"] > 0


def test_a_brands_csv_runs_through_the_same_command_and_writes_the_results(tmp_path: Path) -> None:
    # Given a brand's delivered history in the documented CSV format
    history = tmp_path / "history.csv"
    write_csv(generate_history(2500, seed=4), history)
    results, doc = tmp_path / "results.json", tmp_path / "estimates.md"
    results.write_text(json.dumps({"cost": {"kept": True}}), encoding="utf-8")

    # When make backtest HISTORY=history.csv runs
    code = backtest.main(["--history", str(history), "--results", str(results), "--doc", str(doc)])

    # Then it scores the held-out parcels, keeps the other results and writes the figures into the doc
    assert code == 0
    written = json.loads(results.read_text(encoding="utf-8"))
    assert written["cost"] == {"kept": True}
    assert written["edd_backtest"]["command"] == f"make backtest HISTORY={history}"
    assert written["edd_backtest"]["test"] > 0
    text = doc.read_text(encoding="utf-8")
    assert "| parcelhub estimator, at creation |" in text
    assert text.count(backtest.DOC_START) == 1


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (GOOD_ROW.replace("2026-10-11T11:05:00+08:00", "2026-10-11 11:05"), "delivered_at", "no UTC offset"),
        (GOOD_ROW.replace("2026-10-09T17:40:00+08:00", "yesterday"), "picked_up_at", "not an ISO 8601 time"),
        (GOOD_ROW.replace("北京市,北京市", "北京市,"), "destination_city", "is empty"),
        (GOOD_ROW.replace("2026-10-11T11:05:00+08:00", "2026-10-08T11:05:00+08:00"), "delivered_at", "before"),
    ],
)
def test_a_bad_row_is_refused_with_its_row_and_field(tmp_path: Path, row: str, field: str, problem: str) -> None:
    # Given a CSV whose third data row is bad
    history = tmp_path / "history.csv"
    history.write_text("\n".join([",".join(HISTORY_FIELDS), GOOD_ROW, GOOD_ROW, row]) + "\n", encoding="utf-8")

    # When it is read
    with pytest.raises(backtest.HistoryError) as refused:
        backtest.read_history(history)

    # Then the error names the row (the header is row 1) and the field
    assert (refused.value.row, refused.value.field) == (4, field)
    assert problem in str(refused.value)
    assert str(refused.value).startswith(f"row 4, field {field}:")


def test_a_missing_header_column_and_the_cli_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a CSV without the service column
    history = tmp_path / "history.csv"
    fields = [name for name in HISTORY_FIELDS if name != "service"]
    history.write_text(",".join(fields) + "\n", encoding="utf-8")

    # When make backtest runs on it
    code = backtest.main(
        ["--history", str(history), "--results", str(tmp_path / "r.json"), "--doc", str(tmp_path / "d.md")]
    )

    # Then it stops with exit code 2 and says which field is missing, writing nothing
    assert code == 2
    assert "row 1, field service: missing from the header" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
