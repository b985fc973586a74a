"""Pure pieces of the local runner: schedules, input transformer, HTTP API events, batch responses."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.local.http_api import RouteTable, build_event, build_response
from sandbox.local.pollers import failed_ids, lambda_record
from sandbox.local.provision import scaled_visibility
from sandbox.local.rules import json_path, transform
from sandbox.local.schedules import Cron, ScheduleError, interval_seconds, rate_seconds
from sandbox.local.settings import deep_merge, variables_table
from sandbox.local.template import HttpRoute, RuleTarget

pytestmark = pytest.mark.unit


def test_rate_expressions() -> None:
    assert rate_seconds("rate(15 minutes)") == 900
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(2 days)") == 172800
    assert rate_seconds("cron(0 * * * ? *)") is None
    for bad in ("rate(1 minutes)", "rate(5 minute)", "rate(0 hours)", "rate(3 weeks)"):
        with pytest.raises(ScheduleError):
            rate_seconds(bad)


def test_cron_next_occurrence() -> None:
    """AWS cron: six fields, one of day-of-month/day-of-week is '?', 1 = Sunday."""
    moment = datetime(2026, 11, 26, 10, 7, tzinfo=UTC)  # a Thursday
    assert Cron("cron(0/15 * * * ? *)").next_after(moment) == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    assert Cron("cron(30 2 * * ? *)").next_after(moment) == datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
    assert Cron("cron(0 9 ? * MON-FRI *)").next_after(moment) == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert Cron("cron(0 9 ? * 1 *)").next_after(moment) == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)  # Sunday
    assert Cron("cron(0 0 1 JAN ? *)").next_after(moment) == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert interval_seconds("cron(0/15 * * * ? *)", moment) == 8 * 60
    with pytest.raises(ScheduleError):
        Cron("cron(0 9 * * MON *)")  # both day fields given


def test_visibility_timeout_is_scaled_with_a_floor() -> None:
    assert scaled_visibility(60, 0.05) == 3
    assert scaled_visibility(180, 0.05) == 9
    assert scaled_visibility(5, 0.05) == 1


def event() -> dict[str, Any]:
    return {
        "id": "e1",
        "source": "parcelhub",
        "detail-type": "ShipmentStalled",
        "time": "2026-11-26T00:00:00Z",
        "detail": {"alert": {"message": 'say "hi"\nline 2'}, "n": 3, "tags": ["a"]},
    }


def target(**kwargs: Any) -> RuleTarget:
    return RuleTarget(id="t", kind="sns", arn="arn:aws:sns:us-east-1:1:t", logical="T", **kwargs)


def test_input_transformer_escapes_inside_strings() -> None:
    """Given the ops-alerts transformer, then the message is a valid JSON string even with quotes/newlines."""
    out = transform(
        event(),
        target(
            input_transformer={"InputPathsMap": {"message": "$.detail.alert.message"}, "InputTemplate": '"<message>"'}
        ),
        "r",
    )
    assert json.loads(out) == 'say "hi"\nline 2'


def test_input_transformer_values_outside_strings_are_json() -> None:
    template = '{"n": <n>, "tags": <tags>, "text": "n is <n>", "missing": <missing>}'
    paths = {"n": "$.detail.n", "tags": "$.detail.tags", "missing": "$.detail.nope"}
    out = json.loads(
        transform(event(), target(input_transformer={"InputPathsMap": paths, "InputTemplate": template}), "r")
    )
    assert out == {"n": 3, "tags": ["a"], "text": "n is 3", "missing": None}


def test_input_and_input_path_and_default() -> None:
    assert transform(event(), target(input='{"fixed": 1}'), "r") == '{"fixed": 1}'
    assert json.loads(transform(event(), target(input_path="$.detail.n"), "r")) == 3
    assert json.loads(transform(event(), target(), "r")) == event()
    assert json_path(event(), "$.detail.tags[0]") == "a"


@given(st.text())
def test_any_message_survives_the_transformer(message: str) -> None:
    """Property: whatever the alert text, the '"<message>"' template yields exactly that string."""
    evt = {"detail": {"alert": {"message": message}}}
    spec = {"InputPathsMap": {"message": "$.detail.alert.message"}, "InputTemplate": '"<message>"'}
    assert json.loads(transform(evt, target(input_transformer=spec), "r")) == message


def route(path: str, method: str = "GET") -> HttpRoute:
    return HttpRoute(function="F", event="E", api="Api", method=method, path=path, stage="dev")


def test_route_selection_prefers_the_most_specific() -> None:
    table = RouteTable(
        [route("/v1/shipments/{id}"), route("/v1/shipments/search"), route("/{proxy+}", "ANY"), route("/v1/x", "POST")]
    )
    assert table.match("GET", "/v1/shipments/search") == (route("/v1/shipments/search"), {})
    assert table.match("GET", "/v1/shipments/s1") == (route("/v1/shipments/{id}"), {"id": "s1"})
    assert table.match("GET", "/v1/x") == (route("/{proxy+}", "ANY"), {"proxy": "v1/x"})
    assert RouteTable([route("/v1/x", "POST")]).match("GET", "/v1/x") is None


def test_http_event_multi_value_headers_are_comma_joined() -> None:
    evt = build_event(
        route("/a"),
        {},
        method="GET",
        raw_path="/dev/a",
        raw_query="",
        headers=[("X-A", "1"), ("x-a", "2"), ("Content-Type", "application/octet-stream")],
        body=b"\x00",
        source_ip="127.0.0.1",
        api_id="abc",
        host="h",
    )
    assert evt["headers"]["x-a"] == "1,2"
    assert evt["isBase64Encoded"] is True
    assert base64.b64decode(evt["body"]) == b"\x00"


def test_http_response_interpretation() -> None:
    assert build_response({"ok": True}) == (200, [("content-type", "application/json")], b'{"ok": true}')
    status, headers, body = build_response({"statusCode": 204, "cookies": ["a=1"]})
    assert (status, body) == (204, b"")
    assert ("set-cookie", "a=1") in headers


def test_batch_item_failures_interpretation() -> None:
    ids = {"m1", "m2"}
    assert failed_ids({"batchItemFailures": []}, ids) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "m2"}]}, ids) == {"m2"}
    assert failed_ids(None, ids) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) is None
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "other"}]}, ids) is None


def test_lambda_sqs_record_shape() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "MD5OfBody": "md5",
        "Body": "{}",
        "Attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1",
            "SenderId": "s",
            "ApproximateFirstReceiveTimestamp": "2",
        },
        "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
        "MD5OfMessageAttributes": "md5a",
    }
    record = lambda_record(message, "arn:aws:sqs:us-east-1:1:q")
    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh",
        "body": "{}",
        "attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1",
            "SenderId": "s",
            "ApproximateFirstReceiveTimestamp": "2",
        },
        "messageAttributes": {
            "k": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        },
        "md5OfBody": "md5",
        "md5OfMessageAttributes": "md5a",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
        "awsRegion": "us-east-1",
    }


def test_config_deep_merge_and_documented_variables() -> None:
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"c": 3}, "e": 4}) == {
        "a": {"b": 1, "c": 3},
        "d": 1,
        "e": 4,
    }
    table = variables_table()
    for name in ("PARCELHUB_PORT", "PARCELHUB_API_KEY", "PARCELHUB_LOCAL_DIR", "PARCELHUB_SCHEDULE_SCALE"):
        assert f"`{name}`" in table


def test_readme_documents_every_variable() -> None:
    """Given the runner's variables, then sandbox/local/README.md carries the same table (the lead copies it)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "sandbox" / "local" / "README.md").read_text(encoding="utf-8")
    assert variables_table() in readme
