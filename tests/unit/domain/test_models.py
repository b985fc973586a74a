"""The domain model contracts the store and the status fold rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from parcelhub.domain.models import (
    CHINA_TZ,
    Carrier,
    Item,
    Money,
    Parcel,
    Party,
    Provider,
    ShipmentRequest,
    TrackingEvent,
    parse_china_time,
)
from parcelhub.domain.status import PHASE, RANK, Status, precedence_key

pytestmark = pytest.mark.unit


def receiver() -> Party:
    return Party(
        name="张三",
        phone="13800001111",
        province="上海市",
        city="上海市",
        district="浦东新区",
        address="张江路 88 号 3 幢 1202 室",
        postcode="201203",
    )


def request(**overrides: object) -> ShipmentRequest:
    fields: dict[str, object] = {
        "order_id": "SO-20251111-000123",
        "receiver": receiver(),
        "parcels": [Parcel(weight_kg=1.25)],
        "items": [Item(name="羊绒围巾", quantity=1, unit_price=Money(amount=Decimal("399.00")))],
        "declared_value": Money(amount=Decimal("399.00")),
    }
    return ShipmentRequest.model_validate(fields | overrides)


def scan(at: datetime, text: str = "快件已到达【上海转运中心】", code: str = "204") -> TrackingEvent:
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number="78912345678901",
        occurred_at=at,
        status=Status.IN_TRANSIT,
        raw_code=code,
        raw_text=text,
    )


def test_the_same_scan_pushed_twice_hashes_the_same_whatever_the_time_zone_spelling():
    # Given one scan, pushed once in China local time and once in UTC, with trailing whitespace
    local = scan(datetime(2025, 11, 11, 20, 15, 3, tzinfo=CHINA_TZ))
    utc = scan(datetime(2025, 11, 11, 12, 15, 3, tzinfo=UTC), text="快件已到达【上海转运中心】  ")
    # Then both carry the same content hash (the dedupe key)
    assert local.content_hash == utc.content_hash
    assert len(local.content_hash) == 20


def test_a_different_scan_hashes_differently():
    at = datetime(2025, 11, 11, 20, 15, tzinfo=CHINA_TZ)
    assert scan(at).content_hash != scan(at + timedelta(seconds=1)).content_hash
    assert scan(at).content_hash != scan(at, code="2").content_hash


def test_an_event_without_a_time_zone_is_refused():
    with pytest.raises(ValidationError, match="timezone"):
        scan(datetime(2025, 11, 11, 20, 15))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-11 20:15:03", datetime(2025, 11, 11, 20, 15, 3, tzinfo=CHINA_TZ)),
        ("2025-11-11 20-15-03", datetime(2025, 11, 11, 20, 15, 3, tzinfo=CHINA_TZ)),
        ("2025-11-11 20:15", datetime(2025, 11, 11, 20, 15, tzinfo=CHINA_TZ)),
        ("2025-11-11T12:15:03+00:00", datetime(2025, 11, 11, 20, 15, 3, tzinfo=CHINA_TZ)),
    ],
)
def test_carrier_times_are_read_as_shanghai_time(text: str, expected: datetime):
    assert parse_china_time(text) == expected


def test_an_unreadable_carrier_time_is_an_error():
    with pytest.raises(ValueError, match="unreadable"):
        parse_china_time("11/11/2025")


def test_the_request_fingerprint_identifies_the_body():
    # Given the same order sent twice, and once with a different weight
    # Then the fingerprint is stable for the same body and changes with the body
    assert request().fingerprint() == request().fingerprint()
    assert request().fingerprint() != request(parcels=[Parcel(weight_kg=2.5)]).fingerprint()


def test_carrier_and_provider_are_different_vocabularies():
    # SF is both a carrier code and a provider: the two enums keep them apart
    assert Carrier.SF.value == "SF"
    assert Provider.SF.value == "sf"
    assert Carrier("ZTO") is Carrier.ZTO
    with pytest.raises(ValueError, match="kdniao"):
        Carrier("kdniao")


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(CHINA_TZ))
hashes = st.text(alphabet="0123456789abcdef", min_size=20, max_size=20)


events = st.tuples(st.sampled_from(list(Status)), moments, hashes)


@given(events, events)
def test_the_precedence_key_string_sorts_like_the_intended_order(
    first: tuple[Status, datetime, str], second: tuple[Status, datetime, str]
):
    # Given two events; DynamoDB compares the key as a string (``status_key < :key``)
    (s1, t1, h1), (s2, t2, h2) = first, second
    k1, k2 = precedence_key(s1, t1, h1), precedence_key(s2, t2, h2)
    # Then string order is (phase, time, rank, hash) order
    intended1, intended2 = (PHASE[s1], t1, RANK[s1], h1), (PHASE[s2], t2, RANK[s2], h2)
    assert (k1 < k2) == (intended1 < intended2)
    assert (k1 == k2) == (intended1 == intended2)
