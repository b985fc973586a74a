"""Kuaidi100 pushes: verification, recorded payloads -> canonical events, the reply, the plugin shape."""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.carriers.base import (
    Capability,
    CarrierRejected,
    HttpRequest,
    ProviderPlugin,
    PushRejected,
    PushUnreadable,
    TrackingSubscription,
    WaybillOrder,
)
from parcelhub.carriers.kuaidi100.plugin import Kuaidi100Plugin
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.kuaidi100.signing import push_sign
from parcelhub.carriers.registry import build_plugin
from parcelhub.domain.models import Carrier, Party, Provider, ShipmentRequest, Waybill
from parcelhub.domain.status import Status, SubStatus, fold

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kuaidi100" / "pushes"
CONFIG = {"key": "TESTKEY", "customer": "TESTCUSTOMER0000000000000000000", "salt": "TESTSALT"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def request_of(form: dict[str, str]) -> HttpRequest:
    """A push as it arrives: the form encoded on the wire (each value encoded exactly once)."""
    return HttpRequest(body=urllib.parse.urlencode(form).encode("ascii"), headers=FORM)


def plugin(received_at: datetime | None = None) -> Kuaidi100Plugin:
    settings_ = Kuaidi100Settings.model_validate(CONFIG)
    if received_at is None:
        return Kuaidi100Plugin(settings_)
    return Kuaidi100Plugin(settings_, clock=lambda: received_at)


# ------------------------------------------------------------------------------------- authenticity


def test_the_reference_push_on_the_wire_is_accepted_and_parsed() -> None:
    # Given the §3.3 example exactly as Kuaidi100 sends it (form-encoded)
    request = HttpRequest(body=(FIXTURES / "push_polling.wire.txt").read_bytes(), headers=FORM)
    expected = fixture("push_polling.expected.json")
    # When verified and parsed
    plugin().verify_push(request)
    parsed = plugin().parse_push(request)
    # Then one out-for-delivery event in China time, with the raw code and text kept
    assert [event.model_dump(mode="json") for event in parsed.events] == expected["events"]
    assert [[c.value, n] for c, n in parsed.tracking_numbers] == expected["tracking_numbers"]
    assert parsed.events[0].occurred_at.isoformat() == "2024-05-02T08:10:00+08:00"


def test_a_push_signed_with_the_wrong_salt_is_rejected_and_the_right_one_parsed() -> None:
    # Given the same param signed with another salt
    wrong = fixture("push_polling_wrong_salt.form.json")
    # Then verification and parsing both refuse it
    with pytest.raises(PushRejected):
        plugin().verify_push(request_of(wrong))
    with pytest.raises(PushRejected):
        plugin().parse_push(request_of(wrong))
    # And the same param correctly signed yields the right event
    right = {"param": wrong["param"], "sign": push_sign(wrong["param"], "TESTSALT")}
    (event,) = plugin().parse_push(request_of(right)).events
    assert (event.status, event.sub_status, event.raw_code) == (Status.OUT_FOR_DELIVERY, SubStatus.NONE, "5")


def test_a_lower_case_hex_sign_is_accepted() -> None:
    form = fixture("push_shutdown.form.json")
    lower = {"param": form["param"], "sign": form["sign"].lower()}
    assert lower["sign"] != form["sign"]
    plugin().verify_push(request_of(lower))
    assert len(plugin().parse_push(request_of(lower)).events) == 5


def test_a_tampered_param_is_rejected() -> None:
    # Given a valid push whose param was altered after signing (delivered -> in transit)
    form = fixture("push_polling_wrong_salt.form.json")
    good_sign = push_sign(form["param"], "TESTSALT")
    tampered = {"param": form["param"].replace('"statusCode":"5"', '"statusCode":"0"'), "sign": good_sign}
    with pytest.raises(PushRejected):
        plugin().verify_push(request_of(tampered))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"param=%7B%7D", PushRejected),  # no sign
        (b"sign=ABC", PushUnreadable),  # no param
        (b"\xff\xfe", PushUnreadable),  # not UTF-8
        (b"", PushUnreadable),
    ],
)
def test_malformed_pushes_are_refused(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        plugin().verify_push(HttpRequest(body=body, headers=FORM))


def test_a_signed_push_with_a_broken_param_is_unreadable() -> None:
    for param in ("not json", "[1,2]", '{"lastResult":{"nu":""}}'):
        form = {"param": param, "sign": push_sign(param, "TESTSALT")}
        plugin().verify_push(request_of(form))  # authentic …
        with pytest.raises(PushUnreadable):
            plugin().parse_push(request_of(form))  # … but unreadable


def test_a_push_naming_an_unknown_company_is_kept_and_counted_not_refused() -> None:
    # Given an authentic push for a company code outside the table (and no known old code)
    param = '{"status":"polling","lastResult":{"nu":"X1","com":"NoSuchCo","state":"0","data":[]}}'
    form = {"param": param, "sign": push_sign(param, "TESTSALT")}
    # When parsed
    parsed = plugin().parse_push(request_of(form))
    # Then it is accepted: nothing can be recorded without a carrier, the raw code is counted
    assert (list(parsed.events), list(parsed.tracking_numbers)) == ([], [])
    assert list(parsed.unmapped_codes) == ["com:nosuchco"]


# ------------------------------------------------------------------------------ recorded pushes


@pytest.mark.parametrize(
    "name", ["shutdown", "abort", "abort_no_traces", "autocheck", "names_only", "updateall_exception"]
)
def test_recorded_push_parses_into_the_expected_canonical_events(name: str) -> None:
    # Given a recorded push and its expected canonical events (status, sub-status, +08:00, location, hashes)
    form = fixture(f"push_{name}.form.json")
    expected = fixture(f"push_{name}.expected.json")
    received_at = datetime.fromisoformat(expected["received_at"]) if "received_at" in expected else None
    # When parsed
    parsed = plugin(received_at).parse_push(request_of(form))
    # Then the events, the tracking numbers and the unmapped codes are exactly the expected ones
    assert [event.model_dump(mode="json") for event in parsed.events] == expected["events"]
    assert [[c.value, n] for c, n in parsed.tracking_numbers] == expected["tracking_numbers"]
    assert list(parsed.unmapped_codes) == expected["unmapped_codes"]
    # And parsing again gives the same content hashes (dedupe keys)
    again = plugin(received_at).parse_push(request_of(form))
    assert [e.content_hash for e in again.events] == [e["content_hash"] for e in expected["events"]]


def test_a_full_snapshot_folds_to_delivered() -> None:
    parsed = plugin().parse_push(request_of(fixture("push_shutdown.form.json")))
    state = fold(parsed.events)
    assert state is not None
    assert (state.status, state.sub_status) == (Status.DELIVERED, SubStatus.SIGNED_BY_RECIPIENT)


def test_abort_makes_the_parcel_count_as_a_carrier_stall() -> None:
    # Given Kuaidi100 gave up tracking ("60天无变化")
    parsed = plugin().parse_push(request_of(fixture("push_abort.form.json")))
    state = fold(parsed.events)
    # Then the folded state is the abort (it happened after the last trace)
    assert state is not None
    assert (state.status, state.sub_status) == (Status.EXCEPTION, SubStatus.CARRIER_TRACKING_ABORTED)


def test_an_abort_after_delivery_does_not_move_the_parcel_back() -> None:
    shutdown = json.loads(fixture("push_shutdown.form.json")["param"])
    shutdown["status"] = "abort"
    param = json.dumps(shutdown, ensure_ascii=False, separators=(",", ":"))
    parsed = plugin().parse_push(request_of({"param": param, "sign": push_sign(param, "TESTSALT")}))
    assert parsed.events[-1].sub_status is SubStatus.CARRIER_TRACKING_ABORTED
    state = fold(parsed.events)
    assert state is not None
    assert state.status is Status.DELIVERED


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_order_and_duplication_of_traces_do_not_change_the_outcome(data: st.DataObject) -> None:
    # Given the recorded full snapshot, with its traces shuffled and some duplicated
    push = json.loads(fixture("push_shutdown.form.json")["param"])
    traces = push["lastResult"]["data"]
    extra = data.draw(st.lists(st.sampled_from(traces), max_size=5))
    push["lastResult"]["data"] = data.draw(st.permutations(traces + extra))
    param = json.dumps(push, ensure_ascii=False, separators=(",", ":"))
    # When parsed
    parsed = plugin().parse_push(request_of({"param": param, "sign": push_sign(param, "TESTSALT")}))
    # Then the same set of events (by content hash) and the same folded state come out
    reference = plugin().parse_push(request_of(fixture("push_shutdown.form.json")))
    assert sorted(e.content_hash for e in parsed.events) == sorted(e.content_hash for e in reference.events)
    assert fold(parsed.events) == fold(reference.events)


# ----------------------------------------------------------------------------------------- reply


def test_push_ack_is_the_exact_reply_kuaidi100_expects() -> None:
    ok = plugin().push_ack(True)
    assert (ok.status_code, ok.body) == (200, '{"result":true,"returnCode":"200","message":"成功"}')
    assert ok.content_type.startswith("application/json")
    failed = plugin().push_ack(False, "bad sign")
    assert json.loads(failed.body) == {"result": False, "returnCode": "500", "message": "bad sign"}
    assert failed.status_code == 200


# ------------------------------------------------------------------------------------ plugin shape


def test_plugin_satisfies_the_protocol_and_registry() -> None:
    built = build_plugin(Provider.KUAIDI100, CONFIG)
    assert isinstance(built, Kuaidi100Plugin)
    assert isinstance(built, ProviderPlugin)
    assert built.name is Provider.KUAIDI100
    assert (Capability.ISSUE_WAYBILLS in built.capabilities, Capability.PUSH_TRACKING in built.capabilities) == (
        False,
        True,
    )
    assert built.supported_carriers() == frozenset(Carrier)


def test_waybill_calls_are_unsupported() -> None:
    party = Party(
        name="张三", phone="13800000000", province="浙江省", city="杭州市", district="西湖区", address="文三路 1 号"
    )
    request = ShipmentRequest.model_validate(
        {
            "order_id": "ORD-1",
            "receiver": party.model_dump(),
            "parcels": [{"weight_kg": 1.0}],
            "items": [{"name": "茶叶", "quantity": 1}],
            "declared_value": {"amount": "10.00"},
        }
    )
    order = WaybillOrder(shipment_id="shp_1", carrier=Carrier.YTO, request=request, sender=party)
    with pytest.raises(CarrierRejected) as created:
        plugin().create_waybill(order)
    assert created.value.code == "UNSUPPORTED"
    waybill = Waybill(provider=Provider.KUAIDI100, carrier=Carrier.YTO, tracking_number="YT1234567890123")
    with pytest.raises(CarrierRejected) as cancelled:
        plugin().cancel_waybill(waybill)
    assert cancelled.value.code == "UNSUPPORTED"


def test_subscribing_a_carrier_outside_the_company_table_is_rejected() -> None:
    settings_ = Kuaidi100Settings.model_validate(CONFIG | {"company_codes": {"YTO": "yuantong"}})
    subscription = TrackingSubscription(
        carrier=Carrier.ZTO, tracking_number="75123456789012", callback_url="https://x.example/h"
    )
    with pytest.raises(CarrierRejected) as caught:
        Kuaidi100Plugin(settings_).subscribe_tracking(subscription)
    assert caught.value.code == "UNSUPPORTED"
