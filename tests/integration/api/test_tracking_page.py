"""The customer tracking page through the OMS API handler in-process against moto: public routes, one read
per page, forged tokens refused before any read, the lookup form's uniform refusal and rate limits, and
nothing personal beyond what the receiver knows."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.shipments_api.handler import lambda_handler
from parcelhub import composition
from parcelhub.api.auth import is_public
from parcelhub.domain.status import Status
from parcelhub.security.links import TrackingLinks
from tests.conftest import PUBLIC_BASE_URL, HubAws
from tests.fakes.journeys import COURIER_MOBILE, RECEIVER_PHONE, SIGNER, seed

pytestmark = pytest.mark.integration

API_KEY = "test-api-key"
ORDER: dict[str, Any] = {
    "order_id": "DTC-20251111-0001",
    "receiver": {
        "name": "李四",
        "phone": RECEIVER_PHONE,
        "province": "广东省",
        "city": "广州市",
        "district": "白云区",
        "address": "机场路1号某小区3栋502",
        "postcode": "510000",
    },
    "parcels": [{"weight_kg": 1.2}],
    "items": [{"name": "护肤品", "quantity": 1, "unit_price": {"amount": "199.00"}}],
    "declared_value": {"amount": "199.00", "currency": "CNY"},
}
#: what must never appear on a public page: the receiver's name, phone (whole, masked or its lookup
#: digits), street address; the courier's mobile and the signer's name from the scan texts
PERSONAL = ("李四", "李*", RECEIVER_PHONE, "186****", "6057", "机场路", COURIER_MOBILE, SIGNER)


class Context:
    function_name = "parcelhub-test-shipments-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:parcelhub-test-shipments-api"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def request(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event as the gateway sends it."""
    merged = {"host": "api.example.com", **(headers or {})}
    params = dict(urllib.parse.parse_qsl(query)) if query else None
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": params,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "t"},
            "requestId": "id",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "11/Nov/2025:08:00:00 +0000",
            "timeEpoch": 1762848000000,
        },
        "body": base64.b64encode(body.encode()).decode() if body is not None else None,
        "isBase64Encoded": body is not None,
    }


def call(event: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    response = lambda_handler(event, Context())
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], headers, body


def page(token: str, **kwargs: Any) -> tuple[int, dict[str, str], str]:
    return call(request("GET", f"/t/{token}", **kwargs))


def post_lookup(
    order_id: str, digits: str, *, source_ip: str = "203.0.113.7", lang: str = "zh-CN"
) -> tuple[int, dict[str, str], str]:
    form = urllib.parse.urlencode({"order_id": order_id, "digits": digits, "lang": lang})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return call(request("POST", "/track", body=form, headers=headers, source_ip=source_ip))


@pytest.fixture
def dynamodb_calls(hub_aws: HubAws) -> Iterator[Counter[str]]:
    """Every DynamoDB operation the store's client sends, by name."""
    calls: Counter[str] = Counter()
    client = composition.store().client

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    yield calls
    client.meta.events.unregister("before-call.dynamodb", count)


def links() -> Any:
    found = composition.tracking_links()
    assert found is not None
    return found


def seeded(status: Status, n: int = 1) -> str:
    shipment = seed(
        composition.store(), status, f"shp_tp{n:06d}", f"SO-TP-{n:06d}", now=datetime.now(UTC), links=links()
    )
    return links().token(shipment.shipment_id)


def configure(hub_aws: HubAws, config: dict[str, Any]) -> None:
    hub_aws.client("ssm").put_parameter(
        Name=hub_aws.config_parameter, Type="String", Value=json.dumps(config), Overwrite=True
    )
    composition.reset()


# ------------------------------------------------------------------------------------------- the link


def test_the_shipment_view_carries_a_link_that_opens_the_page_without_a_key(hub_aws: HubAws) -> None:
    # Given an order the OMS handed over
    created = call(
        request(
            "POST",
            "/v1/shipments",
            body=json.dumps(ORDER, ensure_ascii=False),
            headers={"content-type": "application/json", "x-api-key": API_KEY},
        )
    )
    assert created[0] == 202
    view = json.loads(created[2])
    # Then its view carries the tracking link, under the public base URL
    url = view["tracking_url"]
    assert url.startswith(f"{PUBLIC_BASE_URL}/t/{view['shipment_id']}.")
    # When a customer opens it (no API key)
    status, headers, html = page(url.rsplit("/", 1)[1])
    # Then the page answers in Chinese with the status in plain words, short-cacheable and locked down
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in html
    assert "我们已收到您的订单，正在准备发货" in html
    assert re.fullmatch(r"private, max-age=\d+", headers["cache-control"])
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "script-src 'sha256-" not in headers["content-security-policy"]  # no waybill yet: no copy button
    # and nothing personal is on it
    assert [p for p in PERSONAL if p in html] == []


def test_a_page_is_one_dynamodb_read(hub_aws: HubAws, dynamodb_calls: Counter[str]) -> None:
    token = seeded(Status.DELIVERED)
    dynamodb_calls.clear()
    status, _, _ = page(token)
    assert status == 200
    assert dynamodb_calls == Counter({"Query": 1})


def test_the_delivered_page_shows_proof_returns_and_the_journey_redacted(hub_aws: HubAws) -> None:
    configure(hub_aws, {"tracking_page": {"returns_url": "https://brand.example/returns?order={order_id}"}})
    token = seeded(Status.DELIVERED)
    status, headers, html = page(token)
    assert status == 200
    assert "您的包裹已签收" in html
    assert 'data-section="proof"' in html
    assert "他人代收" in html  # how it was received
    assert 'href="https://brand.example/returns?order=SO-TP-000001"' in html
    assert 'data-section="estimate"' not in html  # hidden after delivery
    # the journey: newest first, canonical names, scan texts with the courier's mobile and the signer masked
    statuses = re.findall(r'<li data-status="([A-Z_]+)">', html)
    assert statuses == [
        "DELIVERED",
        "OUT_FOR_DELIVERY",
        "ARRIVED_AT_DESTINATION_CITY",
        "IN_TRANSIT",
        "IN_TRANSIT",
        "PICKED_UP",
    ]
    assert "139****4321" in html
    assert [p for p in PERSONAL if p in html] == []
    # the progress bar: an ordered list, the current step marked for assistive technology
    assert html.count('aria-current="step"') == 1
    assert "script-src 'sha256-" in headers["content-security-policy"]  # the copy button's script, by hash


def test_an_estimate_shows_while_on_the_way_and_hides_after_an_exception(hub_aws: HubAws) -> None:
    _, _, moving = page(seeded(Status.IN_TRANSIT, 1))
    _, _, stuck = page(seeded(Status.EXCEPTION, 2))
    assert 'data-section="estimate"' in moving
    assert 'data-section="estimate"' not in stuck
    assert "包裹滞留" in stuck


def test_languages_query_then_accept_language_then_chinese(hub_aws: HubAws) -> None:
    token = seeded(Status.OUT_FOR_DELIVERY)
    _, headers, english = page(token, query="lang=en", headers={"accept-language": "zh-CN"})
    assert '<html lang="en">' in english
    assert "Your parcel is out for delivery" in english
    assert headers["content-language"] == "en"
    _, _, negotiated = page(token, headers={"accept-language": "fr-FR, en-GB;q=0.8, zh;q=0.5"})
    assert "Your parcel is out for delivery" in negotiated
    _, _, default = page(token, headers={"accept-language": "fr-FR"})
    assert "快递员正在派送您的包裹" in default


def test_the_json_twin_is_masked_data_in_the_language_asked(hub_aws: HubAws) -> None:
    token = seeded(Status.DELIVERED)
    status, headers, body = page(f"{token}.json", query="lang=en")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    data = json.loads(body)
    assert data["status"] == "DELIVERED"
    assert data["headline"] == "Your parcel has been delivered"
    assert [m["state"] for m in data["milestones"]] == ["done"] * 5 + ["current"]
    assert data["carrier"]["service_phone"] == "95311"
    assert data["timeline"][0]["occurred_at"].endswith("+08:00")
    assert [p for p in PERSONAL if p in body] == []
    # the same through Accept
    _, _, negotiated = page(token, headers={"accept": "application/json"}, query="lang=en")
    assert json.loads(negotiated) == data


# ------------------------------------------------------------------------------------ forged tokens


def test_forged_altered_and_stale_tokens_get_one_answer_and_no_read(
    hub_aws: HubAws, dynamodb_calls: Counter[str]
) -> None:
    token = seeded(Status.IN_TRANSIT)
    shipment_id, _, mac = token.rpartition(".")
    other = seeded(Status.IN_TRANSIT, 2)
    altered = f"{shipment_id}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    swapped = f"{other.rpartition('.')[0]}.{mac}"  # another shipment's id with this MAC
    minted_elsewhere = TrackingLinks("a-secret-that-is-not-the-hubs-0123456789").token(shipment_id)
    forged = [
        altered,
        swapped,
        minted_elsewhere,
        shipment_id,
        f"{shipment_id}.",
        "shp_x.AAAAAAAAAAAAAAAAAAAAAA",
        "x" * 300,
    ]
    dynamodb_calls.clear()
    answers = {page(t)[2] for t in forged}
    # Then each is refused with the same page, and none of them cost a read
    assert len(answers) == 1
    assert "这个追踪链接无效" in next(iter(answers))
    assert all(page(t)[0] == 404 for t in forged)
    assert dynamodb_calls == Counter()
    # and an authentic token of a shipment that does not exist answers exactly the same
    gone = links().token("shp_gone0000000")
    assert page(gone) == page(altered)


# ------------------------------------------------------------------------------------ the lookup form


def test_the_lookup_form_finds_the_parcel_by_order_and_phone_digits(hub_aws: HubAws) -> None:
    token = seeded(Status.IN_TRANSIT)
    status, headers, html = call(request("GET", "/track", query="lang=en"))
    assert status == 200
    assert 'name="order_id"' in html
    assert 'name="digits"' in html
    status, headers, _ = post_lookup("SO-TP-000001", RECEIVER_PHONE[-4:], lang="en")
    assert status == 303
    assert headers["location"] == f"t/{token}?lang=en"
    assert headers["cache-control"] == "no-store"
    # JSON clients get the token and the link
    form = json.dumps({"order_id": "SO-TP-000001", "digits": RECEIVER_PHONE[-4:]})
    status, _, body = call(
        request("POST", "/track", body=form, headers={"content-type": "application/json"}, source_ip="198.51.100.1")
    )
    assert status == 200
    assert json.loads(body) == {"token": token, "tracking_url": f"{PUBLIC_BASE_URL}/t/{token}"}


def test_unknown_order_and_wrong_digits_get_the_same_answer(hub_aws: HubAws, dynamodb_calls: Counter[str]) -> None:
    seeded(Status.IN_TRANSIT)
    dynamodb_calls.clear()
    wrong_digits = post_lookup("SO-TP-000001", "1234")
    reads_wrong = dynamodb_calls["GetItem"]
    dynamodb_calls.clear()
    unknown_order = post_lookup("SO-TP-999999", "1234")
    assert dynamodb_calls["GetItem"] == reads_wrong == 1
    assert wrong_digits[0] == unknown_order[0] == 404
    assert wrong_digits[1] == unknown_order[1]
    # the bodies differ only by the order id echoed back into the form field
    assert wrong_digits[2].replace("SO-TP-000001", "ORDER") == unknown_order[2].replace("SO-TP-999999", "ORDER")
    assert "没有找到与该订单号和手机号后四位匹配的包裹" in wrong_digits[2]


def test_lookups_are_rate_limited_per_order_id(hub_aws: HubAws) -> None:
    token = seeded(Status.IN_TRANSIT)
    # Given five wrong guesses for one order, from five different addresses
    for i in range(5):
        assert post_lookup("SO-TP-000001", f"{i:04d}", source_ip=f"198.51.100.{i}")[0] == 404
    # When the right digits come next, from yet another address
    status, headers, html = post_lookup("SO-TP-000001", RECEIVER_PHONE[-4:], source_ip="198.51.100.99")
    # Then they are refused too: the order's window is used up
    assert status == 429
    assert int(headers["retry-after"]) > 0
    assert token not in html
    assert "查询次数过多" in html


def test_lookups_are_rate_limited_per_source_address(hub_aws: HubAws) -> None:
    configure(hub_aws, {"tracking_page": {"lookup_per_ip": 3}})
    seeded(Status.IN_TRANSIT)
    for i in range(3):
        assert post_lookup(f"SO-UNKNOWN-{i}", "0000")[0] == 404
    # the fourth lookup from the same address is refused, whatever it asks
    assert post_lookup("SO-TP-000001", RECEIVER_PHONE[-4:])[0] == 429
    # another address is not affected
    assert post_lookup("SO-TP-000001", RECEIVER_PHONE[-4:], source_ip="192.0.2.44")[0] == 303


LOGO = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4"/></svg>'


def test_a_weak_brand_colour_falls_back_and_branding_shows(hub_aws: HubAws) -> None:
    configure(
        hub_aws,
        {
            "tracking_page": {
                "brand": {
                    "name": "拾光咖啡",
                    "primary_color": "#FFD500",  # 1.4:1 on white
                    "support_phone": "400-820-1234",
                    "logo_svg": LOGO,
                }
            }
        },
    )
    token = seeded(Status.IN_TRANSIT)
    _, _, html = page(token)
    assert "拾光咖啡" in html
    assert "--accent:#0B5CAD" in html
    assert "#FFD500" not in html
    assert 'href="tel:4008201234"' in html
    assert "<circle" in html
    data = json.loads(page(f"{token}.json")[2])
    assert data["brand"]["primary_color"] == "#0B5CAD"


def test_the_oms_routes_still_need_the_key(hub_aws: HubAws) -> None:
    status, _, _ = call(request("GET", "/v1/shipments/shp_x"))
    assert status == 401
    # and only the tracking page's own paths are public
    assert [path for path in ("/track", "/t/abc", "/v1/health") if not is_public(path)] == []
    assert [path for path in ("/trackx", "/t", "/tracking/x", "/tx/abc", "/v1/shipments") if is_public(path)] == []
