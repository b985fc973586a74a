"""Kdniao request builders: PURE functions from our models to the exact forms we POST (REFERENCE §1).

* ``build_create_request`` (1007 e-waybill), ``build_cancel_request`` (1147), ``build_balance_request`` (1127),
  ``build_subscribe_request`` (8008), ``build_query_request`` (8001 / 1002);
* no ``build_fetch_request``: Kdniao has no "fetch an existing e-waybill" call here (a duplicate order
  code is answered with the order itself, see ``parsers.parse_create_response``).

Each builder returns the signed form (§1.1): ``RequestData`` is compact JSON with ``ensure_ascii=False``
like the official demos, and every value is raw: the HTTP layer URL-encodes each exactly once (§0).
"""

from __future__ import annotations

from typing import Any

from parcelhub.carriers.base import PickupOrder, TrackingQuery, TrackingSubscription, WaybillOrder
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kdniao.signing import data_sign
from parcelhub.carriers.wire import compact_json
from parcelhub.domain.models import CHINA_TZ, Carrier, Party, PickupBooking, Waybill


def envelope(request_data: str, request_type: str, settings: KdniaoSettings) -> dict[str, str]:
    """The form fields of a call, values raw (the HTTP layer encodes each exactly once)."""
    return {
        "RequestData": request_data,
        "EBusinessID": settings.ebusiness_id,
        "RequestType": request_type,
        "DataSign": data_sign(request_data, settings.key()),
        "DataType": settings.data_type,
    }


def _party(party: Party) -> dict[str, Any]:
    phone = "".join(ch for ch in party.phone if ch.isdigit())
    out: dict[str, Any] = {}
    if party.company:
        out["Company"] = party.company
    out["Name"] = party.name
    if len(phone) == 11 and phone.startswith("1"):
        out["Mobile"] = phone
    else:
        out["Tel"] = party.phone
    if party.postcode:
        out["PostCode"] = party.postcode
    out["ProvinceName"] = party.province
    out["CityName"] = party.city
    out["ExpAreaName"] = party.district
    out["Address"] = party.address
    return out


def _account_fields(carrier: Carrier, settings: KdniaoSettings, *, for_cancel: bool = False) -> dict[str, str]:
    account = settings.accounts.get(carrier)
    if account is None:
        return {}
    out: dict[str, str] = {}
    if account.customer_name:
        out["CustomerName"] = account.customer_name
    if account.customer_pwd is not None:
        out["CustomerPwd"] = account.customer_pwd.get_secret_value()
    if not for_cancel:
        if account.month_code:
            out["MonthCode"] = account.month_code
        if account.send_site:
            out["SendSite"] = account.send_site
    return out


def build_create_request(order: WaybillOrder, settings: KdniaoSettings) -> dict[str, str]:
    """1007. ``OrderCode`` is our shipment id, so a retried create is recognisable."""
    request = order.request
    payload: dict[str, Any] = {"OrderCode": order.shipment_id, "ShipperCode": order.carrier.value}
    payload |= _account_fields(order.carrier, settings)
    payload |= {
        "PayType": settings.pay_type,
        "ExpType": settings.exp_type,
        "Sender": _party(order.sender),
        "Receiver": _party(order.receiver),
        "Commodity": [
            {"GoodsName": item.name, "Goodsquantity": item.quantity}
            | ({"GoodsPrice": float(item.unit_price.amount)} if item.unit_price else {})
            for item in request.items
        ],
        "Weight": request.total_weight_kg,
        "Quantity": len(request.parcels),
    }
    volumes = [p.dimensions for p in request.parcels if p.dimensions is not None]
    if volumes:
        cubic_m = sum(d.length_cm * d.width_cm * d.height_cm for d in volumes) / 1_000_000
        payload["Volume"] = round(cubic_m, 4)
    payload["Remark"] = request.order_id
    payload["IsReturnPrintTemplate"] = 1 if settings.return_print_template else 0
    return envelope(compact_json(payload), settings.create_request_type, settings)


def build_cancel_request(waybill: Waybill, settings: KdniaoSettings) -> dict[str, str]:
    """1147: ``ShipperCode``, ``OrderCode``, ``ExpNo`` (+ account fields) [C]."""
    payload: dict[str, Any] = {
        "ShipperCode": waybill.carrier.value,
        "OrderCode": waybill.provider_order_id or "",
        "ExpNo": waybill.tracking_number,
    }
    payload |= _account_fields(waybill.carrier, settings, for_cancel=True)
    return envelope(compact_json(payload), settings.cancel_request_type, settings)


def build_balance_request(carrier: Carrier, settings: KdniaoSettings) -> dict[str, str]:
    """1127 单号余量查询: ``ShipperCode`` + the carrier's account fields, as 1007 sends them [C]."""
    payload: dict[str, Any] = {"ShipperCode": carrier.value} | _account_fields(carrier, settings)
    return envelope(compact_json(payload), settings.balance_request_type, settings)


def build_subscribe_request(subscription: TrackingSubscription, settings: KdniaoSettings) -> dict[str, str]:
    """8008. ``Callback`` (our order/shipment id) is echoed back in pushes as ``CallBack``.

    The push URL itself is configured in the Kdniao console, not per request."""
    payload: dict[str, Any] = {
        "ShipperCode": subscription.carrier.value,
        "LogisticCode": subscription.tracking_number,
    }
    if subscription.order_id:
        payload["OrderCode"] = subscription.order_id
    if subscription.carrier is Carrier.SF and subscription.phone_last4:
        payload["CustomerName"] = subscription.phone_last4
    if subscription.order_id:
        payload["Callback"] = subscription.order_id
    return envelope(compact_json(payload), settings.subscribe_request_type, settings)


def build_query_request(query: TrackingQuery, settings: KdniaoSettings) -> dict[str, str]:
    """8001 / 1002 (REFERENCE §1.5, the golden-vector shape). ``CustomerName`` holds the last 4 phone
    digits for SF, empty otherwise."""
    customer = query.phone_last4 if query.carrier is Carrier.SF and query.phone_last4 else ""
    payload = {
        "OrderCode": "",
        "ShipperCode": query.carrier.value,
        "LogisticCode": query.tracking_number,
        "CustomerName": customer,
    }
    return envelope(compact_json(payload), settings.query_request_type, settings)


# ------------------------------------------------------------------------------------------ door pickup


def build_pickup_request(order: PickupOrder, settings: KdniaoSettings) -> dict[str, str]:
    """A door pickup for a return: 1001 预约取件 (``oorder``) or 1007 with the window and ``IsNotice`` 0
    (``eorder``), per the carrier's ``pickup_method``. The customer is the ``Sender`` (where the courier
    collects), the warehouse the ``Receiver``; ``StartDate``/``EndDate`` are the window in China time
    (``yyyy-MM-dd HH:mm:ss``, Kevin Kong's kdniao ``Order.order`` [C]); ``Callback`` echoes the return id."""
    eorder = settings.pickup_method(order.carrier) == "eorder"
    payload: dict[str, Any] = {"OrderCode": order.return_id, "ShipperCode": order.carrier.value}
    payload |= _account_fields(order.carrier, settings)
    payload |= {
        "PayType": settings.pay_type,
        "ExpType": settings.exp_type,
        "Sender": _party(order.pickup),
        "Receiver": _party(order.receiver),
        "StartDate": _china(order.window.start),
        "EndDate": _china(order.window.end),
        "Commodity": [{"GoodsName": item.name, "Goodsquantity": item.quantity} for item in order.items],
        "Weight": order.total_weight_kg,
        "Quantity": max(1, len(order.parcels)),
        "Remark": order.remark,
        "Callback": order.return_id,
    }
    if eorder:
        payload |= {"IsNotice": 0, "IsReturnPrintTemplate": 0}
        return envelope(compact_json(payload), settings.create_request_type, settings)
    return envelope(compact_json(payload), settings.pickup_request_type, settings)


def build_pickup_cancel_request(booking: PickupBooking, settings: KdniaoSettings) -> dict[str, str]:
    """Cancel a pickup: 1004 (``ShipperCode``, ``OrderCode``, ``ExpNo`` when known) [C], or 1147 for a
    pickup booked as an e-waybill."""
    payload: dict[str, Any] = {"ShipperCode": booking.carrier.value, "OrderCode": booking.pickup_order_id}
    if booking.tracking_number:
        payload["ExpNo"] = booking.tracking_number
    eorder = settings.pickup_method(booking.carrier) == "eorder"
    payload |= _account_fields(booking.carrier, settings, for_cancel=True)
    request_type = settings.cancel_request_type if eorder else settings.pickup_cancel_request_type
    return envelope(compact_json(payload), request_type, settings)


def _china(moment: Any) -> str:
    return str(moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S"))


def build_recognise_request(number: str, settings: KdniaoSettings) -> dict[str, str]:
    """2002 单号识别: ``{"LogisticCode": number}`` (REFERENCE §1.4 [V] request type; body [C])."""
    return envelope(compact_json({"LogisticCode": number}), settings.recognise_request_type, settings)
