"""The OMS API handler in-process against moto: HTTP API v2 events in, JSON out."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from functions.shipments_api.handler import lambda_handler

pytestmark = pytest.mark.integration

API_KEY = "test-api-key"

ORDER: dict[str, Any] = {
    "order_id": "DTC-20251111-0001",
    "receiver": {
        "name": "李四",
        "phone": "18688806057",
        "province": "广东省",
        "city": "广州市",
        "district": "白云区",
        "address": "机场路1号某小区3栋502",
        "postcode": "510000",
    },
    "parcels": [{"weight_kg": 1.2}],
    "items": [{"name": "护肤品", "quantity": 1, "unit_price": {"amount": "199.00"}}],
    "declared_value": {"amount": "199.00", "currency": "CNY"},
    "customer_tier": "regular",
}


class Context:
    function_name = "parcelhub-test-shipments-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:parcelhub-test-shipments-api"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def http_event(
    method: str, path: str, body: Any = None, *, key: str | None = API_KEY, query: str = ""
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as the gateway sends it."""
    headers = {"content-type": "application/json", "host": "api.example.com"}
    if key is not None:
        headers["x-api-key"] = key
    raw = json.dumps(body, ensure_ascii=False) if body is not None else None
    params = dict(pair.split("=", 1) for pair in query.split("&")) if query else None
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": params,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "t"},
            "requestId": "id",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "11/Nov/2025:08:00:00 +0000",
            "timeEpoch": 1762848000000,
        },
        "body": base64.b64encode(raw.encode()).decode() if raw is not None else None,
        "isBase64Encoded": raw is not None,
    }


def call(event: dict[str, Any]) -> tuple[int, Any]:
    response = lambda_handler(event, Context())
    body = response.get("body") or "null"
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body)


def test_health_needs_no_key(hub_aws: Any) -> None:
    status, body = call(http_event("GET", "/v1/health", key=None))
    assert status == 200
    assert body["status"] == "ok"


def test_order_is_accepted_stored_encrypted_and_queued(hub_aws: Any) -> None:
    # Given a valid order, When the OMS posts it
    status, body = call(http_event("POST", "/v1/shipments", ORDER))
    # Then it is accepted as PENDING with a masked receiver
    assert status == 202
    assert body["status"] == "PENDING"
    assert body["order_id"] == ORDER["order_id"]
    assert body["receiver"]["phone"] == "186****6057"
    assert "李四" not in json.dumps(body, ensure_ascii=False)
    # And the waybill request is queued, And ShipmentAccepted is published
    assert hub_aws.queued(hub_aws.waybill_queue_url) == [{"shipment_id": body["shipment_id"]}]
    events = hub_aws.captured_events()
    assert [e["detail-type"] for e in events] == ["ShipmentAccepted"]
    assert "18688806057" not in json.dumps(events)
    # And the stored item holds no clear-text personal data
    items = hub_aws.client("dynamodb").scan(TableName=hub_aws.table_name)["Items"]
    dumped = json.dumps(items, ensure_ascii=False)
    assert "18688806057" not in dumped
    assert "机场路1号" not in dumped
    assert "李四" not in dumped


def test_same_order_same_body_is_idempotent_and_different_body_conflicts(hub_aws: Any) -> None:
    _, first = call(http_event("POST", "/v1/shipments", ORDER))
    # When the same order arrives again with the same body
    status, again = call(http_event("POST", "/v1/shipments", ORDER))
    # Then it answers 200 with the same shipment
    assert status == 200
    assert again["shipment_id"] == first["shipment_id"]
    # When it arrives with a different body, Then 409
    changed = copy.deepcopy(ORDER)
    changed["parcels"] = [{"weight_kg": 3.0}]
    status, error = call(http_event("POST", "/v1/shipments", changed))
    assert status == 409
    assert error["error"] == "order_conflict"
    # And only one shipment exists for the order
    status, found = call(http_event("GET", "/v1/shipments", query=f"order_id={ORDER['order_id']}"))
    assert status == 200
    assert found["shipment_id"] == first["shipment_id"]


def test_bad_input_names_each_field_and_stores_nothing(hub_aws: Any) -> None:
    bad = copy.deepcopy(ORDER)
    bad["receiver"]["phone"] = "call me"
    bad["parcels"] = [{"weight_kg": -1}]
    del bad["declared_value"]
    status, error = call(http_event("POST", "/v1/shipments", bad))
    assert status == 422
    fields = {f["field"] for f in error["fields"]}
    assert {"receiver.phone", "parcels.0.weight_kg", "declared_value"} <= fields
    assert "call me" not in json.dumps(error)  # inputs are not echoed
    assert hub_aws.client("dynamodb").scan(TableName=hub_aws.table_name)["Count"] == 0
    assert hub_aws.queued(hub_aws.waybill_queue_url) == []


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_wrong_key_is_rejected(hub_aws: Any, key: str | None) -> None:
    status, error = call(http_event("POST", "/v1/shipments", ORDER, key=key))
    assert status == 401
    assert error["error"] == "unauthorized"
    assert hub_aws.client("dynamodb").scan(TableName=hub_aws.table_name)["Count"] == 0


@pytest.mark.parametrize("key", [None, "wrong-key"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/shipments", {"order_id": "", "parcels": [{"weight_kg": -1}]}),
        ("POST", "/v1/shipments", "not json at all"),
        ("GET", "/v1/shipments", None),  # the required order_id query is missing
        ("GET", "/v1/shipments/shp_unknown", None),
    ],
)
def test_an_unauthenticated_caller_gets_401_whatever_the_request(
    hub_aws: Any, key: str | None, method: str, path: str, body: Any
) -> None:
    # Given a request that would be invalid (422) or unknown (404) for an authenticated caller
    # When it arrives without a key or with a wrong one
    status, error = call(http_event(method, path, body, key=key))
    # Then it is refused as unauthenticated before anything is parsed or validated, and names no field
    assert status == 401
    assert error == {"error": "unauthorized", "message": error["message"], "fields": []}
    assert hub_aws.client("dynamodb").scan(TableName=hub_aws.table_name)["Count"] == 0


def test_unknown_shipment_is_404(hub_aws: Any) -> None:
    status, error = call(http_event("GET", "/v1/shipments/shp_unknown"))
    assert status == 404
    assert error["error"] == "not_found"


def test_cancel_pending_then_retry_is_refused(hub_aws: Any) -> None:
    _, created = call(http_event("POST", "/v1/shipments", ORDER))
    shipment_id = created["shipment_id"]
    status, cancelled = call(http_event("POST", f"/v1/shipments/{shipment_id}/cancel"))
    assert status == 200
    assert cancelled["status"] == "CANCELLED"
    # a cancelled shipment cannot be retried
    status, error = call(http_event("POST", f"/v1/shipments/{shipment_id}/retry"))
    assert status == 409
    assert "CANCELLED" in error["message"]


def test_a_create_the_sdk_retried_after_a_lost_response_is_still_a_new_shipment(hub_aws: Any) -> None:
    # Given the first TransactWriteItems commits but its response is lost, so botocore sends it again
    from parcelhub import composition

    client = composition.store().client
    replayed: list[int] = []

    def lose_first_response(attempts: int, caught_exception: Any = None, **_: Any) -> int | None:
        if caught_exception is None and not replayed:
            replayed.append(attempts)
            return 0  # "retry now": the committed request is sent a second time
        return None

    client.meta.events.register_first("needs-retry.dynamodb.TransactWriteItems", lose_first_response)
    # When the OMS posts a new order
    status, body = call(http_event("POST", "/v1/shipments", ORDER))
    # Then it is answered as a new shipment, queued once, announced once
    assert replayed == [1]
    assert status == 202
    assert hub_aws.queued(hub_aws.waybill_queue_url) == [{"shipment_id": body["shipment_id"]}]
    assert [e["detail-type"] for e in hub_aws.captured_events()] == ["ShipmentAccepted"]


def test_concurrent_invocations_on_fresh_threads_each_answer_their_own_order(hub_aws: Any) -> None:
    """The local stack (and any host that serves invocations on threads) starts a thread per request.
    Powertools keeps request state on the resolver and its routers, so each invocation must see only
    its own event: no order may be answered with another's body."""
    import threading
    import time

    for wave in range(3):
        # Given 24 different orders
        bodies = []
        for n in range(24):
            body = copy.deepcopy(ORDER)
            body["order_id"] = f"DTC-CONC-{wave}-{n:04d}"
            bodies.append(body)
        replies: dict[str, tuple[int, Any]] = {}

        def post(body: dict[str, Any], replies: dict[str, tuple[int, Any]] = replies) -> None:
            replies[body["order_id"]] = call(http_event("POST", "/v1/shipments", body))

        # When each is posted from its own new thread, overlapping one another
        threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
        for thread in threads:
            thread.start()
            time.sleep(0.005)
        for thread in threads:
            thread.join(timeout=60)
        # Then every order is accepted as new and answered about itself
        assert {order: status for order, (status, _) in replies.items()} == {b["order_id"]: 202 for b in bodies}
        assert all(reply["order_id"] == order for order, (_, reply) in replies.items())
        assert len({reply["shipment_id"] for _, reply in replies.values()}) == len(bodies)


def test_a_revoked_key_stops_working_within_60_seconds(hub_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as real

    from aws_lambda_powertools.utilities.parameters import base

    # Given a warm function that has served the key
    assert call(http_event("GET", "/v1/shipments/shp_unknown"))[0] == 404
    # When the brand removes the key from the secret
    secrets = hub_aws.client("secretsmanager")
    document = json.loads(secrets.get_secret_value(SecretId=hub_aws.oms_secret_arn)["SecretString"])
    document["api_keys"] = []
    secrets.put_secret_value(SecretId=hub_aws.oms_secret_arn, SecretString=json.dumps(document))
    # Then the cached secret may still accept it for a moment
    assert call(http_event("GET", "/v1/shipments/shp_unknown"))[0] == 404

    class Later(real.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real.datetime.now(tz) + real.timedelta(seconds=61)

    # But 61 s later (the cache's clock moved on) the same key is refused
    monkeypatch.setattr(base, "datetime", Later)
    status, error = call(http_event("GET", "/v1/shipments/shp_unknown"))
    assert status == 401
    assert error["error"] == "unauthorized"
