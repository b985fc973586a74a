"""template.yaml's EventBridge rules match the event contracts (names, detail paths the transformers read)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from parcelhub.events import EVENT_TYPES, event_type
from sandbox.local.template import load_template
from tools import event_schemas

pytestmark = pytest.mark.unit

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


def rules() -> list[tuple[str, dict[str, Any]]]:
    template = load_template(TEMPLATE)
    return [
        (name, res["Properties"])
        for name, res in template["Resources"].items()
        if res.get("Type") == "AWS::Events::Rule" and "source" in (res["Properties"].get("EventPattern") or {})
    ]


def resolve(detail: dict[str, Any], path: str) -> Any:
    assert path.startswith("$.detail."), path
    value: Any = detail
    for part in path.removeprefix("$.detail.").split("."):
        value = value[part]
    return value


def test_every_rule_names_only_events_we_emit() -> None:
    names = {cls.detail_type() for cls in EVENT_TYPES}
    for rule, props in rules():
        pattern = props["EventPattern"]
        assert pattern["source"] == ["parcelhub"], rule
        assert set(pattern.get("detail-type", [])) <= names, rule


def test_input_transformers_read_paths_every_matched_event_has() -> None:
    # Given each rule with an InputTransformer (the ops alerts rule forwards $.detail.alert.message)
    checked = 0
    for rule, props in rules():
        for target in props.get("Targets", []):
            transformer = target.get("InputTransformer")
            if not transformer:
                continue
            for detail_type in props["EventPattern"]["detail-type"]:
                example = json.loads(event_schemas.example(event_type(detail_type)).detail_json())
                values = {var: resolve(example, path) for var, path in transformer["InputPathsMap"].items()}
                # When EventBridge substitutes the values (strings JSON-escaped inside quotes, as it does)
                rendered = transformer["InputTemplate"]
                for var, value in values.items():
                    escaped = json.dumps(value, ensure_ascii=False)
                    quoted = f'"<{var}>"'
                    rendered = (
                        rendered.replace(quoted, escaped)
                        if quoted in rendered
                        else rendered.replace(f"<{var}>", escaped[1:-1] if isinstance(value, str) else escaped)
                    )
                # Then the result is valid JSON and, for a single string, the alert text itself
                body = json.loads(rendered)
                if re.fullmatch(r'"<[a-z_]+>"', transformer["InputTemplate"]):
                    assert body == next(iter(values.values()))
                    assert "【" in body, rule
                    assert "Suggested action" in body, rule
                checked += 1
    assert checked >= 3
