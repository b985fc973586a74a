"""Scan texts as each carrier words them, for the stages where carriers differ most (pickup, delivery).

Modelled on the wording of published scans (``tests/fixtures/*/published/``) and the carriers' tracking
pages; every text keeps the words the keyword classifier reads (揽收/收件/收寄, 签收/妥投/投递成功), so a
codeless scan still classifies. ``{city}`` is the scan's city, ``{site}`` the outlet.
"""

from __future__ import annotations

from sandbox.carriers.base import Stage

_TEXTS: dict[str, dict[Stage, str]] = {
    "SF": {
        Stage.PICKED_UP: "【{city}】顺丰速运 已收取快件",
        Stage.DELIVERED: "【{city}】快件已签收，签收人：本人，感谢使用顺丰，期待再次为您服务",
    },
    "ZTO": {
        Stage.PICKED_UP: "【{city}】{site} 的 李师傅（13800000000）已揽收",
        Stage.DELIVERED: "【{city}】快件已被 本人 签收，感谢使用中通快递，期待再次为您服务",
    },
    "YTO": {
        Stage.PICKED_UP: "【{city}】{site}公司 已揽收",
        Stage.DELIVERED: "【{city}】快件已签收，签收人：本人。感谢使用圆通速递，期待再次为您服务",
    },
    "STO": {
        Stage.PICKED_UP: "【{city}】{site}-王师傅（13800000000）-已收件",
        Stage.DELIVERED: "【{city}】已签收，签收人是：本人，感谢使用申通快递",
    },
    "YD": {
        Stage.PICKED_UP: "【{city}】{site}公司 已揽收",
        Stage.DELIVERED: "【{city}】快件已被本人签收，如有疑问请联系派件员",
    },
    "JTSD": {
        Stage.PICKED_UP: "【{city}】您的快件已在【{site}】揽收",
        Stage.DELIVERED: "【{city}】您的快件已签收，签收人：本人，感谢使用极兔速递",
    },
    "EMS": {
        Stage.PICKED_UP: "【{city}】{site}已收寄",
        Stage.DELIVERED: "【{city}】已妥投，签收人：本人",
    },
    "YZPY": {
        Stage.PICKED_UP: "【{city}】{site}已收寄（揽投员：张某）",
        Stage.DELIVERED: "【{city}】投递成功，签收人：本人",
    },
    "JD": {
        Stage.PICKED_UP: "您的快件已由【{site}】揽收完成",
        Stage.DELIVERED: "您的快件已签收，签收人：本人。感谢您在京东购物，欢迎再次光临",
    },
    "DBL": {
        Stage.PICKED_UP: "【{city}】德邦快递{site} 已收取快件",
        Stage.DELIVERED: "【{city}】正常签收，签收人：本人，感谢使用德邦快递",
    },
    "CNSD": {
        Stage.PICKED_UP: "【{city}】菜鸟直送{site} 已揽件",
        Stage.DELIVERED: "【{city}】您的包裹已签收，签收人：本人，感谢使用菜鸟直送",
    },
}

_GENERIC: dict[Stage, str] = {
    Stage.PICKED_UP: "【{city}】{site} 快件已揽收",
    Stage.DELIVERED: "【{city}】快件已签收，签收人：本人",
}


def scan_text(carrier: str, stage: Stage, city: str, site: str) -> str:
    """The carrier's wording of a pickup or delivery scan (others: a generic text)."""
    template = _TEXTS.get(carrier, _GENERIC).get(stage) or _GENERIC[stage]
    return template.format(city=city, site=site)
