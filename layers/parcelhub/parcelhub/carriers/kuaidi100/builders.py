"""Kuaidi100 request builders: PURE functions from our models to the exact forms we POST (REFERENCE §3).

* ``build_subscribe_request`` — ``POST /poll`` form ``schema=json&param=<JSON>``; no signature, the
  key is inside ``param``;
* ``build_query_request`` — ``POST /poll/query.do`` form ``customer, sign, param`` with
  ``sign = UPPER(MD5(param + key + customer))`` over the exact JSON string sent;
* ``build_autonumber_request`` — 智能单号识别 ``GET autonumber?num=&key=`` (query parameters);
* no ``build_create_request`` / ``build_cancel_request`` / ``build_fetch_request``: Kuaidi100 is a
  tracking provider here, it issues no waybills (the plugin raises ``CapabilityNotSupported``).

Every ``param`` is serialised once (``wire.compact_json``) and the very same string is signed and sent.
"""

from __future__ import annotations

from typing import Any

from parcelhub.carriers.base import CarrierRejected, TrackingQuery, TrackingSubscription
from parcelhub.carriers.kuaidi100.codes import PROVIDER
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.kuaidi100.signing import query_sign
from parcelhub.carriers.wire import compact_json
from parcelhub.domain.models import Carrier


def com_code(carrier: Carrier, settings: Kuaidi100Settings) -> str:
    """Our carrier's Kuaidi100 ``com`` code (``settings.company_codes``)."""
    try:
        return settings.company_codes[carrier]
    except KeyError:
        message = f"carrier {carrier.value} has no kuaidi100 company code"
        raise CarrierRejected(PROVIDER, message, "UNSUPPORTED") from None


def build_subscribe_request(subscription: TrackingSubscription, settings: Kuaidi100Settings) -> dict[str, str]:
    """The subscription form; ``param`` is the exact JSON of REFERENCE §3.2."""
    com = com_code(subscription.carrier, settings)
    phone = (subscription.phone_last4 or "").strip()
    if com in settings.phone_required_for and not phone:
        raise CarrierRejected(PROVIDER, f"{com} tracking needs the receiver's phone (last 4 digits)", "PHONE_REQUIRED")
    callback = subscription.callback_url or settings.callback_url
    if not callback:
        raise CarrierRejected(PROVIDER, "no callback URL for the subscription", "NO_CALLBACK_URL")
    payload: dict[str, Any] = {
        "company": com,
        "number": subscription.tracking_number,
        "from": subscription.origin or "",
        "to": subscription.destination or "",
        "key": settings.required("key"),
        "parameters": {
            "callbackurl": callback,
            "salt": settings.required("salt"),
            "resultv2": settings.subscribe_resultv2,
            "autoCom": "1" if subscription.auto_detect else settings.auto_com,
            "interCom": settings.inter_com,
            "departureCountry": "",
            "departureCom": "",
            "destinationCountry": "",
            "destinationCom": "",
            "phone": phone,
        },
    }
    return {"schema": "json", "param": compact_json(payload)}


def build_query_request(query: TrackingQuery, settings: Kuaidi100Settings) -> dict[str, str]:
    """The real-time query form; ``param`` is the exact JSON of REFERENCE §3.1 (``phone`` only when given)."""
    com = com_code(query.carrier, settings)
    phone = (query.phone_last4 or "").strip()
    if com in settings.phone_required_for and not phone:
        raise CarrierRejected(PROVIDER, f"{com} queries need the receiver's phone (last 4 digits)", "PHONE_REQUIRED")
    payload: dict[str, str] = {"com": com, "num": query.tracking_number}
    if phone:
        payload["phone"] = phone
    payload["resultv2"] = settings.query_resultv2
    param = compact_json(payload)
    customer = settings.required("customer")
    sign = query_sign(param, settings.required("key"), customer)
    return {"customer": customer, "sign": sign, "param": param}


def build_autonumber_request(number: str, settings: Kuaidi100Settings) -> dict[str, str]:
    """The query parameters of 智能单号识别: ``num`` and the account ``key``."""
    return {"num": number, "key": settings.required("key")}
