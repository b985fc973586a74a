"""Proof of delivery (issue 19 item 3): what the signing scan says about who took the parcel, where.

:func:`proof_of_delivery` reads the winning DELIVERED scan - its sub-status (Kdniao 301/304/311, Kuaidi100
301/303/304: in person, proxy, locker or station) and its text (the signer, the courier, the locker or
station it was left at) - into a :class:`ProofOfDelivery` with names and phones masked. It depends on
that one scan only, so the record is the same whatever order or duplication the pushes came in (the
tracking writer stores it in the same conditional write as the DELIVERED state). ``DeliveryConfirmed``
announces it without the masked personal fields.
"""

from __future__ import annotations

import re

from parcelhub.domain.models import ProofOfDelivery, SignType, TrackingEvent
from parcelhub.domain.status import Status, SubStatus
from parcelhub.security.masking import mask_name, mask_phone

_BY_SUB_STATUS: dict[SubStatus, SignType] = {
    SubStatus.SIGNED_BY_RECIPIENT: SignType.IN_PERSON,
    SubStatus.SIGNED_BY_PROXY: SignType.PROXY,
    SubStatus.SIGNED_AT_LOCKER: SignType.LOCKER,  # Kdniao 311 / Kuaidi100 304 say "locker or station"
}
#: scan-text words, checked in this order (a station mention is more specific than "代收")
_BY_TEXT: tuple[tuple[re.Pattern[str], SignType], ...] = (
    (re.compile(r"驿站|代收点|服务站|服务点|快递超市|自提点|菜鸟"), SignType.STATION),
    (re.compile(r"快递柜|智能柜|丰巢|自提柜|储物柜"), SignType.LOCKER),
    (re.compile(r"本人签收|签收人[是为:：\s]*【?本人"), SignType.IN_PERSON),
    (re.compile(r"代签|代收|门卫|前台|家人|同事|物业|保安|他人"), SignType.PROXY),
)
_STATION = re.compile(
    r"[【\[(（]?(?P<name>[^【】\[\]()（），,。\s]{0,24}(?:驿站|代收点|服务站|快递柜|智能柜|丰巢|自提点|快递超市)"
    r"(?:[(（][^)）]{1,24}[)）])?)"
)
_SIGNER = re.compile(r"(?:签收人|代收人)\s*(?:是|为)?\s*[:：]?\s*[【\[(（]?(?P<name>[\u4e00-\u9fffA-Za-z·*]{1,12})")
_COURIER = re.compile(
    r"(?:快递员|派件员|配送员|小哥)\s*[:：]?\s*[【\[(（]?(?P<name>[\u4e00-\u9fff·*]{1,6})?"
    r"[，,\s]*(?:电话[:：]?)?\s*[（(]?(?P<phone>1[3-9][0-9][0-9*]{4}[0-9]{4})?"
)
#: what a signer field says that is not a person's name (kept: it says who signed, not who it is)
_ROLES = frozenset({"本人", "他人", "家人", "同事", "前台", "门卫", "快递柜", "驿站", "代收点", "物业", "保安"})


def sign_type(event: TrackingEvent) -> SignType:
    """The text decides between a locker and a station (one code covers both); else the sub-status."""
    text = event.raw_text
    for pattern, kind in _BY_TEXT:
        if pattern.search(text) and (
            kind is not SignType.PROXY or event.sub_status is not SubStatus.SIGNED_BY_RECIPIENT
        ):
            return kind
    return _BY_SUB_STATUS.get(event.sub_status, SignType.UNKNOWN)


def _masked_name(name: str | None) -> str | None:
    if not name:
        return None
    if name in _ROLES or "*" in name:  # a role, or masked already (the ingest masks signers in scan texts)
        return name
    return mask_name(name)


def proof_of_delivery(winner: TrackingEvent) -> ProofOfDelivery | None:
    """The proof the signing scan gives (``None`` when the scan is not a delivery)."""
    if winner.status is not Status.DELIVERED:
        return None
    text = winner.raw_text
    station = _STATION.search(text)
    signer = _SIGNER.search(text)
    courier = _COURIER.search(text)
    courier_text = None
    if courier is not None and (courier.group("name") or courier.group("phone")):
        phone = courier.group("phone")
        parts = [_masked_name(courier.group("name")), (phone if "*" in phone else mask_phone(phone)) if phone else None]
        courier_text = " ".join(p for p in parts if p)
    return ProofOfDelivery(
        signed_at=winner.occurred_at,
        sign_type=sign_type(winner),
        provider=winner.provider,
        raw_code=winner.raw_code,
        station=station.group("name") if station else None,
        courier=courier_text,
        signer=_masked_name(signer.group("name")) if signer else None,
    )
