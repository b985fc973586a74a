"""The committed contracts (infra/events/*.json, docs/events.md) are exactly what the models generate."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from parcelhub.events import (
    EVENT_TYPES,
    MAX_CALL_BYTES,
    MAX_ENTRIES_PER_CALL,
    Event,
    batches,
)
from tools.event_schemas import example, main, render_docs, render_schemas

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "infra" / "events"
DOCS = ROOT / "docs" / "events.md"


def test_committed_schemas_equal_the_generated_ones() -> None:
    # Given the schemas in the repository / Then they are byte-for-byte what the models generate
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    regenerate = "run: python -m tools.event_schemas --write infra/events --docs docs/events.md"
    assert committed == render_schemas(), regenerate


def test_committed_docs_equal_the_generated_ones() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_docs()


def test_check_mode_fails_on_drift_and_write_mode_repairs_it(tmp_path: Path) -> None:
    # Given a copy of the committed contracts
    folder = tmp_path / "events"
    shutil.copytree(SCHEMAS, folder)
    docs = tmp_path / "events.md"
    shutil.copy(DOCS, docs)
    assert main(["--check", str(folder), "--docs", str(docs)]) == 0
    # When someone hand-edits a schema and leaves a stale file behind
    stalled = folder / "ShipmentStalled.json"
    stalled.write_text(stalled.read_text(encoding="utf-8").replace('"episode_id"', '"episode"'), encoding="utf-8")
    (folder / "OldEvent.json").write_text("{}", encoding="utf-8")
    # Then --check fails, and --write restores exactly the generated set
    assert main(["--check", str(folder), "--docs", str(docs)]) == 1
    assert main(["--write", str(folder), "--docs", str(docs)]) == 0
    assert main(["--check", str(folder), "--docs", str(docs)]) == 0
    assert not (folder / "OldEvent.json").exists()


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_schemas_are_valid_and_accept_the_examples(cls: type[Event]) -> None:
    schema = json.loads((SCHEMAS / f"{cls.detail_type()}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    detail = json.loads(example(cls).detail_json())
    assert list(validator.iter_errors(detail)) == []
    # A detail with an extra (e.g. personal) field, or without its id, is not a valid event
    assert list(validator.iter_errors(detail | {"receiver_phone": "13800000000"}))
    assert list(validator.iter_errors({k: v for k, v in detail.items() if k != "event_id"}))


def test_alerting_schemas_require_the_alert_message() -> None:
    for name in ("ShipmentStalled", "WaybillFailed", "CarrierCircuitOpened"):
        schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
        assert "alert" in schema["required"]
        assert schema["$defs"]["Alert"]["required"] == ["subject", "message"]


@given(st.lists(st.integers(min_value=1, max_value=MAX_CALL_BYTES), max_size=60))
def test_batches_respect_putevents_limits_and_keep_order(sizes: list[int]) -> None:
    # Given entries of any size up to the per-call limit
    calls = list(batches(sizes))
    # Then every entry is sent exactly once, in order
    assert [i for call in calls for i in call] == list(range(len(sizes)))
    # and each call has <= 10 entries and <= 256 KiB
    for call in calls:
        assert 1 <= len(call) <= MAX_ENTRIES_PER_CALL
        assert sum(sizes[i] for i in call) <= MAX_CALL_BYTES
    # and a call is only closed when the next entry would not fit
    for call, following in itertools.pairwise(calls):
        assert len(call) == MAX_ENTRIES_PER_CALL or sum(sizes[i] for i in call) + sizes[following[0]] > MAX_CALL_BYTES
