"""Proof of delivery (parcelhub.app.proof): the signing scan -> who took the parcel, how, where; masked.

Given real-shaped delivered scans of the providers (texts as the carriers write them, after the ingest's
redaction), when the proof is read, then its sign type, station, courier and signer are the scan's, with
names and phones masked; it depends on the signing scan alone, so any order of pushes gives the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcelhub.app.outbox import derive
from parcelhub.app.proof import proof_of_delivery
from parcelhub.config import HubConfig
from parcelhub.domain.models import CHINA_TZ, Carrier, DeliveryReceipt, Provider, SignType, TrackingEvent
from parcelhub.domain.status import Status, SubStatus, fold
from parcelhub.events import DeliveryConfirmed
from parcelhub.ports.changes import Change, ShipmentImage
from tests.unit.trackings.shipments import delivered_shipment

pytestmark = pytest.mark.unit

AT = datetime(2024, 5, 2, 18, 20, 11, tzinfo=CHINA_TZ)


def scan(text: str, sub: SubStatus = SubStatus.NONE, code: str = "3", *, status: Status = Status.DELIVERED,
         hours: int = 0) -> TrackingEvent:  # fmt: skip
    return TrackingEvent(
        carrier=Carrier.ZTO,
        provider=Provider.KDNIAO,
        tracking_number="73100000000001",
        occurred_at=AT - timedelta(hours=hours),
        status=status,
        sub_status=sub,
        raw_code=code,
        raw_text=text,
    )


@pytest.mark.parametrize(
    ("text", "sub", "kind", "station", "courier", "signer"),
    [
        # SF 80: the signer and the courier in the text (the ingest masked the signer and the phone)
        ("您的快件已签收，签收人是【张*】，如有疑问请电联快递员【王五，电话：138****5678】，感谢您使用顺丰",
         SubStatus.NONE, SignType.UNKNOWN, None, "王* 138****5678", "张*"),
        # Kdniao 304 代收签收: a proxy, the role kept as it is (not a person's name)
        ("【上海市】已签收，签收人：门卫，如有疑问请联系派件员李四（139****0000）", SubStatus.SIGNED_BY_PROXY,
         SignType.PROXY, None, "李* 139****0000", "门卫"),
        # Kdniao 311 / Kuaidi100 304: a station, named in the text
        ("【杭州市】您的快件已由【菜鸟驿站(阳光小区店)】代收，请及时取件", SubStatus.SIGNED_AT_LOCKER,
         SignType.STATION, "菜鸟驿站(阳光小区店)", None, None),
        # the same code for a locker
        ("【杭州市】快件已被 丰巢智能柜 签收，取件码已发送", SubStatus.SIGNED_AT_LOCKER, SignType.LOCKER,
         "丰巢智能柜", None, None),
        # Kuaidi100 301 本人签收
        ("【上海市】已签收，本人签收，感谢使用中通快递", SubStatus.SIGNED_BY_RECIPIENT, SignType.IN_PERSON,
         None, None, None),
    ],
)  # fmt: skip
def test_the_signing_scan_gives_the_proof_masked(  # noqa: PLR0917 - one argument per table column
    text: str, sub: SubStatus, kind: SignType, station: str | None, courier: str | None, signer: str | None
) -> None:
    # When
    proof = proof_of_delivery(scan(text, sub))
    # Then
    assert proof is not None
    assert (proof.sign_type, proof.station, proof.courier, proof.signer) == (kind, station, courier, signer)
    assert proof.signed_at == AT
    assert proof.provider is Provider.KDNIAO


def test_an_unmasked_courier_phone_and_name_are_masked() -> None:
    proof = proof_of_delivery(scan("快递员王小明（13812345678）已将快件投递，签收人：李雷"))
    assert proof is not None
    assert proof.courier == "王** 138****5678"
    assert proof.signer == "李*"
    assert "13812345678" not in proof.model_dump_json()


def test_a_scan_that_is_not_a_delivery_has_no_proof() -> None:
    assert proof_of_delivery(scan("【杭州市】快件已揽收", status=Status.PICKED_UP, code="1")) is None


TEXTS = st.sampled_from(
    [
        "【杭州市】快件已揽收",
        "【上海市】快件派送中，快递员李四（139****0000）",
        "【上海市】已签收，签收人：门卫",
        "【杭州市】您的快件已由【菜鸟驿站(阳光小区店)】代收",
    ]
)


@given(st.lists(st.tuples(TEXTS, st.integers(min_value=0, max_value=8)), min_size=1, max_size=8), st.randoms())
def test_the_proof_is_the_same_whatever_order_the_scans_arrive_in(scans: list[tuple[str, int]], rnd: object) -> None:
    # Given scans of one parcel, some of them deliveries
    events = [
        scan(text, status=Status.DELIVERED if "签收" in text or "代收" in text else Status.IN_TRANSIT, hours=h)
        for text, h in scans
    ]
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    # When the proof is taken from the fold's winner, in two orders
    first, second = fold(events), fold(shuffled)
    assert first is not None
    assert second is not None

    def winner(state: object, pool: list[TrackingEvent]) -> TrackingEvent:
        return next(e for e in pool if e.content_hash == state.event_hash)  # type: ignore[attr-defined]

    # Then it is the same proof
    assert proof_of_delivery(winner(first, events)) == proof_of_delivery(winner(second, shuffled))


def _image(**changes: object) -> ShipmentImage:
    return ShipmentImage(shipment=delivered_shipment(**changes), status_source="tracking")


def test_delivery_confirmed_is_announced_once_for_the_proof_and_once_for_the_receipt() -> None:
    # Given a shipment delivered without a proof, then with it, then with its receipt copied
    proof = proof_of_delivery(scan("【杭州市】您的快件已由【菜鸟驿站(阳光小区店)】代收", SubStatus.SIGNED_AT_LOCKER))
    before, proved = _image(), _image(proof=proof)
    receipt = DeliveryReceipt(state="copied", ref="receipts/x/y.jpg", provider=Provider.KUAIDI100,
                              at=datetime(2024, 5, 2, 11, tzinfo=UTC))  # fmt: skip
    copied = _image(proof=proof, receipt=receipt)
    config = HubConfig()

    def confirmed(old: ShipmentImage | None, new: ShipmentImage) -> list[DeliveryConfirmed]:
        change = Change(record_id="1", old=old, new=new)
        return [e for e in derive(change, config) if isinstance(e, DeliveryConfirmed)]

    # When / Then: the proof's write announces it, a write that changes neither does not, the receipt's does
    first = confirmed(before, proved)
    assert [(e.sign_type, e.station, e.receipt) for e in first] == [(SignType.STATION, "菜鸟驿站(阳光小区店)", "none")]
    assert confirmed(proved, proved) == []
    second = confirmed(proved, copied)
    assert [e.receipt for e in second] == ["copied"]
    assert first[0].event_id != second[0].event_id
    # and no personal data: the masked courier or signer never leaves in the event
    assert "signer" not in second[0].model_dump()
    assert "courier" not in second[0].model_dump()


DELIVERY_SCANS = [
    scan("【杭州市】快件已揽收", status=Status.PICKED_UP, code="1", hours=30),
    scan("【上海市】快件派送中，快递员李四（139****0000）", status=Status.OUT_FOR_DELIVERY, code="202", hours=5),
    scan("【上海市】您的快件已由【菜鸟驿站(阳光小区店)】代收", SubStatus.SIGNED_AT_LOCKER, "311", hours=2),
    scan("【上海市】已签收，签收人：门卫", SubStatus.SIGNED_BY_PROXY, "304", hours=1),
]


@given(st.permutations(DELIVERY_SCANS), st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4),
       st.booleans())  # fmt: skip
def test_the_stored_proof_is_the_same_whatever_batches_and_order_the_scans_come_in(
    ordered: list[TrackingEvent], cuts: list[int], duplicate: bool
) -> None:
    # Given the scans of one parcel split into batches in any order, some pushed twice
    from parcelhub.app.tracking_state import TrackingWriter
    from parcelhub.ports.store import ClaimFacts
    from tests.fakes.store import InMemoryShipmentStore

    store = InMemoryShipmentStore()
    shipment = delivered_shipment(status=Status.WAYBILL_CREATED, status_key=None, last_event_at=None)
    store.create(shipment)
    store.claim_tracking("ZTO", "73100000000001", shipment.shipment_id, shipment.order_id,
                         facts=ClaimFacts.of(shipment))  # fmt: skip
    claim = store.find_by_tracking("ZTO", "73100000000001")
    assert claim is not None
    writer = TrackingWriter(store, HubConfig(), metric=lambda *a, **k: None, log=lambda: None)
    batches, start = [], 0
    for size in cuts:
        batches.append(ordered[start : start + size])
        start += size
    batches.append(ordered[start:])
    if duplicate:
        batches.append(ordered[:1])
    # When each batch is applied as the ingest applies it
    for batch in (b for b in batches if b):
        writer.apply(claim, list(batch), datetime(2024, 5, 3, tzinfo=UTC), force=True)
    # Then the proof is the one the winning delivered scan gives: the latest signing, by the guard
    proof = store.get(shipment.shipment_id).proof
    assert proof is not None
    assert (proof.sign_type, proof.signer, proof.raw_code) == (SignType.PROXY, "门卫", "304")
