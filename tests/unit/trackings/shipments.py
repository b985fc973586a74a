"""Real-shaped shipments for the tracked-number and proof-of-delivery tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from parcelhub.domain.models import CHINA_TZ, Carrier, Item, Money, Parcel, Provider, Shipment, Waybill
from parcelhub.domain.status import Status

CREATED = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)


def delivered_shipment(**changes: Any) -> Shipment:
    """An order's shipment ZTO delivered (through Kdniao), as the tracking fold wrote it."""
    waybill = Waybill(provider=Provider.KDNIAO, carrier=Carrier.ZTO, tracking_number="73100000000001")
    fields: dict[str, Any] = {
        "shipment_id": "shp_018f2a1b3c4d5e6f7a8b9c",
        "order_id": "DTC-20240501-0001",
        "status": Status.DELIVERED,
        "declared_value": Money(amount=Decimal("199.00")),
        "parcels": [Parcel(weight_kg=1.2)],
        "items": [Item(name="护肤品", quantity=1)],
        "receiver_masked": {"name": "李*", "phone": "186****6057"},
        "origin_province": "浙江省",
        "origin_city": "杭州市",
        "destination_province": "上海市",
        "destination_city": "上海市",
        "carrier": Carrier.ZTO,
        "provider": Provider.KDNIAO,
        "tracking_number": waybill.tracking_number,
        "waybill": waybill,
        "status_key": "9#20240502T102011#abc",
        "last_event_at": datetime(2024, 5, 2, 18, 20, 11, tzinfo=CHINA_TZ),
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    return Shipment(**(fields | changes))
