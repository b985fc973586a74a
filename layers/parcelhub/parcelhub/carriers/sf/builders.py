"""SF Fengqiao request builders: PURE functions from our models to the exact forms we POST (REFERENCE §2).

* ``build_create_request`` (EXP_RECE_CREATE_ORDER), ``build_cancel_request`` (EXP_RECE_UPDATE_ORDER,
  ``dealType`` cancel), ``build_fetch_request`` (EXP_RECE_SEARCH_ORDER_RESP),
  ``build_query_request`` (EXP_RECE_SEARCH_ROUTES);
* no ``build_subscribe_request``: SF pushes the routes of every order created through Fengqiao by
  itself (REFERENCE §2.6), so subscribing sends nothing.

Every call is one form to ``/std/service`` (§2.1): the ``msgData`` JSON (compact, UTF-8 kept: the
digest is computed over these very bytes) signed with the call's ``Stamp`` (timestamp + request id,
which the plugin supplies: no clock here). Wire facts marked [U] in REFERENCE are settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from parcelhub.carriers.base import CarrierRejected, PickupOrder, TrackingQuery, WaybillOrder
from parcelhub.carriers.sf.codes import PROVIDER
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.carriers.sf.signing import msg_digest
from parcelhub.carriers.wire import compact_json
from parcelhub.domain.models import CHINA_TZ, Party, PickupBooking, Waybill


@dataclass(frozen=True, slots=True)
class Stamp:
    """What makes one call unique: its ``timestamp`` (signed) and ``requestID``."""

    timestamp: str
    request_id: str


def timestamp_for(settings: SfSettings, epoch_seconds: float) -> str:
    """The ``timestamp`` field: milliseconds by default (SF Java demos), seconds if configured."""
    return str(int(epoch_seconds * 1000)) if settings.timestamp_unit == "ms" else str(int(epoch_seconds))


def envelope(service_code: str, payload: dict[str, Any], stamp: Stamp, settings: SfSettings) -> dict[str, str]:
    """The form fields of a call (§2.1), in the documented order; values raw (encoded once on the wire)."""
    msg_data = compact_json(payload)
    return {
        "partnerID": settings.required("partner_id"),
        "requestID": stamp.request_id,
        "serviceCode": service_code,
        "timestamp": stamp.timestamp,
        "msgDigest": msg_digest(msg_data, stamp.timestamp, settings.required("checkword")),
        "msgData": msg_data,
    }


def phone_last4(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[-4:]


def _contact(settings: SfSettings, contact_type: int, party: Party) -> dict[str, Any]:
    contact: dict[str, Any] = {"contactType": contact_type}
    if party.company:
        contact["company"] = party.company
    contact |= {
        "contact": party.name,
        "tel": party.phone,
        "mobile": party.phone,
        "country": settings.country,
        "province": party.province,
        "city": party.city,
        "county": party.district,
        "address": party.address,
    }
    if party.postcode:
        contact["postCode"] = party.postcode
    return contact


def build_create_request(order: WaybillOrder, settings: SfSettings, stamp: Stamp) -> dict[str, str]:
    """EXP_RECE_CREATE_ORDER (§2.5). ``orderId`` is our shipment id, so a retried create is caught by SF
    as 8016 (duplicate) and the workflow fetches the existing order."""
    request = order.request
    cargo: list[dict[str, Any]] = []
    for item in request.items:
        line: dict[str, Any] = {"name": item.name, "count": item.quantity, "unit": settings.cargo_unit}
        if item.unit_price is not None:
            line["amount"] = float(item.unit_price.amount)
            line["currency"] = item.unit_price.currency
        cargo.append(line)
    payload = {
        "language": settings.language,
        "orderId": order.shipment_id,
        "monthlyCard": settings.required("monthly_card"),
        "expressTypeId": settings.express_type_ids[request.service],
        "payMethod": settings.pay_method,
        "parcelQty": len(request.parcels),
        "totalWeight": request.total_weight_kg,
        "isReturnRoutelabel": settings.is_return_routelabel,
        "isOneselfPickup": 0,
        "cargoDetails": cargo,
        "contactInfoList": [_contact(settings, 1, order.sender), _contact(settings, 2, order.receiver)],
    }
    return envelope(settings.service_codes.create_order, payload, stamp, settings)


def build_cancel_request(waybill: Waybill, settings: SfSettings, stamp: Stamp) -> dict[str, str]:
    """EXP_RECE_UPDATE_ORDER with ``dealType`` = cancel (§2.4)."""
    if not waybill.provider_order_id:
        raise CarrierRejected(PROVIDER, "cannot cancel: the waybill has no SF orderId", "NO_ORDER_ID")
    payload = {
        "language": settings.language,
        "orderId": waybill.provider_order_id,
        "dealType": settings.cancel_deal_type,
        "waybillNoInfoList": [{"waybillType": 1, "waybillNo": waybill.tracking_number}],
    }
    return envelope(settings.service_codes.update_order, payload, stamp, settings)


def build_fetch_request(order_id: str, settings: SfSettings, stamp: Stamp) -> dict[str, str]:
    """EXP_RECE_SEARCH_ORDER_RESP (§2.4, [C]): the order result by our orderId."""
    payload = {"language": settings.language, "orderId": order_id, "searchType": settings.order_search_type}
    return envelope(settings.service_codes.search_order, payload, stamp, settings)


def build_query_request(query: TrackingQuery, settings: SfSettings, stamp: Stamp) -> dict[str, str]:
    """EXP_RECE_SEARCH_ROUTES (§2.5); ``checkPhoneNo`` only when we know the phone."""
    payload: dict[str, Any] = {
        "language": settings.route_language,
        "trackingType": settings.route_tracking_type,
        "trackingNumber": [query.tracking_number],
        "methodType": settings.route_method_type,
    }
    if query.phone_last4:
        payload["checkPhoneNo"] = query.phone_last4
    return envelope(settings.service_codes.search_routes, payload, stamp, settings)


# ------------------------------------------------------------------------------------------ door pickup


def build_pickup_request(order: PickupOrder, settings: SfSettings, stamp: Stamp) -> dict[str, str]:
    """A door pickup for a return: the create-order body (§2.5) with the customer as the sender
    (``contactType`` 1, where the courier collects) and the warehouse as the receiver, plus the window's
    start in ``pickup_start_field`` (China time). ``reverse_order`` sends it to the reverse-order service
    [U]; ``docall`` to EXP_RECE_CREATE_ORDER with ``isDocall`` 1 (通知收派员上门 [C])."""
    cargo = [{"name": item.name, "count": item.quantity, "unit": settings.cargo_unit} for item in order.items]
    payload: dict[str, Any] = {
        "language": settings.language,
        "orderId": order.return_id,
        "monthlyCard": settings.required("monthly_card"),
        "expressTypeId": settings.pickup_express_type_id,
        "payMethod": settings.pickup_pay_method,
        "parcelQty": max(1, len(order.parcels)),
        "totalWeight": order.total_weight_kg,
        "isReturnRoutelabel": 0,
        "cargoDetails": cargo,
        "contactInfoList": [_contact(settings, 1, order.pickup), _contact(settings, 2, order.receiver)],
        settings.pickup_start_field: _china(order.window.start),
    }
    if settings.pickup_end_field:
        payload[settings.pickup_end_field] = _china(order.window.end)
    if order.remark:
        payload["remark"] = order.remark
    if settings.pickup_method == "docall":
        payload["isDocall"] = 1
        return envelope(settings.service_codes.create_order, payload, stamp, settings)
    return envelope(settings.service_codes.create_reverse_order, payload, stamp, settings)


def build_pickup_cancel_request(booking: PickupBooking, settings: SfSettings, stamp: Stamp) -> dict[str, str]:
    """Cancel a door pickup: the reverse-order cancel [U] (``orderId``), or for ``docall`` the ordinary
    cancel (EXP_RECE_UPDATE_ORDER ``dealType`` cancel)."""
    payload: dict[str, Any] = {"language": settings.language, "orderId": booking.pickup_order_id}
    if settings.pickup_method == "docall":
        payload["dealType"] = settings.cancel_deal_type
        if booking.tracking_number:
            payload["waybillNoInfoList"] = [{"waybillType": 1, "waybillNo": booking.tracking_number}]
        return envelope(settings.service_codes.update_order, payload, stamp, settings)
    return envelope(settings.service_codes.cancel_reverse_order, payload, stamp, settings)


def _china(moment: Any) -> str:
    return str(moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S"))
