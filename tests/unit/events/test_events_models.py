"""Event models: deterministic ids, no personal data, round trips, and nothing built at import."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from parcelhub.domain.models import CHINA_TZ, Carrier, Provider, WaybillAttempt
from parcelhub.domain.status import Status, SubStatus
from parcelhub.events import (
    EVENT_TYPES,
    SOURCE,
    AttemptSummary,
    Event,
    PublishFailed,
    ShipmentException,
    ShipmentStalled,
    ShipmentStatusChanged,
    StallResolved,
    WaybillFailed,
    parse_event,
    to_entry,
)
from parcelhub.security.masking import ADDRESS_KEYS, NAME_KEYS, PHONE_KEYS
from tests.fakes.events import InMemoryPublisher
from tools.event_schemas import example, schema_for

pytestmark = pytest.mark.unit

EXPECTED = {
    "ShipmentAccepted",
    "WaybillCreated",
    "WaybillFailed",
    "WaybillCancelFailed",
    "CarrierFailover",
    "ShipmentStatusChanged",
    "ShipmentDelivered",
    "ShipmentException",
    "ShipmentStalled",
    "StallResolved",
    "CarrierCircuitOpened",
    "CarrierCircuitClosed",
    "EstimatedDeliveryChanged",
    "CarrierCapacityAlert",
    "TrackingRegistered",
    "DeliveryConfirmed",
    "ReturnCreated",
    "ReturnPickedUp",
    "ReturnReceived",
    "ReturnCancelled",
}
T = datetime(2024, 5, 3, 8, 0, tzinfo=CHINA_TZ)


def status_changed(**overrides: object) -> ShipmentStatusChanged:
    fields: dict[str, object] = {
        "shipment_id": "shp_1",
        "order_id": "A-1",
        "carrier": Carrier.ZTO,
        "provider": Provider.KDNIAO,
        "tracking_number": "73100012345678",
        "old_status": Status.PICKED_UP,
        "new_status": Status.IN_TRANSIT,
        "occurred_at": T,
        "description": "【杭州市】快件已到达 杭州中转部",
    } | overrides
    return ShipmentStatusChanged.model_validate(fields)


def test_the_event_catalogue_is_complete() -> None:
    # Given ARCHITECTURE §7's list / Then every event exists, once, with its class name as DetailType
    assert {cls.detail_type() for cls in EVENT_TYPES} == EXPECTED
    assert len(EVENT_TYPES) == len(EXPECTED)


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_every_event_round_trips_through_its_detail(cls: type[Event]) -> None:
    # Given the documented example / When it becomes a PutEvents entry and is read back by a consumer
    event = example(cls)
    entry = to_entry(event, bus_name="bus")
    back = parse_event(entry["DetailType"], entry["Detail"])
    # Then nothing is lost, and the entry names our source and the event's type
    assert back == event
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (SOURCE, cls.__name__, "bus")
    assert len(event.event_id) == 32


def test_event_id_is_deterministic_and_ignores_emission_time() -> None:
    # Given the same status change published twice (a retried Lambda), a minute apart
    first = status_changed(emitted_at=datetime(2024, 5, 3, 0, 0, tzinfo=UTC))
    second = status_changed(emitted_at=datetime(2024, 5, 3, 0, 1, tzinfo=UTC))
    # Then both carry the same event id; a different fact gets a different one
    assert first.event_id == second.event_id
    assert status_changed(new_status=Status.OUT_FOR_DELIVERY).event_id != first.event_id
    assert status_changed(shipment_id="shp_2").event_id != first.event_id


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)), st.integers(-12, 14))
def test_event_id_depends_on_the_instant_not_its_time_zone(moment: datetime, offset_hours: int) -> None:
    # Given the same instant written in UTC and in another offset
    utc = moment.replace(tzinfo=UTC)
    other = utc.astimezone(timezone(timedelta(hours=offset_hours)))
    # Then the events have the same id
    assert status_changed(occurred_at=utc).event_id == status_changed(occurred_at=other).event_id


def test_stall_episode_ids_dedupe_stalled_and_resolved() -> None:
    # Given two sweeps that both see the same stall episode
    base = example(ShipmentStalled)
    again = base.model_copy(update={"stalled_for_seconds": base.stalled_for_seconds + 900, "event_id": ""})
    rebuilt = ShipmentStalled.model_validate(again.model_dump(exclude={"event_id", "alert"}))
    # Then they carry the same event id (consumers and the ops topic can drop the second)
    assert rebuilt.event_id == base.event_id
    # and a new episode is a new event
    other = ShipmentStalled.model_validate(base.model_dump(exclude={"event_id", "alert"}) | {"episode_id": "ep-2"})
    assert other.event_id != base.event_id
    resolved = example(StallResolved)
    assert resolved.episode_id == base.episode_id


def test_a_retry_that_fails_again_is_a_new_waybill_failed_event() -> None:
    # Given a WaybillFailed, then the same shipment failing again after /retry with one more attempt
    first = example(WaybillFailed)
    extra = AttemptSummary(provider=Provider.SF, carrier=Carrier.SF, outcome="unavailable", at=T)
    second = WaybillFailed.model_validate(
        first.model_dump(exclude={"event_id", "alert"}) | {"attempts": [*first.attempts, extra]}
    )
    # Then the ids differ (both must alert)
    assert second.event_id != first.event_id


def test_times_must_be_time_zone_aware() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        status_changed(occurred_at=datetime(2024, 5, 3, 8, 0))


def test_unknown_fields_are_rejected() -> None:
    # Given a producer trying to slip personal data into an event / Then the model refuses it
    with pytest.raises(ValidationError, match="receiver_phone"):
        status_changed(receiver_phone="13800000000")


def test_exception_event_only_accepts_exception_statuses() -> None:
    with pytest.raises(ValidationError):
        ShipmentException.model_validate(
            example(ShipmentException).model_dump(exclude={"event_id"}) | {"new_status": "IN_TRANSIT"}
        )


# ---------------------------------------------------------------------------------- personal data


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_no_event_schema_has_a_personal_data_field(cls: type[Event]) -> None:
    # Given the generated schema (properties of the event and its nested objects)
    schema = schema_for(cls)
    names: set[str] = set(schema["properties"])
    for definition in schema.get("$defs", {}).values():
        names |= set(definition.get("properties", {}))
    normalised = {n.replace("_", "").lower() for n in names}
    # Then no field is a name, phone or address field
    assert not normalised & (PHONE_KEYS | NAME_KEYS | ADDRESS_KEYS | {"name", "receiver", "sender"})


def test_carrier_texts_in_events_are_redacted() -> None:
    # Given carrier texts that name the signer and give a courier's and a receiver's mobile
    changed = status_changed(description="【深圳市】已签收，签收人：欧阳娜娜，有问题请联系快递员 13912345678")
    attempt = WaybillAttempt(
        provider=Provider.SF,
        carrier=Carrier.SF,
        outcome="rejected",
        error_code="8019",
        error_message="收件人手机号 18688806057 格式错误",
        at=T,
    )
    failed = WaybillFailed(shipment_id="shp_1", order_id="A-1", attempts=[AttemptSummary.of(attempt)], failed_at=T)
    stalled = ShipmentStalled.model_validate(
        example(ShipmentStalled).model_dump(exclude={"event_id", "alert"})
        | {"last_event_text": "派件员 13800000000 派送中，签收人：李四"}
    )
    # When serialised as the EventBridge detail
    details = [e.detail_json() for e in (changed, failed, stalled)]
    # Then no mobile number or signer name survives, in the fields or in the alert text
    for detail in details:
        for secret in ("13912345678", "18688806057", "13800000000", "欧阳娜娜", "李四"):
            assert secret not in detail
    assert "139****5678" in details[0]
    assert "186****6057" in json.loads(details[1])["alert"]["message"]


# ------------------------------------------------------------------------------------ publishers


def test_in_memory_publisher_keeps_events_and_their_entries() -> None:
    # Given the in-memory publisher used by logic tests
    publisher = InMemoryPublisher()
    events = [status_changed(), example(ShipmentStalled), example(StallResolved)]
    # When events are published
    publisher.publish(events)
    # Then they are kept in order, as events and as the PutEvents entries they would be
    assert publisher.events == events
    assert [e["DetailType"] for e in publisher.entries] == [
        "ShipmentStatusChanged",
        "ShipmentStalled",
        "StallResolved",
    ]
    assert publisher.of_type(ShipmentStalled) == [events[1]]


def test_in_memory_publisher_refuses_oversized_events() -> None:
    # Given a WaybillFailed whose attempts make the detail larger than EventBridge's 256 KiB
    long_message = "服务暂不可用" * 80
    attempts = [
        AttemptSummary(
            provider=Provider.SF, carrier=Carrier.SF, outcome="unavailable", error_message=long_message, at=T
        )
    ] * 400
    huge = WaybillFailed(shipment_id="shp_1", order_id="A-1", attempts=attempts, failed_at=T)
    publisher = InMemoryPublisher()
    # When published / Then it fails like EventBridge would, and nothing is recorded
    with pytest.raises(PublishFailed) as caught:
        publisher.publish([huge])
    assert caught.value.failed[0].code == "EntryTooLarge"
    assert publisher.events == []


def test_importing_the_modules_builds_nothing() -> None:
    # Given a fresh interpreter / When the events and security modules are imported
    code = (
        "import sys, parcelhub.events, parcelhub.adapters.eventbridge, parcelhub.adapters.kms,"
        " parcelhub.adapters.aws as a, parcelhub.security;"
        "assert 'boto3' not in sys.modules, 'boto3 imported';"
        "assert a.client.cache_info().currsize == 0"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env={})
    # Then no AWS client (not even boto3) was loaded and no environment was needed
    assert result.returncode == 0, result.stderr


def test_sub_status_defaults_to_none() -> None:
    assert status_changed().sub_status is SubStatus.NONE
