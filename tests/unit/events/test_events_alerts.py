"""Ops alert texts: bilingual, actionable, built by pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcelhub.domain.models import Carrier, Provider
from parcelhub.domain.status import Status
from parcelhub.events import (
    STALL_RULES,
    AttemptSummary,
    CarrierCircuitOpened,
    ShipmentStalled,
    WaybillFailed,
    circuit_opened_alert,
    humanize_duration,
    stall_alert,
    waybill_failed_alert,
)
from tools.event_schemas import example

pytestmark = pytest.mark.unit

LAST_SCAN = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)  # 18:30 China time


def alert_for(rule: str, threshold: int | None = 48 * 3600):
    return stall_alert(
        shipment_id="shp_9",
        order_id="DTC-9",
        carrier="YTO",
        provider="kuaidi100",
        tracking_number="YT1234567890123",
        status=Status.IN_TRANSIT,
        rule=rule,
        threshold_seconds=threshold,
        stalled_for_seconds=2 * 86400 + 3 * 3600 + 59,
        last_event_text="【上海市】快件已到达上海转运中心",
        last_event_at=LAST_SCAN,
    )


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [
        (0, "0秒", "0 seconds"),
        (45, "45秒", "45 seconds"),
        (3600, "1小时", "1 hour"),
        (3 * 3600 + 15 * 60 + 9, "3小时15分钟", "3 hours 15 minutes"),
        (2 * 86400 + 3 * 3600 + 59, "2天3小时", "2 days 3 hours"),
        (86400 + 30, "1天", "1 day"),
    ],
)
def test_durations_read_like_a_person_wrote_them(seconds: int, zh: str, en: str) -> None:
    assert humanize_duration(seconds) == (zh, en)


def test_stall_alert_has_everything_a_person_needs() -> None:
    # Given a parcel stuck in transit for 2 days 3 hours
    alert = alert_for("in_transit")
    zh, en = alert.message.split("\n\n", 1)
    # Then the Chinese block comes first, the English second, and each has the facts to act on
    for block in (zh, en):
        assert "DTC-9" in block
        assert "YT1234567890123" in block
        assert "YTO" in block
        assert "【上海市】快件已到达上海转运中心" in block
        assert "2024-05-01 18:30 (UTC+8)" in block
        assert "in_transit" in block
    assert "圆通速递" in zh
    assert "2天3小时" in zh
    assert "2天" in zh  # the rule's threshold
    assert "查件" in zh
    assert "2 days 3 hours" in en
    assert "trace request" in en
    assert "Shipment: shp_9" in en


def test_each_rule_suggests_its_own_action() -> None:
    # Given every known stall rule / Then each alert carries that rule's action, and the actions differ
    messages = {rule: alert_for(rule).message for rule in STALL_RULES}
    for rule, text in STALL_RULES.items():
        assert text.action_zh in messages[rule]
        assert text.action_en in messages[rule]
    assert len({t.action_en for t in STALL_RULES.values()}) == len(STALL_RULES)
    assert set(STALL_RULES) == {"no_pickup", "in_transit", "out_for_delivery", "at_pickup_point", "carrier_timeout"}


def test_unknown_rule_and_missing_scan_still_give_a_usable_alert() -> None:
    # Given a custom rule, no threshold, and a parcel with no scan yet
    alert = stall_alert(
        shipment_id="shp_1",
        order_id="A-1",
        carrier="ZTO",
        provider="kdniao",
        tracking_number="73100012345678",
        status=Status.WAYBILL_CREATED,
        rule="remote_lane",
        stalled_for_seconds=90_000,
    )
    # Then it still names the rule, says there is no scan, and suggests checking with the carrier
    assert "remote_lane" in alert.message
    assert "暂无轨迹" in alert.message
    assert "no scan yet" in alert.message
    assert "Check the carrier's tracking" in alert.message


@given(
    st.text(min_size=1, max_size=64, alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))),
    st.integers(0, 10**8),
)
def test_subjects_follow_sns_rules(order_id: str, stalled: int) -> None:
    # Given any order id (even a non-ASCII one) and any duration
    alert = stall_alert(
        shipment_id="s",
        order_id=order_id,
        carrier="SF",
        provider="sf",
        tracking_number="SF1234567890123",
        status=Status.IN_TRANSIT,
        rule="in_transit",
        stalled_for_seconds=stalled,
    )
    # Then the subject is ASCII, one line, shorter than 100 characters (SNS Subject constraints)
    assert alert.subject.isascii()
    assert "\n" not in alert.subject
    assert 0 < len(alert.subject) < 100


def attempt(outcome: str, code: str | None = None, message: str | None = None) -> AttemptSummary:
    return AttemptSummary.model_validate(
        {
            "provider": "sf",
            "carrier": "SF",
            "outcome": outcome,
            "error_code": code,
            "error_message": message,
            "at": LAST_SCAN,
        }
    )


@pytest.mark.parametrize(
    ("attempts", "advice"),
    [
        ([attempt("unavailable", "HTTP 503"), attempt("skipped_circuit_open")], "POST /v1/shipments/shp_5/retry"),
        ([attempt("rejected", "8019", "收件地址不详"), attempt("unavailable")], "Check the receiver address"),
        ([attempt("auth_error", "A1001", "签名错误"), attempt("unavailable")], "Check the provider credentials"),
        ([attempt("rejected", "1010", "月结卡号无效")], "Read each provider's rejection reason"),
    ],
)
def test_waybill_failed_advice_depends_on_what_went_wrong(attempts: list[AttemptSummary], advice: str) -> None:
    # Given the attempts of a shipment no carrier would take
    alert = waybill_failed_alert("shp_5", "DTC-5", attempts)
    # Then the alert lists every attempt in both languages and gives the matching advice
    assert advice in alert.message
    assert alert.message.index("【下单失败】") < alert.message.index("[Waybill failed]")
    assert alert.message.count("SF via sf") == len(attempts)
    assert "DTC-5" in alert.subject


def test_circuit_alert_says_what_happens_next() -> None:
    opened = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    alert = circuit_opened_alert(
        provider="sf",
        failures=5,
        window_seconds=60,
        cool_down_seconds=300,
        opened_at=opened,
        half_open_at=opened + timedelta(seconds=300),
        last_error_code="HTTP 503",
    )
    assert "顺丰丰桥" in alert.message
    assert "5 failures within 1 minute" in alert.message
    assert "after 5 minutes (2024-05-01 10:05 (UTC+8))" in alert.message
    assert "HTTP 503" in alert.message
    assert alert.subject == "[parcelhub] Circuit opened for provider sf: 5 failures in 1 minute"


def test_alerting_events_fill_their_alert_from_their_fields() -> None:
    # Given the three alerting events built without an alert
    stalled = example(ShipmentStalled)
    failed = example(WaybillFailed)
    circuit = example(CarrierCircuitOpened)
    # Then each carries exactly the text its pure builder makes
    assert stalled.alert == stalled.build_alert()
    assert failed.alert == waybill_failed_alert(failed.shipment_id, failed.order_id, failed.attempts)
    assert circuit.alert == circuit.build_alert()
    assert stalled.carrier is Carrier.ZTO
    assert circuit.provider is Provider.SF
