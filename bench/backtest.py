"""``python -m bench.backtest`` (``make backtest``): the delivery-date estimator on a delivered history.

Time-based holdout: the parcels created in the last ``--holdout`` share of the history's span are the test
set; the estimator learns only from parcels *delivered* before the first of them was created (what the
lane cells would have held then), folded with the same ``domain.lanes.contribution`` the scorecard writer
uses. Each test parcel is estimated at creation (and again at pickup) and compared, by local date, with its
delivery: mean absolute error in days, share exactly right, share within one day, and how often the
delivery fell inside the earliest-latest window. Two baselines run on the same parcels: a static
per-carrier transit table (the kind carriers publish) and the carrier-national median of the training set.

Default: the sandboxes' synthetic history (``sandbox.lanes``, seeded). ``--history file.csv`` (``make
backtest HISTORY=file.csv``) reads a brand's own; the format is in the README ("Delivery estimates").
Writes ``bench/results.json`` (key ``edd_backtest``) and the figures of ``docs/estimates.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from parcelhub.domain.delivery_clock import CHINA_TZ, HOLIDAY_PACE, day_pace, local_day
from parcelhub.domain.estimate import EstimateRequest, EstimateSettings, estimate
from parcelhub.domain.lanes import DeliveryFact, Lane, LaneLevel, LaneStats, Milestone, Outcome, contribution, lane_key
from sandbox.lanes import HISTORY_FIELDS, HistoryRow, generate_history

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "estimates.md"
DOC_START, DOC_END = "<!-- backtest:start -->", "<!-- backtest:end -->"

#: the static baseline: whole days from creation, as carriers publish them for mainland China
STATIC_TRANSIT_DAYS: dict[str, int] = {"SF": 2, "JD": 2, "ZTO": 3, "YTO": 3, "STO": 3, "YD": 3, "JTSD": 3, "EMS": 4}
STATIC_DEFAULT_DAYS = 3
_TIMES = ("created_at", "picked_up_at", "delivered_at")
_LEVELS = (LaneLevel.CITY, LaneLevel.PROVINCE, LaneLevel.NATIONAL)


class HistoryError(ValueError):
    """A history row the backtest cannot use: names the row (1 = the header) and the field."""

    def __init__(self, row: int, field: str, problem: str) -> None:
        super().__init__(f"row {row}, field {field}: {problem}")
        self.row, self.field, self.problem = row, field, problem


def _time(row_number: int, name: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HistoryError(row_number, name, f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise HistoryError(row_number, name, f"has no UTC offset: {text!r} (write e.g. 2026-10-01T09:30:00+08:00)")
    return moment


def read_history(path: Path) -> list[HistoryRow]:
    """The rows of a history CSV (header ``HISTORY_FIELDS``), or :class:`HistoryError` for the first bad one."""
    with path.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        missing = [name for name in HISTORY_FIELDS if name not in (reader.fieldnames or ())]
        if missing:
            raise HistoryError(1, missing[0], f"missing from the header (expected {','.join(HISTORY_FIELDS)})")
        rows: list[HistoryRow] = []
        for row_number, record in enumerate(reader, start=2):
            for name in HISTORY_FIELDS:
                if not (record.get(name) or "").strip():
                    raise HistoryError(row_number, name, "is empty")
            created, picked_up, delivered = (_time(row_number, name, record[name]) for name in _TIMES)
            if picked_up < created:
                raise HistoryError(row_number, "picked_up_at", "is before created_at")
            if delivered < picked_up:
                raise HistoryError(row_number, "delivered_at", "is before picked_up_at")
            carrier, service, origin_province, origin_city, province, city = (
                record[name].strip() for name in HISTORY_FIELDS[:6]
            )
            rows.append(
                HistoryRow(
                    carrier, service, origin_province, origin_city, province, city, created, picked_up, delivered
                )
            )
    if not rows:
        raise HistoryError(2, "carrier", "the history has no rows")
    return sorted(rows, key=lambda r: r.created_at)


def _lane(row: HistoryRow) -> Lane:
    return Lane(row.origin_province, row.origin_city, row.destination_province, row.destination_city)


def fact_of(row: HistoryRow, index: int) -> DeliveryFact:
    return DeliveryFact(
        shipment_id=f"H{index}", carrier=row.carrier, provider="history", service=row.service, lane=_lane(row),
        outcome=Outcome.DELIVERED, created_at=row.created_at, picked_up_at=row.picked_up_at,
        delivered_at=row.delivered_at, ended_at=row.delivered_at, attempts=1,
    )  # fmt: skip


@dataclass
class Score:
    """Errors in whole local days and window hits of one method on the test parcels."""

    errors: list[int]
    inside: list[bool]
    widths: list[int]

    @classmethod
    def empty(cls) -> Score:
        return cls([], [], [])

    def add(self, predicted: date, actual: datetime, earliest: date, latest: date) -> None:
        day = local_day(actual)
        self.errors.append(abs((day - predicted).days))
        self.inside.append(earliest <= day <= latest)
        self.widths.append((latest - earliest).days + 1)

    def summary(self) -> dict[str, float]:
        n = len(self.errors) or 1
        return {
            "mae_days": round(sum(self.errors) / n, 3),
            "exact": round(sum(e == 0 for e in self.errors) / n, 3),
            "within_1_day": round(sum(e <= 1 for e in self.errors) / n, 3),
            "window_coverage": round(sum(self.inside) / n, 3),
            "mean_window_days": round(sum(self.widths) / n, 2),
        }


def split(rows: Sequence[HistoryRow], holdout: float) -> tuple[list[HistoryRow], list[HistoryRow], datetime]:
    """Training rows (delivered before the split) and test rows (created at or after it)."""
    first, last = rows[0].created_at, rows[-1].created_at
    split_at = first + (last - first) * (1.0 - holdout)
    train = [row for row in rows if row.delivered_at < split_at]
    test = [row for row in rows if row.created_at >= split_at]
    return train, test, split_at


def lane_cells(rows: Iterable[HistoryRow]) -> dict[tuple[str, str, LaneLevel, str], LaneStats]:
    """What the all-time lane cells would hold: every fact's contribution at every level."""
    cells: dict[tuple[str, str, LaneLevel, str], LaneStats] = defaultdict(LaneStats)
    for index, row in enumerate(rows):
        stats = contribution(fact_of(row, index))
        for level in _LEVELS:
            key = (row.carrier, row.service, level, lane_key(_lane(row), level))
            cells[key] = cells[key] + stats
    return cells


def _stats_for(
    cells: Mapping[tuple[str, str, LaneLevel, str], LaneStats], row: HistoryRow
) -> dict[tuple[str, LaneLevel], LaneStats]:
    found = {}
    for level in _LEVELS:
        cell = cells.get((row.carrier, row.service, level, lane_key(_lane(row), level)))
        if cell is not None:
            found[(row.carrier, level)] = cell
    return found


def _add(targets: Sequence[dict[str, Score]], name: str, *judged: Any) -> None:
    """Add one (predicted, actual, earliest, latest) judgement to ``name`` in each score set."""
    for scores in targets:
        scores[name].add(*judged)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def crosses_holiday(row: HistoryRow) -> bool:
    """Whether a public holiday fell between the parcel's creation and its delivery (local dates)."""
    day, last = local_day(row.created_at), local_day(row.delivered_at)
    while day <= last:
        if day_pace(day)[0] == HOLIDAY_PACE:
            return True
        day += timedelta(days=1)
    return False


def run(
    rows: Sequence[HistoryRow], *, holdout: float = 0.4, settings: EstimateSettings | None = None
) -> dict[str, Any]:
    settings = settings or EstimateSettings()
    train, test, split_at = split(rows, holdout)
    if not train or not test:
        raise HistoryError(2, "created_at", "the history is too short to hold out its last part")
    cells = lane_cells(train)
    national: dict[str, list[float]] = defaultdict(list)
    for row in train:
        national[row.carrier].append((row.delivered_at - row.created_at).total_seconds() / 3600.0)
    scores = {name: Score.empty() for name in _LABELS}
    holiday = {name: Score.empty() for name in _LABELS}
    bases: dict[str, int] = defaultdict(int)
    confidences: list[float] = []
    for row in test:
        targets = (scores, holiday) if crosses_holiday(row) else (scores,)
        stats = _stats_for(cells, row)
        window = estimate(EstimateRequest(row.carrier, Milestone.CREATED, row.created_at), stats, settings)
        assert window.most_likely is not None
        _add(
            targets,
            "estimator",
            local_day(window.most_likely),
            row.delivered_at,
            local_day(window.earliest),
            local_day(window.latest),
        )
        bases[(window.basis or "").split(";")[0].rsplit(":", 1)[0]] += 1
        confidences.append(window.confidence or 0.0)
        after = estimate(EstimateRequest(row.carrier, Milestone.PICKED_UP, row.picked_up_at), stats, settings)
        assert after.most_likely is not None
        _add(
            targets,
            "estimator_at_pickup",
            local_day(after.most_likely),
            row.delivered_at,
            local_day(after.earliest),
            local_day(after.latest),
        )
        created_day = local_day(row.created_at)
        days = STATIC_TRANSIT_DAYS.get(row.carrier, STATIC_DEFAULT_DAYS)
        _add(targets, "static_table",
            created_day + timedelta(days=days), row.delivered_at,
            created_day + timedelta(days=days - 1), created_day + timedelta(days=days + 1),
        )  # fmt: skip
        hours = national.get(row.carrier) or [h for values in national.values() for h in values]
        _add(targets, "national_median",
            local_day(row.created_at + timedelta(hours=statistics.median(hours))), row.delivered_at,
            local_day(row.created_at + timedelta(hours=_quantile(hours, settings.low_quantile))),
            local_day(row.created_at + timedelta(hours=_quantile(hours, settings.high_quantile))),
        )  # fmt: skip
    return {
        "parcels": len(rows),
        "train": len(train),
        "test": len(test),
        "split_at": split_at.astimezone(CHINA_TZ).isoformat(timespec="seconds"),
        "history_span": [local_day(rows[0].created_at).isoformat(), local_day(rows[-1].created_at).isoformat()],
        "results": {name: score.summary() for name, score in scores.items()},
        "holiday_crossing": {"parcels": len(holiday["estimator"].errors)}
        | {name: score.summary() for name, score in holiday.items()},
        "estimator_basis": dict(sorted(bases.items())),
        "mean_confidence": round(sum(confidences) / len(confidences), 3),
        "settings": {
            "min_deliveries": settings.min_deliveries,
            "pickup_cutoff_hour": settings.pickup_cutoff_hour,
            "quantiles": [settings.low_quantile, settings.high_quantile],
        },
    }


_LABELS = {
    "estimator": "parcelhub estimator, at creation",
    "static_table": "baseline: static per-carrier table",
    "national_median": "baseline: carrier-national median",
    "estimator_at_pickup": "parcelhub estimator, re-estimated at pickup",
}


def table(result: Mapping[str, Any], key: str = "results") -> str:
    lines = [
        "| method | MAE (days) | exact day | within ±1 day | window coverage | mean window (days) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in _LABELS.items():
        s = result[key][name]
        lines.append(
            f"| {label} | {s['mae_days']:.2f} | {s['exact']:.1%} | {s['within_1_day']:.1%} "
            f"| {s['window_coverage']:.1%} | {s['mean_window_days']:.1f} |"
        )
    return "\n".join(lines)


def markdown(result: Mapping[str, Any]) -> str:
    levels = ", ".join(f"{k} {v}" for k, v in result["estimator_basis"].items())
    return "\n".join(
        [
            DOC_START,
            f"Command: `{result['command']}` ({result['source']}).",
            "",
            (
                f"History {result['history_span'][0]} .. {result['history_span'][1]}, {result['parcels']} parcels; "
                f"holdout: the {result['test']} parcels created from {result['split_at']} on; trained on the "
                f"{result['train']} delivered before that."
            ),
            "",
            table(result),
            "",
            f"The {result['holiday_crossing']['parcels']} test parcels whose journey crossed a public holiday:",
            "",
            table(result, "holiday_crossing"),
            "",
            (f"Levels the estimates rested on: {levels}; mean stated confidence {result['mean_confidence']:.1%}."),
            DOC_END,
        ]
    )


def write(result: dict[str, Any], results_path: Path = RESULTS, doc_path: Path = DOC) -> None:
    existing = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    existing["edd_backtest"] = result
    results_path.write_text(json.dumps(existing, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    text = (
        doc_path.read_text(encoding="utf-8") if doc_path.exists() else "# Delivery estimates\n\n" + DOC_START + DOC_END
    )
    if DOC_START not in text:
        text = text.rstrip("\n") + "\n\n" + DOC_START + DOC_END + "\n"
    head, _, rest = text.partition(DOC_START)
    _, _, tail = rest.partition(DOC_END)
    doc_path.write_text(head + markdown(result) + tail, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backtest", description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, help="a delivered history CSV (default: the synthetic one)")
    parser.add_argument("--parcels", type=int, default=20_000, help="synthetic history size")
    parser.add_argument("--seed", type=int, default=17, help="synthetic history seed")
    parser.add_argument("--holdout", type=float, default=0.4, help="share of the span held out at its end")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    try:
        if args.history:
            rows, source = read_history(args.history), f"history {args.history.name}"
            command = f"make backtest HISTORY={args.history}"
        else:
            rows = generate_history(args.parcels, seed=args.seed)
            source = f"synthetic history from sandbox.lanes, seed {args.seed}"
            command = "make backtest"
        result = run(rows, holdout=args.holdout)
    except HistoryError as error:
        print(f"backtest: {args.history}: {error}", file=sys.stderr)
        return 2
    result = {"command": command, "source": source, **result}
    print(table(result))
    write(result, args.results, args.doc)
    print(f"\nwrote {args.results} (edd_backtest) and {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
