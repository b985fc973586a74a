"""Masking of personal data for display and logs (pure functions, no I/O).

The hub stores a masked *display copy* of every sender/receiver next to the encrypted original
(ARCHITECTURE §8): ``张*``, ``138****0000``, the province/city/district in the clear (they are routing
data, needed by rules and reports) and the street address reduced to its first characters.
:func:`redact` is the last line of defence for logs: it masks any mainland mobile number found in
free text and the values of fields known to hold personal data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parcelhub.domain.models import Party

MASK = "***"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_NON_DIGIT = re.compile(r"\D")
#: A mainland mobile number (1[3-9]x xxxx xxxx), optionally with +86/86 and separators, in free text.
_CN_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]){8}(?![0-9])")
#: A landline with an area code (010-12345678, 0755 8600 1234) or a 400/800 service number, in free text.
_LANDLINE_IN_TEXT = re.compile(
    r"(?<![0-9])(?:0[1-9][0-9]{1,2}[ -]?[2-9][0-9]{6,7}|[48]00[ -]?[0-9]{3}[ -]?[0-9]{4})(?![0-9])"
)
#: Who signed / who to contact, as carriers write it: "签收人：张三", "收件人:李四 ", "签收人是【王五】".
_SIGNER_IN_TEXT = re.compile(
    r"(?P<label>(?:签收人|收件人|收货人|联系人|代收人|寄件人)"
    r"(?:\s*(?:是|为)?\s*[:：]\s*[【\[(（]?|\s*(?:是|为)\s*[【\[(（]?|\s*[【\[(（]))"
    r"(?P<name>[\u4e00-\u9fffA-Za-z·]{1,12})"
)
#: Names the signer field carries that are not a person (keep them: they say who signed, not who it is).
_NOT_A_NAME = frozenset({"本人", "他人", "家人", "同事", "前台", "门卫", "快递柜", "驿站", "代收点", "物业", "保安"})


def _has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def _safe(original: str, masked: str) -> str:
    """Never hand back something that still contains the whole original."""
    return MASK if original and original in masked else masked


def mask_name(name: str) -> str:
    """``张三 -> 张*``, ``欧阳娜娜 -> 欧***``, ``Taylor Swift -> T***``; a one-character name -> ``*``."""
    text = name.strip()
    if len(text) <= 1:
        return "*" if text else ""
    if _has_cjk(text):
        return _safe(text, text[0] + "*" * (len(text) - 1))
    return _safe(text, text[0] + MASK)


def mask_phone(phone: str) -> str:
    """``13800000000 -> 138****0000``; landlines keep the area code and the last 4 digits.

    ``+86 138 0000 0000 -> 138****0000``, ``0755-86001234 -> 0755-****1234``,
    ``4006789888 -> 400***9888``; anything shorter than 7 digits is fully masked.
    """
    text = phone.strip()
    digits = _NON_DIGIT.sub("", text)
    if len(digits) == 13 and digits.startswith("86") and digits[2] == "1":
        digits = digits[2:]
    if len(digits) == 11 and digits[0] == "1":
        return f"{digits[:3]}****{digits[-4:]}"
    area = re.match(r"^\s*\+?(0[1-9][0-9]{1,2})[ -]", text)
    if area and len(digits) >= 9:
        local = digits[len(area.group(1)) :]
        return _safe(digits, f"{area.group(1)}-{'*' * max(len(local) - 4, 3)}{local[-4:]}")
    if len(digits) >= 7:
        return _safe(digits, f"{digits[:3]}{'*' * max(len(digits) - 7, 3)}{digits[-4:]}")
    return "****"


def mask_address(address: str, *, province: str = "", city: str = "", district: str = "") -> str:
    """Keep the administrative prefix, reduce the street address to its first two characters.

    ``软件产业基地11栋 -> 软件***``; ``广东省深圳市南山区科技园8号 -> 广东省深圳市南山区科技***`` (when the
    province/city/district are given, a repeated prefix is kept as-is: it is routing data).
    """
    text = address.strip()
    prefix = ""
    for raw in (province, city, district):
        part = raw.strip()
        if part and text[len(prefix) :].startswith(part):
            prefix += part
    street = text[len(prefix) :]
    if not street:
        return prefix + MASK
    kept = street[:2] if len(street) >= 4 else ""
    return prefix + _safe(street, kept + MASK)


def mask_party(party: Party) -> dict[str, str]:
    """The display copy of a sender/receiver, stored with the shipment and shown in APIs."""
    masked = {
        "name": mask_name(party.name),
        "phone": mask_phone(party.phone),
        "province": party.province,
        "city": party.city,
        "district": party.district,
        "address": mask_address(party.address, province=party.province, city=party.city, district=party.district),
    }
    if party.postcode:
        masked["postcode"] = party.postcode
    if party.company:
        masked["company"] = party.company
    return masked


# ------------------------------------------------------------------------------------------- logs


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


#: Keys whose value is personal data wherever they appear (normalised: lower case, no ``_``/``-``).
#: Covers our own models and the providers' wire names (Kdniao ``Mobile``/``Tel``/``CustomerName``,
#: SF ``contact``/``tel``/``mobile``, Kuaidi100 ``phone``/``recManMobile``).
PHONE_KEYS = frozenset(
    {
        "phone",
        "mobile",
        "tel",
        "telephone",
        "phonenumber",
        "mobilephone",
        "receiverphone",
        "senderphone",
        "recmanmobile",
        "sendmanmobile",
        "recmanphone",
        "sendmanphone",
        "persontel",
        "checkphoneno",
        "customername",
        "phonelast4",
    }
)
NAME_KEYS = frozenset(
    {
        "contact",
        "contactname",
        "receivername",
        "sendername",
        "recmanname",
        "sendmanname",
        "personname",
        "consignee",
        "signer",
    }
)
ADDRESS_KEYS = frozenset(
    {
        "address",
        "street",
        "streetaddress",
        "receiveraddress",
        "senderaddress",
        "recmanprintaddr",
        "sendmanprintaddr",
        "detailaddress",
    }
)
#: Keys whose (dict) value is a party: a plain ``name`` inside it is a person's name.
PARTY_KEYS = frozenset(
    {"receiver", "sender", "recipient", "shipper", "consignee", "contactinfo", "party", "recman", "sendman"}
)


def redact_text(text: str) -> str:
    """Mask mobile numbers, landlines and the signer's name in free text (carrier scan texts, messages)."""
    text = _CN_MOBILE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)
    text = _LANDLINE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)

    def signer(match: re.Match[str]) -> str:
        name = match.group("name")
        return match.group(0) if name in _NOT_A_NAME else match.group("label") + mask_name(name)

    return _SIGNER_IN_TEXT.sub(signer, text)


def _looks_like_party(value: Mapping[str, Any]) -> bool:
    return any(_norm(str(k)) in PHONE_KEYS for k in value)


def redact(value: Any, *, _in_party: bool = False) -> Any:
    """A copy of ``value`` (dicts, lists, strings, scalars) with personal data masked, for logging."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        in_party = _in_party or _looks_like_party(value)
        out: dict[Any, Any] = {}
        for key, item in value.items():
            norm = _norm(str(key))
            if isinstance(item, Mapping | list | tuple):
                out[key] = redact(item, _in_party=norm in PARTY_KEYS)
            elif item is None or (isinstance(item, bool | int | float) and norm not in PHONE_KEYS):
                out[key] = item
            elif norm in PHONE_KEYS:
                out[key] = mask_phone(str(item))
            elif norm in NAME_KEYS or (in_party and norm in {"name", "fullname"}):
                out[key] = mask_name(str(item))
            elif norm in ADDRESS_KEYS:
                out[key] = mask_address(str(item))
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item, _in_party=_in_party) for item in value]
    return value


_STANDARD_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message, its args and every extra field of a record.

    Attach it to the Powertools logger: ``logger().addFilter(RedactingFilter())``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        elif isinstance(record.msg, Mapping | list):
            record.msg = redact(record.msg)
        if record.args:
            record.args = (
                redact(dict(record.args)) if isinstance(record.args, Mapping) else tuple(redact(a) for a in record.args)
            )
        for key, item in list(record.__dict__.items()):
            if key not in _STANDARD_RECORD_ATTRS:
                setattr(record, key, redact({key: item})[key])
        return True
