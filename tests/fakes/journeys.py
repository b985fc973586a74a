"""Shipments in every canonical status, with real-shaped carrier scans, for the tracking-page tests.

``seed(store, status, ...)`` stores a shipment the way the system would have brought it to ``status``:
created (with the lookup digest of the receiver phone's last digits), waybill recorded, tracking claimed,
scans appended and folded. Scan texts carry what carriers really write (a courier's mobile, the signer's
name) so tests can check the page redacts them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from parcelhub.domain.models import (
    Carrier,
    DeliveryWindow,
    EventSource,
    Item,
    Money,
    Parcel,
    Provider,
    Shipment,
    TrackingEvent,
    Waybill,
)
from parcelhub.domain.status import Status, SubStatus, fold
from parcelhub.ports.store import ShipmentStore, TrackingClaim
from parcelhub.security.links import TrackingLinks

#: the receiver's phone (the lookup form's digits are its last four: 6057)
RECEIVER_PHONE = "18688806057"
COURIER_MOBILE = "13987654321"
SIGNER = "张三丰"


@dataclass(frozen=True)
class Scan:
    status: Status
    sub_status: SubStatus
    text: str
    location: str


PICKED = Scan(Status.PICKED_UP, SubStatus.NONE, "【杭州市】余杭仓前网点 已揽收", "杭州市")
HUB = Scan(Status.IN_TRANSIT, SubStatus.AT_TRANSIT_HUB, "快件已到达【杭州转运中心】", "杭州市")
LEFT = Scan(Status.IN_TRANSIT, SubStatus.NONE, "快件离开【杭州转运中心】，发往【广州转运中心】", "杭州市")
ARRIVED = Scan(Status.ARRIVED_AT_DESTINATION_CITY, SubStatus.NONE, "快件已到达【广州转运中心】", "广州市")
OUT = Scan(
    Status.OUT_FOR_DELIVERY,
    SubStatus.NONE,
    f"【广州市白云区】派件员：王师傅 电话：{COURIER_MOBILE} 正在为您派件",
    "广州市白云区",
)
LOCKER = Scan(
    Status.AVAILABLE_FOR_PICKUP, SubStatus.NONE, "快件已送达【白云区机场路菜鸟驿站】，请凭取件码取件", "广州市白云区"
)
FAILED = Scan(Status.DELIVERY_FAILED, SubStatus.RECIPIENT_UNREACHABLE, "派送不成功：收件人电话无人接听", "广州市白云区")
HELD = Scan(Status.EXCEPTION, SubStatus.HELD, "快件在【广州转运中心】滞留，我们将尽快处理", "广州市")
SIGNED = Scan(
    Status.DELIVERED,
    SubStatus.SIGNED_BY_PROXY,
    f"您的快件已签收，签收人：{SIGNER}。如有疑问请电联快递员：{COURIER_MOBILE}",
    "广州市白云区",
)
RETURNING = Scan(Status.RETURNING, SubStatus.REFUSED, "收件人拒收，快件退回中", "广州市")
RETURNED = Scan(Status.RETURNED, SubStatus.NONE, "退回件已由寄件方签收", "杭州市")

#: the scans that bring a shipment to each status (carrier-driven statuses only)
JOURNEYS: dict[Status, list[Scan]] = {
    Status.PICKED_UP: [PICKED],
    Status.IN_TRANSIT: [PICKED, HUB, LEFT],
    Status.ARRIVED_AT_DESTINATION_CITY: [PICKED, HUB, LEFT, ARRIVED],
    Status.OUT_FOR_DELIVERY: [PICKED, HUB, LEFT, ARRIVED, OUT],
    Status.AVAILABLE_FOR_PICKUP: [PICKED, HUB, LEFT, ARRIVED, OUT, LOCKER],
    Status.DELIVERY_FAILED: [PICKED, HUB, LEFT, ARRIVED, OUT, FAILED],
    Status.EXCEPTION: [PICKED, HUB, LEFT, HELD],
    Status.DELIVERED: [PICKED, HUB, LEFT, ARRIVED, OUT, SIGNED],
    Status.RETURNING: [PICKED, HUB, LEFT, ARRIVED, OUT, RETURNING],
    Status.RETURNED: [PICKED, HUB, LEFT, ARRIVED, OUT, RETURNING, RETURNED],
}


def a_shipment(shipment_id: str, order_id: str, *, now: datetime, links: TrackingLinks | None) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        order_id=order_id,
        declared_value=Money(amount=Decimal("199.00")),
        parcels=[Parcel(weight_kg=1.2)],
        items=[Item(name="护肤品", quantity=1)],
        receiver_masked={
            "name": "李*",
            "phone": "186****6057",
            "province": "广东省",
            "city": "广州市",
            "district": "白云区",
            "address": "机场***",
        },
        origin_province="浙江省",
        origin_city="杭州市",
        destination_province="广东省",
        destination_city="广州市",
        pii={"receiver": "sealed"},
        request_fingerprint="0" * 64,
        lookup_digest=links.lookup_digest(shipment_id, RECEIVER_PHONE[-4:]) if links else None,
        estimated_delivery=DeliveryWindow(earliest=now + timedelta(days=1), latest=now + timedelta(days=1, hours=9)),
        created_at=now - timedelta(days=2),
        updated_at=now - timedelta(days=2),
    )


def seed(
    store: ShipmentStore,
    status: Status,
    shipment_id: str,
    order_id: str,
    *,
    now: datetime,
    links: TrackingLinks | None,
    carrier: Carrier = Carrier.ZTO,
) -> Shipment:
    """Store a shipment brought to ``status`` (see the module docstring); returns it as stored."""
    store.create(a_shipment(shipment_id, order_id, now=now, links=links))
    if status is Status.PENDING:
        return store.get(shipment_id)
    if status in (Status.WAYBILL_FAILED, Status.CANCELLED):
        return store.set_status(shipment_id, status, expected={Status.PENDING}, now=now - timedelta(days=2))
    number = f"7310{zlib.crc32(shipment_id.encode()) % 10**10:010d}"
    provider = Provider.SF if carrier is Carrier.SF else Provider.KDNIAO
    waybill = Waybill(provider=provider, carrier=carrier, tracking_number=number, provider_order_id=shipment_id)
    shipment = store.save_waybill(shipment_id, waybill, [], now - timedelta(days=2))
    if status is Status.WAYBILL_CREATED:
        return shipment
    store.claim_tracking(carrier.value, number, shipment_id, order_id)
    claim = TrackingClaim(shipment_id=shipment_id, order_id=order_id, carrier=carrier.value, tracking_number=number)
    scans = JOURNEYS[status]
    events = [
        TrackingEvent(
            carrier=carrier,
            provider=provider,
            tracking_number=number,
            occurred_at=now - timedelta(hours=3 * (len(scans) - i)),
            status=scan.status,
            sub_status=scan.sub_status,
            raw_code=f"C{i}",
            raw_text=scan.text,
            location=scan.location,
            source=EventSource.PUSH,
        )
        for i, scan in enumerate(scans)
    ]
    store.append_events(claim, events)
    state = fold(events)
    assert state is not None
    store.apply_tracking_state(shipment_id, state, last_event_text=events[-1].raw_text, stall=None, now=now)
    return store.get(shipment_id)
