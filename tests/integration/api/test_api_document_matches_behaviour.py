"""The OpenAPI document says what the API does: every status it answers is declared for its route, and
what the document accepts the API accepts (a client generated from the document is never refused for a
value the document allows)."""

from __future__ import annotations

import base64
import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.domain.models import Money
from tests.integration.api.test_shipments_api import ORDER, call, http_event

pytestmark = pytest.mark.integration

DOCUMENT = json.loads((Path(__file__).resolve().parents[3] / "infra" / "openapi.json").read_text(encoding="utf-8"))
AMOUNT = DOCUMENT["components"]["schemas"]["Money-Input"]["properties"]["amount"]


def _declared(method: str, template: str) -> set[int]:
    return {int(code) for code in DOCUMENT["paths"][template][method.lower()]["responses"]}


def test_every_status_the_api_answers_is_declared_for_its_route(hub_aws: Any) -> None:
    # Given a shipment, and requests that give each answer the API has
    _, created = call(http_event("POST", "/v1/shipments", ORDER))
    sid = created["shipment_id"]
    changed = copy.deepcopy(ORDER)
    changed["parcels"] = [{"weight_kg": 9.0}]
    not_utf8 = http_event("POST", "/v1/shipments", ORDER)
    not_utf8["body"] = base64.b64encode(b"\xff\xfe{").decode()
    cases = [
        ("POST", "/v1/shipments", http_event("POST", "/v1/shipments", ORDER)),  # replay: 200
        ("POST", "/v1/shipments", http_event("POST", "/v1/shipments", changed)),  # 409
        ("POST", "/v1/shipments", http_event("POST", "/v1/shipments", {"order_id": ""})),  # 422
        ("POST", "/v1/shipments", not_utf8),  # 422
        ("POST", "/v1/shipments", http_event("POST", "/v1/shipments", ORDER, key=None)),  # 401
        ("GET", "/v1/shipments", http_event("GET", "/v1/shipments", query=f"order_id={ORDER['order_id']}")),
        ("GET", "/v1/shipments", http_event("GET", "/v1/shipments", query="order_id=nope")),  # 404
        ("GET", "/v1/shipments/{shipment_id}", http_event("GET", f"/v1/shipments/{sid}")),
        ("GET", "/v1/shipments/{shipment_id}", http_event("GET", "/v1/shipments/shp_nope")),
        ("POST", "/v1/shipments/{shipment_id}/retry", http_event("POST", f"/v1/shipments/{sid}/retry")),  # 409
        ("POST", "/v1/shipments/{shipment_id}/cancel", http_event("POST", f"/v1/shipments/{sid}/cancel")),
        ("GET", "/v1/tracking/{carrier}/{tracking_number}", http_event("GET", "/v1/tracking/SF/SF0000000000")),
        ("GET", "/v1/tracking/{carrier}/{tracking_number}", http_event("GET", "/v1/tracking/SF/x", key=None)),
        ("GET", "/v1/tracking/{carrier}/{tracking_number}", http_event("GET", "/v1/tracking/NOPE/x")),  # 422
        ("POST", "/v1/quotes", http_event("POST", "/v1/quotes", ORDER)),
        ("POST", "/v1/quotes", http_event("POST", "/v1/quotes", {"order_id": ""})),  # 422
        ("POST", "/v1/quotes", http_event("POST", "/v1/quotes", ORDER, key=None)),  # 401
    ]
    # When each is sent, Then its status is one the document declares for that route
    undeclared = []
    for method, template, event in cases:
        status, _ = call(event)
        if status not in _declared(method, template):
            undeclared.append((method, template, status))
    assert undeclared == []


def test_a_body_that_is_not_utf8_is_refused_naming_the_body_and_nothing_is_stored(hub_aws: Any) -> None:
    event = http_event("POST", "/v1/shipments", ORDER)
    event["body"] = base64.b64encode(b'{"order_id": "\xff\xfe"}').decode()
    status, error = call(event)
    assert status == 422
    assert error["fields"] == [{"field": "body", "message": "the body is not UTF-8 text", "type": "unreadable"}]
    assert hub_aws.client("dynamodb").scan(TableName=hub_aws.table_name)["Count"] == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "the body nests deeper than 32 levels"),  # json.loads: RecursionError
        ('{"a":' * 40 + "1" + "}" * 40, "the body nests deeper than 32 levels"),
        ('{"order_id": "' + "x" * 300_000 + '"}', "the body is larger than 262144 bytes"),
    ],
    ids=["deep arrays", "deep objects", "oversized"],
)
def test_a_hostile_body_is_refused_before_any_parser_sees_it_and_nothing_is_stored(
    hub_aws: Any, raw: str, message: str
) -> None:
    # Given a body nested far past any order's depth, or far larger than any order
    event = http_event("POST", "/v1/shipments", ORDER)
    event["body"], event["isBase64Encoded"] = raw, False
    # When it is posted with a valid key
    status, error = call(event)
    # Then it is a 422 naming the body (not a RecursionError's 500), and nothing is stored
    assert status == 422
    assert error["fields"] == [{"field": "body", "message": message, "type": "unreadable"}]
    assert hub_aws.client("dynamodb").scan(TableName=hub_aws.table_name)["Count"] == 0


def test_a_hostile_body_without_a_key_is_still_a_401(hub_aws: Any) -> None:
    event = http_event("POST", "/v1/shipments", ORDER, key=None)
    event["body"], event["isBase64Encoded"] = "[" * 100_000, False
    assert call(event)[0] == 401


@pytest.mark.parametrize("amount", ["", "-1", "1.234", "abc", -0.5, 1e13])
def test_an_amount_the_api_refuses_the_document_refuses_too(amount: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        Money(amount=amount)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(amount, AMOUNT)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(AMOUNT["anyOf"][1]["pattern"], fullmatch=True))
def test_every_amount_string_the_document_allows_the_api_accepts(amount: str) -> None:
    jsonschema.validate(amount, AMOUNT)  # the document allows it
    assert Money(amount=amount).amount == Decimal(amount)  # and the API takes it, exactly


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=99_999_999_999_999))
def test_every_amount_number_in_whole_cents_up_to_the_maximum_is_accepted(cents: int) -> None:
    # (the number branch is "multipleOf 0.01" up to its maximum; binary floats make a validator's
    # multipleOf check itself inexact, so the numbers are generated as whole cents)
    amount = float(Decimal(cents) / 100)
    assert amount <= AMOUNT["anyOf"][0]["maximum"]
    assert Money(amount=amount).amount == Decimal(cents) / 100


def test_every_route_that_needs_the_key_says_so_in_the_document_and_no_public_one_does() -> None:
    from parcelhub.api.auth import is_public

    wrong = [
        (method, path)
        for path, methods in DOCUMENT["paths"].items()
        for method, operation in methods.items()
        if bool(operation.get("security")) == is_public(path)
    ]
    assert wrong == []
