"""Kdniao pushes (REFERENCE §1.6): verification, parsing of recorded snapshots, the merchant reply."""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.carriers.base import Capability, HttpRequest, ProviderPlugin, PushRejected, PushUnreadable
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import data_sign
from parcelhub.domain.models import CHINA_TZ, Carrier, TrackingEvent
from parcelhub.domain.status import Status, SubStatus, fold

pytestmark = pytest.mark.unit

PUSHES = Path(__file__).parents[2] / "fixtures" / "kdniao" / "pushes"
APP_KEY = "00000000-1111-2222-3333-444444444444"


def plugin() -> KdniaoPlugin:
    return KdniaoPlugin(
        KdniaoSettings(ebusiness_id="1234567", app_key=APP_KEY),
        clock=lambda: datetime(2024, 5, 2, 9, 15, 4, tzinfo=CHINA_TZ),
    )


def fixture(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((PUSHES / f"{name}.json").read_text("utf-8"))
    return data


def request(form: dict[str, str]) -> HttpRequest:
    body = urllib.parse.urlencode(form).encode("ascii")
    return HttpRequest(body=body, headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})


def view(event: TrackingEvent) -> dict[str, Any]:
    return {
        "carrier": event.carrier.value,
        "tracking_number": event.tracking_number,
        "occurred_at": event.occurred_at.isoformat(),
        "status": event.status.value,
        "sub_status": event.sub_status.value,
        "raw_code": event.raw_code,
        "raw_text": event.raw_text,
        "location": event.location,
        "source": event.source.value,
        "content_hash": event.content_hash,
    }


def test_plugin_implements_the_protocol() -> None:
    p = plugin()
    assert isinstance(p, ProviderPlugin)
    assert Capability.ISSUE_WAYBILLS in p.capabilities
    assert Capability.PUSH_TRACKING in p.capabilities
    assert p.name.value == "kdniao"


def test_reference_push_parses_into_the_expected_canonical_events() -> None:
    # Given the REFERENCE §1.6 sample push, signed with our AppKey
    parsed = plugin().parse_push(request(fixture("102_reference")))
    # Then every trace is a canonical event: status, times with +08:00, location, raw code/text, stable hash
    expected = json.loads((PUSHES / "102_reference.expected.json").read_text("utf-8"))
    assert [view(e) for e in parsed.events] == expected
    assert parsed.tracking_numbers == ((Carrier.ZTO, "73100000000001"),)
    assert parsed.unmapped_codes == ()


def test_push_signed_with_the_wrong_key_is_rejected_and_the_same_push_correctly_signed_is_accepted() -> None:
    wrong = fixture("102_reference_wrong_key")
    right = fixture("102_reference")
    assert wrong["RequestData"] == right["RequestData"]
    with pytest.raises(PushRejected):
        plugin().verify_push(request(wrong))
    with pytest.raises(PushRejected):
        plugin().parse_push(request(wrong))
    events = plugin().parse_push(request(right)).events
    assert events[-1].status is Status.OUT_FOR_DELIVERY


def test_raw_digest_data_sign_is_rejected() -> None:
    with pytest.raises(PushRejected):
        plugin().parse_push(request(fixture("102_reference_raw_digest")))


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"RequestType": "102", "RequestData": "{}"}, PushRejected),  # no DataSign
        ({"RequestType": "102", "DataSign": data_sign("{}", APP_KEY)}, PushUnreadable),  # no RequestData
        ({"RequestType": "102", "RequestData": "not json", "DataSign": data_sign("not json", APP_KEY)}, PushUnreadable),
        (
            {"RequestType": "999", "RequestData": '{"Data":[]}', "DataSign": data_sign('{"Data":[]}', APP_KEY)},
            PushUnreadable,
        ),
    ],
)
def test_malformed_or_unsigned_pushes(form: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        plugin().parse_push(request(form))


def test_non_utf8_body_is_unreadable() -> None:
    with pytest.raises(PushUnreadable):
        plugin().verify_push(HttpRequest(body=b"RequestData=\xff\xfe"))


def test_standard_101_push_with_several_waybills_and_count_as_string() -> None:
    # Given a 101 (standard) push: three waybills, Count a string, no Action, one without traces
    form = fixture("101_multi")
    assert json.loads(form["RequestData"])["Count"] == "3"
    parsed = plugin().parse_push(request(form))
    by_number: dict[str, list[TrackingEvent]] = {}
    for event in parsed.events:
        by_number.setdefault(event.tracking_number, []).append(event)
    # Then the latest scan takes the element's State; earlier ones keep their milestone, read from their
    # text (inferred), with no raw code
    yto = by_number["YT1234567890123"]
    assert [e.status for e in yto] == [Status.PICKED_UP, Status.IN_TRANSIT, Status.DELIVERED]
    assert [e.inferred for e in yto] == [True, True, False]
    assert {e.raw_code for e in yto} == {""}
    assert {e.carrier for e in yto} == {Carrier.YTO}
    sto = by_number["7712345678901"]
    assert [e.status for e in sto] == [Status.PICKED_UP, Status.IN_TRANSIT]
    assert [e.inferred for e in sto] == [True, False]
    # And the echoed order reference and the estimated delivery date are kept
    assert {e.order_ref for e in yto} == {"shp_a1"}
    assert {e.order_ref for e in sto} == {"shp_b2"}
    assert yto[-1].estimated_delivery_at is not None
    assert yto[-1].estimated_delivery_at.isoformat() == "2024-05-03T00:00:00+08:00"
    assert (yto[-1].signed, sto[-1].signed) == (True, False)
    assert "4312345678901" not in by_number  # no traces yet: nothing to record, but it is listed
    assert parsed.tracking_numbers == (
        (Carrier.YTO, "YT1234567890123"),
        (Carrier.STO, "7712345678901"),
        (Carrier.YD, "4312345678901"),
    )
    assert parsed.unmapped_codes == ()


def test_field_name_case_variations_and_unsorted_traces() -> None:
    # Given lower-case `location`/`action`/`Callback` and traces out of order
    parsed = plugin().parse_push(request(fixture("102_case_variants")))
    events = parsed.events
    assert [e.occurred_at.isoformat() for e in events] == [
        "2024-05-03T09:00:00+08:00",
        "2024-05-03T19:00:00+08:00",
        "2024-05-04T07:30:00+08:00",
    ]
    assert [(e.status, e.sub_status) for e in events] == [
        (Status.PICKED_UP, SubStatus.NONE),
        (Status.IN_TRANSIT, SubStatus.AT_DELIVERY_STATION),
        (Status.RETURNING, SubStatus.REFUSED),
    ]
    assert [e.location for e in events] == ["广州市", "深圳市", "深圳市"]  # the last from the element's `location`
    assert events[-1].raw_code == "404"


def test_unknown_code_is_unmapped_and_reported() -> None:
    parsed = plugin().parse_push(request(fixture("102_unknown_code")))
    last = parsed.events[-1]
    assert last.sub_status is SubStatus.UNMAPPED
    assert last.raw_code == "499"
    assert parsed.unmapped_codes == ("499",)


def test_cod_107_push_is_accepted_without_tracking_events() -> None:
    parsed = plugin().parse_push(request(fixture("107_cod")))
    assert parsed.events == ()
    assert parsed.tracking_numbers == ((Carrier.ZTO, "73100000000001"),)


def test_push_ack_is_the_merchant_reply() -> None:
    ok = plugin().push_ack(True)
    assert ok.status_code == 200
    assert ok.content_type == "application/json;charset=utf-8"
    assert ok.body == '{"EBusinessID":"1234567","UpdateTime":"2024-05-02 09:15:04","Success":true,"Reason":""}'
    failed = plugin().push_ack(False, "DataSign mismatch")
    assert failed.status_code == 401
    assert json.loads(failed.body) == {
        "EBusinessID": "1234567",
        "UpdateTime": "2024-05-02 09:15:04",
        "Success": False,
        "Reason": "DataSign mismatch",
    }


def test_a_scan_repeated_in_later_snapshots_keeps_its_content_hash() -> None:
    # Given the reference snapshot and an earlier snapshot holding only its first two traces
    full = json.loads(fixture("102_reference")["RequestData"])
    early = json.loads(json.dumps(full))
    element = early["Data"][0]
    element["Traces"] = element["Traces"][:2]
    element["StateEx"], element["State"] = "2", "2"
    request_data = json.dumps(early, ensure_ascii=False)
    early_form = {"RequestType": "102", "RequestData": request_data, "DataSign": data_sign(request_data, APP_KEY)}
    # Then the shared scans hash the same: the store dedupes them
    early_hashes = [e.content_hash for e in plugin().parse_push(request(early_form)).events]
    full_hashes = [e.content_hash for e in plugin().parse_push(request(fixture("102_reference"))).events]
    assert early_hashes == full_hashes[:2]


@settings(max_examples=50, deadline=None)
@given(order=st.permutations(range(4)), duplicates=st.lists(st.integers(0, 3), max_size=6))
def test_fold_of_snapshot_events_is_order_and_duplicate_independent(order: list[int], duplicates: list[int]) -> None:
    # Given the events of the successive snapshots of one parcel (1, 2, 3, 4 traces)
    full = json.loads(fixture("102_reference")["RequestData"])
    snapshots: list[list[TrackingEvent]] = []
    for size in range(1, 5):
        data = json.loads(json.dumps(full))
        data["Data"][0]["Traces"] = data["Data"][0]["Traces"][:size]
        text = json.dumps(data, ensure_ascii=False)
        form = {"RequestType": "102", "RequestData": text, "DataSign": data_sign(text, APP_KEY)}
        snapshots.append(list(plugin().parse_push(request(form)).events))
    # When they arrive in any order, some twice
    arrivals = [snapshots[i] for i in order] + [snapshots[i] for i in duplicates]
    state = None
    for events in arrivals:
        state = fold(events, state)
    # Then the fold is the same as in order: out for delivery
    assert state is not None
    assert state.status is Status.OUT_FOR_DELIVERY
    assert state == fold(snapshots[3])


# ------------------------------------------------------------------------------ waybill-level StateEx


def pushed(element: dict[str, Any], request_type: str = "102", push_time: str = "2024-05-06 09:00:00") -> HttpRequest:
    """A push carrying one ``Data[]`` element, signed with our AppKey."""
    data = json.dumps(
        {"EBusinessID": "1234567", "PushTime": push_time, "Count": "1", "Data": [element]},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return request({"RequestData": data, "DataSign": data_sign(data, APP_KEY), "RequestType": request_type})


def element(state_ex: str, *actions: tuple[str, str, str], state: str = "2") -> dict[str, Any]:
    traces = [{"AcceptTime": t, "AcceptStation": text, "Action": a, "Location": "苏州市"} for t, a, text in actions]
    return {"ShipperCode": "ZTO", "LogisticCode": "73100000000009", "Success": True, "State": state,
            "StateEx": state_ex, "Location": "苏州市", "Traces": traces}  # fmt: skip


PICKED = ("2024-05-04 10:00:00", "1", "【杭州市】快件已揽收")
MOVING = ("2024-05-05 08:00:00", "2", "【杭州市】快件已发往 苏州转运中心")


@pytest.mark.parametrize(
    ("state_ex", "status", "sub_status"),
    [
        ("403", Status.EXCEPTION, SubStatus.CARRIER_TIMEOUT_NO_UPDATE),
        ("402", Status.EXCEPTION, SubStatus.CARRIER_TIMEOUT_NOT_SIGNED),
        ("412", Status.EXCEPTION, SubStatus.CARRIER_TIMEOUT_LOCKER),
        ("304", Status.DELIVERED, SubStatus.SIGNED_BY_PROXY),
    ],
)
def test_a_waybill_state_beyond_the_latest_trace_becomes_an_event_just_after_it(
    state_ex: str, status: Status, sub_status: SubStatus
) -> None:
    # Given a value-added push whose traces end in transit but whose StateEx says more
    parsed = plugin().parse_push(pushed(element(state_ex, PICKED, MOVING)))
    # Then the StateEx is an event one second after the latest trace, and the fold lets it win
    last = parsed.events[-1]
    assert (last.status, last.sub_status, last.raw_code) == (status, sub_status, state_ex)
    assert last.occurred_at.isoformat() == "2024-05-05T08:00:01+08:00"
    state = fold(parsed.events)
    assert state is not None
    assert (state.status, state.sub_status) == (status, sub_status)
    assert parsed.unmapped_codes == ()


def test_a_later_scan_supersedes_a_carrier_timeout_in_any_order() -> None:
    # Given a timeout push, then the next snapshot where the parcel moved again
    timeout = plugin().parse_push(pushed(element("403", PICKED, MOVING)))
    moved = plugin().parse_push(
        pushed(element("202", PICKED, MOVING, ("2024-05-06 08:30:00", "202", "【苏州市】快递员正在派件")))
    )
    # Then whatever the arrival order, the later scan wins (and a re-push of the timeout changes nothing)
    for events in (list(timeout.events) + list(moved.events), list(moved.events) + list(timeout.events) * 2):
        state = fold(events)
        assert state is not None
        assert state.status is Status.OUT_FOR_DELIVERY


@pytest.mark.parametrize(("state_ex", "action"), [("202", "202"), ("2", "202"), ("3", "301"), ("", "2")])
def test_a_waybill_state_that_says_no_more_than_the_latest_trace_adds_nothing(state_ex: str, action: str) -> None:
    # Given a StateEx equal to the latest Action, or the family it refines (the more specific wins)
    trace = ("2024-05-05 08:00:00", action, "【苏州市】扫描")
    parsed = plugin().parse_push(pushed(element(state_ex, PICKED, trace)))
    # Then there is one event per trace and no more
    assert [e.raw_code for e in parsed.events] == ["1", action]


def test_a_waybill_state_without_any_trace_is_stamped_with_the_push_time() -> None:
    # Given 401 发货无信息: the carrier never scanned it, so there is no trace at all
    parsed = plugin().parse_push(pushed(element("401", state="4"), push_time="2024-05-07 06:00:00"))
    # Then the state is an event at PushTime (a carrier-detected stall)
    (event,) = parsed.events
    assert (event.status, event.sub_status, event.raw_code) == (
        Status.EXCEPTION,
        SubStatus.CARRIER_TIMEOUT_NO_UPDATE,
        "401",
    )
    assert event.occurred_at.isoformat() == "2024-05-07T06:00:00+08:00"
    # And "no trace yet" (0) without traces records nothing
    assert plugin().parse_push(pushed(element("0", state="0"))).events == ()


def test_an_unknown_waybill_state_is_counted_not_guessed() -> None:
    parsed = plugin().parse_push(pushed(element("499", PICKED, MOVING)))
    assert [e.raw_code for e in parsed.events] == ["1", "2"]
    assert parsed.unmapped_codes == ("499",)


def test_standard_edition_scans_keep_their_milestones_read_from_the_text() -> None:
    # Given a 101 push (no Action): the State describes the latest scan only
    traces = [
        {"AcceptTime": "2024-05-04 10:00:00", "AcceptStation": "【杭州市】快件已揽收"},
        {"AcceptTime": "2024-05-05 08:00:00", "AcceptStation": "【苏州市】快递员王某正在派件"},
        {"AcceptTime": "2024-05-05 12:00:00", "AcceptStation": "【苏州市】快件已放入菜鸟驿站，请及时取件"},
    ]
    standard = {"ShipperCode": "ZTO", "LogisticCode": "73100000000010", "Success": True, "State": "2",
                "Traces": traces, "CallBack": "shp-42", "EstimatedDeliveryTime": "2024-5-6"}  # fmt: skip
    parsed = plugin().parse_push(pushed(standard, request_type="101"))
    # Then each earlier scan has its milestone, marked inferred; the latest takes the State
    assert [(e.status, e.inferred) for e in parsed.events] == [
        (Status.PICKED_UP, True),
        (Status.OUT_FOR_DELIVERY, True),
        (Status.IN_TRANSIT, False),
    ]
    # And the echoed reference rides on every event, the estimate and the signed flag on the newest
    assert {e.order_ref for e in parsed.events} == {"shp-42"}
    assert parsed.events[-1].estimated_delivery_at == datetime(2024, 5, 6, tzinfo=CHINA_TZ)
    assert parsed.events[-1].signed is False
