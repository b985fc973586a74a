"""SF route pushes: URL-token authentication, parsing recorded pushes into canonical events, the ACK."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.carriers.base import (
    Capability,
    HttpRequest,
    ProviderPlugin,
    PushRejected,
    PushUnreadable,
    TrackingSubscription,
)
from parcelhub.carriers.registry import build_plugin
from parcelhub.carriers.sf.plugin import SfPlugin
from parcelhub.domain.models import Carrier, EventSource, Provider, TrackingEvent, content_hash
from parcelhub.domain.status import Status, SubStatus, fold

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sf" / "pushes"
TOKEN = "tok-0123456789abcdef0123456789"
CONFIG = {
    "partner_id": "TESTPARTNER",
    "checkword": "TESTCHECKWORD0000000000000000000",
    "monthly_card": "7551234567",
    "push_token": TOKEN,
}


def plugin(**overrides: Any) -> SfPlugin:
    return SfPlugin.from_config(CONFIG | overrides)


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def json_push(body: bytes, token: str | None = TOKEN) -> HttpRequest:
    return HttpRequest(
        body=body,
        headers={"Content-Type": "application/json;charset=UTF-8"},
        path_params={"token": token} if token is not None else {},
    )


def xml_push(xml: bytes, token: str = TOKEN) -> HttpRequest:
    body = ("content=" + urllib.parse.quote_plus(xml.decode("utf-8"))).encode("ascii")
    return HttpRequest(
        body=body,
        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
        path_params={"token": token},
    )


def as_expected(event: TrackingEvent) -> dict[str, Any]:
    return {
        "tracking_number": event.tracking_number,
        "occurred_at": event.occurred_at.isoformat(),
        "status": event.status.value,
        "sub_status": event.sub_status.value,
        "raw_code": event.raw_code,
        "raw_text": event.raw_text,
        "location": event.location,
        "content_hash": event.content_hash,
    }


def test_plugin_implements_the_protocol_and_is_registered() -> None:
    # Given the registry line for sf / When built from a config mapping / Then an SfPlugin
    built = build_plugin("sf", CONFIG)
    assert isinstance(built, SfPlugin)
    assert isinstance(built, ProviderPlugin)
    assert (
        built.name,
        Capability.ISSUE_WAYBILLS in built.capabilities,
        Capability.PUSH_TRACKING in built.capabilities,
    ) == (Provider.SF, True, True)
    assert built.supported_carriers() == frozenset({Carrier.SF})


def test_subscribe_is_a_no_op_for_sf_parcels() -> None:
    # SF pushes routes of Fengqiao orders by itself: subscribing sends nothing (no session is touched)
    subscription = TrackingSubscription(Carrier.SF, "SF1234567890123", "https://hooks.example.com/x")
    assert plugin().subscribe_tracking(subscription) is None


def test_recorded_json_push_parses_into_the_expected_events() -> None:
    # Given REFERENCE §2.6's push with the right URL token
    parsed = plugin().parse_push(json_push(raw("push.json")))
    # Then the canonical events match the recorded expectation (status, +08:00 time, location, hash)
    expected = json.loads(raw("push.expected.json"))
    assert [as_expected(e) for e in parsed.events] == expected
    assert all(e.source is EventSource.PUSH and e.provider is Provider.SF for e in parsed.events)
    assert parsed.tracking_numbers == [(Carrier.SF, "SF1234567890123")]
    assert parsed.unmapped_codes == []
    for event in parsed.events:  # the hash is the model's content hash of the SF fields
        assert event.content_hash == content_hash(
            "SF", event.tracking_number, event.occurred_at, event.raw_code, event.raw_text
        )


def test_content_hashes_are_stable_across_pushes_and_formats() -> None:
    # Given the same routes pushed again, and pushed in the form/XML variant
    first = plugin().parse_push(json_push(raw("push.json")))
    again = plugin().parse_push(json_push(raw("push.json")))
    as_xml = plugin(push_format="xml").parse_push(xml_push(raw("push.xml")))
    # Then every event hashes the same (the store dedupes them)
    hashes = [e.content_hash for e in first.events]
    assert hashes == [e.content_hash for e in again.events] == [e.content_hash for e in as_xml.events]
    assert [as_expected(e) for e in as_xml.events] == json.loads(raw("push.expected.json"))


def test_unknown_op_code_is_read_from_its_remark_and_reported_apart() -> None:
    # Given a push carrying an opCode no table knows (remark 快件已装车), next to a known one
    parsed = plugin().parse_push(json_push(raw("push_unknown_code.json")))
    # Then the unknown one is read from its remark (IN_TRANSIT, inferred) and its code listed apart from
    # the UNMAPPED ones; the known one maps
    assert [as_expected(e) for e in parsed.events] == json.loads(raw("push_unknown_code.expected.json"))
    assert [e.inferred for e in parsed.events] == [True, False]
    assert (parsed.unmapped_codes, parsed.inferred_codes) == ([], ["9999"])
    assert parsed.tracking_numbers == [(Carrier.SF, "SF1234567890123"), (Carrier.SF, "SF1234567890124")]


def test_unknown_op_code_with_no_other_signal_is_unmapped_and_reported() -> None:
    # Given an unknown opCode, no normalised status and a remark that names no milestone
    body = json.dumps(
        {
            "Body": {
                "WaybillRoute": [
                    {
                        "mailno": "SF1234567890123",
                        "acceptTime": "2024-05-01 18:02:11",
                        "remark": "路由节点",
                        "opCode": "9999",
                    }
                ]
            }
        },
        ensure_ascii=False,
    )
    parsed = plugin().parse_push(json_push(body.encode("utf-8")))
    # Then it is never guessed: IN_TRANSIT/UNMAPPED, listed for the UnmappedCarrierCode metric
    (event,) = parsed.events
    assert (event.status, event.sub_status, event.inferred) == (Status.IN_TRANSIT, SubStatus.UNMAPPED, False)
    assert (parsed.unmapped_codes, parsed.inferred_codes) == (["9999"], [])


def test_unknown_op_code_with_sf_normalised_status_maps_from_it() -> None:
    # Given an opCode outside the table that carries SF's own status codes (a customs scan)
    route = {
        "mailno": "SF1234567890123",
        "acceptTime": "2025-05-17 16:22:12",
        "remark": "请耐心等候",
        "opCode": "605",
        "firstStatusCode": "2",
        "secondaryStatusCode": "204",
    }
    parsed = plugin().parse_push(json_push(json.dumps({"Body": {"WaybillRoute": [route]}}).encode()))
    # Then the secondary status decides (not inferred: it is SF's code), and nothing is UNMAPPED
    (event,) = parsed.events
    assert (event.status, event.sub_status, event.inferred) == (Status.IN_TRANSIT, SubStatus.CUSTOMS, False)
    assert (parsed.unmapped_codes, parsed.inferred_codes) == ([], ["605"])
    # And with only the first-level code, that one decides
    route.pop("secondaryStatusCode")
    (first_only,) = plugin().parse_push(json_push(json.dumps({"Body": {"WaybillRoute": [route]}}).encode())).events
    assert (first_only.status, first_only.sub_status) == (Status.IN_TRANSIT, SubStatus.NONE)


@pytest.mark.parametrize("token", ["tok-0123456789abcdef012345678X", "", None, TOKEN.upper(), TOKEN + "0"])
def test_a_push_with_the_wrong_token_is_rejected(token: str | None) -> None:
    # Given the recorded push addressed to a wrong or missing token / Then PushRejected, nothing parsed
    with pytest.raises(PushRejected):
        plugin().parse_push(json_push(raw("push.json"), token))
    with pytest.raises(PushRejected):
        plugin().verify_push(json_push(raw("push.json"), token))


def test_the_same_push_with_the_right_token_yields_the_events() -> None:
    # Given the push with the plugin's token / Then verification passes and the events come out
    request = json_push(raw("push.json"))
    plugin().verify_push(request)
    assert [(e.status, e.sub_status) for e in plugin().parse_push(request).events] == [
        (Status.PICKED_UP, SubStatus.NONE),
        (Status.DELIVERED, SubStatus.NONE),
    ]


def test_verify_does_not_read_the_body() -> None:
    # Given garbage with the right token / Then verify passes (cheap), parse says unreadable
    garbage = json_push(b"\x00not json")
    plugin().verify_push(garbage)
    with pytest.raises(PushUnreadable):
        plugin().parse_push(garbage)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"Body":{"WaybillRoute":"x"}}',
        b'{"Body":{"WaybillRoute":[{"mailno":"","acceptTime":"2024-05-01 10:30:56","opCode":"54"}]}}',
        b'{"Body":{"WaybillRoute":[{"mailno":"SF1234567890123","acceptTime":"yesterday","opCode":"54"}]}}',
    ],
)
def test_malformed_json_pushes_are_unreadable(body: bytes) -> None:
    with pytest.raises(PushUnreadable):
        plugin().parse_push(json_push(body))


def raw_xml_push(xml: bytes, content_type: str | None = "application/xml;charset=UTF-8") -> HttpRequest:
    """An XML push posted as the raw body (SF's own examples and test scripts do this)."""
    headers = {"Content-Type": content_type} if content_type else {}
    return HttpRequest(body=xml, headers=headers, path_params={"token": TOKEN})


ROUTE_XML = (
    "<?xml version='1.0' encoding='UTF-8'?><Request service=\"RoutePushService\" lang=\"zh-CN\"><Body>"
    '<WaybillRoute id="1" mailno="SF1234567890123" orderid="shp-1" acceptTime="2024-05-01 10:30:56" '
    'acceptAddress="深圳市" remark="顺丰速运 已收取快件" opCode="54"/></Body></Request>'
).encode()

HOSTILE_XML = [
    # an internal entity (the start of every "billion laughs")
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Request><Body/></Request>',
    # billion laughs: entities expanding entities
    (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><Request><Body><WaybillRoute mailno="&c;"/></Body></Request>'
    ),
    # an external entity reading a local file (XXE)
    (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Request><Body><WaybillRoute mailno="SF1" remark="&x;"/></Body></Request>'
    ),
    # a bare DTD without entities
    b'<?xml version="1.0"?><!DOCTYPE Request SYSTEM "http://example.com/r.dtd"><Request><Body/></Request>',
]


@pytest.mark.parametrize("xml", HOSTILE_XML, ids=["entity", "billion-laughs", "external-entity", "dtd"])
@pytest.mark.parametrize("transport", ["form", "raw"])
def test_xml_with_a_dtd_or_entities_is_refused(xml: bytes, transport: str) -> None:
    # Given an XML push carrying a DTD or entities, form-wrapped or as the raw body
    request = xml_push(xml) if transport == "form" else raw_xml_push(xml)
    # Then it is unreadable: nothing is expanded, nothing fetched
    with pytest.raises(PushUnreadable, match="DTDs and entities are not accepted"):
        plugin().parse_push(request)


@pytest.mark.parametrize(
    "content_type", ["application/xml;charset=UTF-8", "text/xml; charset=utf-8", "application/xml", None]
)
def test_a_raw_xml_body_is_read_whatever_its_xml_content_type(content_type: str | None) -> None:
    # Given SF's XML posted as the raw body (also without a content type, and with a byte-order mark)
    for body in (ROUTE_XML, b"\xef\xbb\xbf" + ROUTE_XML):
        parsed = plugin().parse_push(raw_xml_push(body, content_type))
        # Then it parses like the form variant of the same XML
        assert [as_expected(e) for e in parsed.events] == [
            as_expected(e) for e in plugin().parse_push(xml_push(ROUTE_XML)).events
        ]
        assert parsed.events[0].order_ref == "shp-1"


def test_the_ack_takes_the_shape_of_the_push() -> None:
    # Given an account configured for JSON pushes that receives SF's XML (raw or form) and JSON
    receiver = plugin(push_format="json")
    xml_ok = '<Response service="RoutePushService"><Head>OK</Head></Response>'
    # Then an XML push is answered in XML, a JSON one in JSON, and without the request the setting decides
    assert receiver.push_ack(True, request=raw_xml_push(ROUTE_XML)).body == xml_ok
    assert receiver.push_ack(True, request=xml_push(ROUTE_XML)).body == xml_ok
    assert json.loads(receiver.push_ack(True, request=json_push(raw("push.json"))).body)["return_code"] == "0000"
    assert json.loads(receiver.push_ack(True).body)["return_code"] == "0000"
    failure = plugin(push_format="json").push_ack(False, "坏了", request=raw_xml_push(ROUTE_XML))
    assert "<Head>ERR</Head>" in failure.body


def test_a_route_written_with_child_elements_is_read_too() -> None:
    xml = (
        "<Request><Body><WaybillRoute><mailno>SF1234567890123</mailno><acceptTime>2024-05-01 10:30:56</acceptTime>"
        "<remark>顺丰速运 已收取快件</remark><opCode>54</opCode></WaybillRoute></Body></Request>"
    ).encode()
    (event,) = plugin().parse_push(raw_xml_push(xml)).events
    assert (event.tracking_number, event.status, event.raw_code) == ("SF1234567890123", Status.PICKED_UP, "54")


def test_the_reason_of_an_exception_is_kept() -> None:
    route = {"mailno": "SF1234567890123", "acceptTime": "2024-05-02 10:00:00", "remark": "派件不成功",
             "opCode": "70", "reasonCode": "16", "reasonName": "收方客户不在"}  # fmt: skip
    (event,) = plugin().parse_push(json_push(json.dumps({"Body": {"WaybillRoute": [route]}}).encode())).events
    assert (event.exception_code, event.exception_text) == ("16", "收方客户不在")


def test_single_route_object_is_accepted() -> None:
    # Some serialisers emit a lone WaybillRoute as an object rather than a list
    route = json.loads(raw("push.json"))["Body"]["WaybillRoute"][0]
    parsed = plugin().parse_push(json_push(json.dumps({"Body": {"WaybillRoute": route}}).encode()))
    assert [e.raw_code for e in parsed.events] == ["54"]


@pytest.mark.parametrize(
    ("push_format", "ok", "reason", "body", "content_type"),
    [
        ("json", True, "", '{"return_code":"0000","return_msg":"成功"}', "application/json;charset=UTF-8"),
        (
            "json",
            False,
            "队列不可用",
            '{"return_code":"1000","return_msg":"队列不可用"}',
            "application/json;charset=UTF-8",
        ),
        (
            "xml",
            True,
            "",
            '<Response service="RoutePushService"><Head>OK</Head></Response>',
            "application/xml;charset=UTF-8",
        ),
        (
            "xml",
            False,
            "a<b",
            '<Response service="RoutePushService"><Head>ERR</Head><ERROR code="1000">a&lt;b</ERROR></Response>',
            "application/xml;charset=UTF-8",
        ),
    ],
)
def test_push_ack_is_the_exact_reply_sf_expects(
    push_format: str, ok: bool, reason: str, body: str, content_type: str
) -> None:
    reply = plugin(push_format=push_format).push_ack(ok, reason)
    assert (reply.status_code, reply.body, reply.content_type) == (200, body, content_type)


# ------------------------------------------------------------------------------------------ property

ROUTES = [
    ("2024-05-01 10:30:56", "54", "顺丰速运 已收取快件", "深圳市"),
    ("2024-05-01 13:16:02", "30", "快件在【深圳南山中转场】完成分拣，准备发往 【广州白云中转场】", "深圳市"),
    ("2024-05-02 06:10:00", "130", "快件已到达【广州白云营业点】，即将派件", "广州市"),
    ("2024-05-02 07:01:00", "204", "快件交给王师傅，正在派送途中（联系电话：138****0000）", "广州市"),
    ("2024-05-02 07:58:31", "80", "您的快件已签收，感谢您使用顺丰，期待再次为您服务。", "广州市"),
]


def _push_body(indices: list[int]) -> bytes:
    nodes = [
        {
            "id": str(1790000000000000 + i),
            "mailno": "SF1234567890123",
            "orderid": "DTC-20240501-0001",
            "acceptTime": ROUTES[i][0],
            "acceptAddress": ROUTES[i][3],
            "remark": ROUTES[i][2],
            "opCode": ROUTES[i][1],
        }
        for i in indices
    ]
    return json.dumps({"Body": {"WaybillRoute": nodes}}, ensure_ascii=False).encode()


@settings(max_examples=60, deadline=None)
@given(
    st.permutations(range(len(ROUTES))),
    st.lists(st.integers(min_value=0, max_value=len(ROUTES) - 1), max_size=20),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=10),
)
def test_any_split_order_or_duplication_of_pushes_folds_to_delivered(
    order: list[int], repeats: list[int], rnd: Any, per_push: int
) -> None:
    indices = list(order) + repeats
    rnd.shuffle(indices)
    # Given the routes of one parcel pushed in any order, split into pushes of any size, with repeats
    sf = plugin()
    events: list[TrackingEvent] = []
    for start in range(0, len(indices), per_push):
        events.extend(sf.parse_push(json_push(_push_body(indices[start : start + per_push]))).events)
    # Then the fold equals the fold of the in-order, de-duplicated pushes: DELIVERED
    reference = fold(sf.parse_push(json_push(_push_body(list(range(len(ROUTES)))))).events)
    state = fold(events)
    assert state == reference
    assert state is not None
    assert state.status is Status.DELIVERED


def test_a_queued_push_carries_only_the_tokens_digest_and_still_verifies() -> None:
    from parcelhub.carriers.base import HttpRequest, sealed_path_params

    # Given the push as SF sent it, sealed as the webhook queues it
    sent = json_push(raw("push.json"))
    sealed = sealed_path_params(sent.path_params)
    # Then the token itself is gone, and the normalizer's re-verification accepts the digest
    assert TOKEN not in json.dumps(sealed)
    queued = HttpRequest(body=sent.body, headers=sent.headers, path_params=sealed)
    assert len(plugin().parse_push(queued).events) == 2
    # And a digest of any other token is refused
    forged = HttpRequest(body=sent.body, headers=sent.headers, path_params=sealed_path_params({"token": TOKEN + "0"}))
    with pytest.raises(PushRejected):
        plugin().parse_push(forged)
