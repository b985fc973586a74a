"""What the tracking page says, in Simplified Chinese (the default) and English.

Every canonical :class:`~parcelhub.domain.status.Status` and :class:`~parcelhub.domain.status.SubStatus`
has a name in both languages (a unit test checks it), every status a plain-words headline, every
milestone a label. The language is chosen by ``?lang=``, then ``Accept-Language``, then zh-CN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from parcelhub.domain.progress import Milestone
from parcelhub.domain.status import Status, SubStatus

Lang = Literal["zh-CN", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh-CN", "en")
DEFAULT_LANG: Lang = "zh-CN"


@dataclass(frozen=True, slots=True)
class Text:
    zh: str
    en: str

    def __call__(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh


def _lang_of(tag: str) -> Lang | None:
    tag = tag.strip().lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"  # the page has Simplified Chinese only: zh-TW/zh-HK readers get it too
    return None


def choose_language(query: str | None, accept_language: str | None) -> Lang:
    """``?lang=`` wins, then the most preferred supported language of ``Accept-Language``, else zh-CN."""
    if query:
        chosen = _lang_of(query)
        if chosen:
            return chosen
    ranked: list[tuple[float, int, Lang]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        lang = _lang_of(tag)
        if lang is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else DEFAULT_LANG


#: The canonical status names (timeline entries, the status badge).
STATUS_NAMES: dict[Status, Text] = {
    Status.PENDING: Text("订单已接收", "Order received"),
    Status.WAYBILL_CREATED: Text("已下单待揽收", "Label created"),
    Status.WAYBILL_FAILED: Text("发货准备中", "Preparing to ship"),
    Status.PICKED_UP: Text("已揽收", "Picked up"),
    Status.IN_TRANSIT: Text("运输中", "In transit"),
    Status.ARRIVED_AT_DESTINATION_CITY: Text("到达目的城市", "Arrived in destination city"),
    Status.OUT_FOR_DELIVERY: Text("派送中", "Out for delivery"),
    Status.AVAILABLE_FOR_PICKUP: Text("待取件", "Ready for pickup"),
    Status.DELIVERED: Text("已签收", "Delivered"),
    Status.DELIVERY_FAILED: Text("派送未成功", "Delivery attempt failed"),
    Status.EXCEPTION: Text("运输异常", "Delivery exception"),
    Status.RETURNING: Text("退回中", "Returning to sender"),
    Status.RETURNED: Text("已退回", "Returned to sender"),
    Status.CANCELLED: Text("已取消", "Cancelled"),
}

#: The headline: the status in plain words, addressed to the receiver.
HEADLINES: dict[Status, Text] = {
    Status.PENDING: Text("我们已收到您的订单，正在准备发货", "We have your order and are getting it ready"),
    Status.WAYBILL_CREATED: Text("包裹已打包，等待快递员揽收", "Your parcel is packed and waiting for the courier"),
    Status.WAYBILL_FAILED: Text("我们正在为您安排发货", "We are arranging the shipment of your order"),
    Status.PICKED_UP: Text("快递员已揽收您的包裹", "The courier has picked up your parcel"),
    Status.IN_TRANSIT: Text("您的包裹正在运输途中", "Your parcel is on its way"),
    Status.ARRIVED_AT_DESTINATION_CITY: Text("您的包裹已到达目的城市", "Your parcel has arrived in your city"),
    Status.OUT_FOR_DELIVERY: Text("快递员正在派送您的包裹", "Your parcel is out for delivery"),
    Status.AVAILABLE_FOR_PICKUP: Text("包裹已到取件点，请尽快取件", "Your parcel is waiting for you at a pickup point"),
    Status.DELIVERED: Text("您的包裹已签收", "Your parcel has been delivered"),
    Status.DELIVERY_FAILED: Text(
        "本次派送未成功，请留意快递员来电", "The courier could not deliver your parcel this time"
    ),
    Status.EXCEPTION: Text("您的包裹遇到问题，我们正在处理", "There is a problem with your parcel and we are on it"),
    Status.RETURNING: Text("您的包裹正在退回寄件方", "Your parcel is on its way back to the sender"),
    Status.RETURNED: Text("您的包裹已退回寄件方", "Your parcel was returned to the sender"),
    Status.CANCELLED: Text("该订单的发货已取消", "This shipment was cancelled"),
}

SUB_STATUS_NAMES: dict[SubStatus, Text] = {
    SubStatus.NONE: Text("无补充说明", "No further detail"),
    SubStatus.UNMAPPED: Text("承运商状态更新", "Carrier update"),
    SubStatus.NO_TRACE_YET: Text("暂无物流信息", "No tracking information yet"),
    SubStatus.AWAITING_PICKUP: Text("等待揽收", "Waiting for pickup"),
    SubStatus.AT_TRANSIT_HUB: Text("到达中转中心", "At a sorting hub"),
    SubStatus.AT_DELIVERY_STATION: Text("到达派送网点", "At the local delivery station"),
    SubStatus.REDIRECTED: Text("已改址转寄", "Redirected"),
    SubStatus.FORWARDED: Text("已转交其他快递公司", "Handed to another carrier"),
    SubStatus.CUSTOMS: Text("清关中", "In customs"),
    SubStatus.CUSTOMS_CLEARED: Text("已清关", "Cleared customs"),
    SubStatus.REDELIVERY: Text("再次派送", "Redelivery"),
    SubStatus.SIGNED_BY_RECIPIENT: Text("本人签收", "Signed for by the recipient"),
    SubStatus.SIGNED_BY_PROXY: Text("他人代收", "Received by someone on your behalf"),
    SubStatus.SIGNED_AT_LOCKER: Text("已放入快递柜或驿站", "Left at a parcel locker or pickup station"),
    SubStatus.SIGNED_AFTER_EXCEPTION: Text("异常处理后签收", "Delivered after an earlier problem"),
    SubStatus.ADDRESS_PROBLEM: Text("地址有误或不详", "Problem with the address"),
    SubStatus.WRONG_PHONE: Text("电话号码有误", "Wrong phone number"),
    SubStatus.RECIPIENT_UNREACHABLE: Text("联系不上收件人", "Could not reach the recipient"),
    SubStatus.REFUSED: Text("收件人拒收", "Refused by the recipient"),
    SubStatus.DAMAGED: Text("包裹破损", "Parcel damaged"),
    SubStatus.LOST: Text("包裹丢失", "Parcel lost"),
    SubStatus.HELD: Text("包裹滞留", "Parcel held"),
    SubStatus.DELAYED: Text("运输延误", "Delayed"),
    SubStatus.MISSORTED: Text("分拣错误", "Sent to the wrong place"),
    SubStatus.OUT_OF_SERVICE_AREA: Text("超出派送范围", "Outside the delivery area"),
    SubStatus.CUSTOMS_EXCEPTION: Text("清关异常", "Customs problem"),
    SubStatus.INTERCEPTED: Text("包裹已拦截", "Intercepted"),
    SubStatus.CANCELLED_BY_SENDER: Text("寄件方已取消", "Cancelled by the sender"),
    SubStatus.NO_INFO_AFTER_SHIPPING: Text("发货后暂无物流信息", "No tracking update since shipping"),
    SubStatus.CARRIER_TIMEOUT_NOT_SIGNED: Text("派送超时未签收", "Not signed for in time"),
    SubStatus.CARRIER_TIMEOUT_NO_UPDATE: Text("长时间无物流更新", "No update for a long time"),
    SubStatus.CARRIER_TIMEOUT_LOCKER: Text("快递柜超时未取", "Not collected from the locker in time"),
    SubStatus.CARRIER_TRACKING_ABORTED: Text("承运商已停止跟踪", "The carrier stopped tracking it"),
}

MILESTONE_NAMES: dict[Milestone, Text] = {
    Milestone.ORDERED: Text("已下单", "Ordered"),
    Milestone.PICKED_UP: Text("已揽收", "Picked up"),
    Milestone.IN_TRANSIT: Text("运输中", "In transit"),
    Milestone.IN_DESTINATION_CITY: Text("到达目的城市", "In your city"),
    Milestone.OUT_FOR_DELIVERY: Text("派送中", "Out for delivery"),
    Milestone.DELIVERED: Text("已签收", "Delivered"),
}

#: Everything else the pages say.
UI: dict[str, Text] = {
    "title": Text("包裹追踪", "Parcel tracking"),
    "lookup_title": Text("查询包裹", "Find your parcel"),
    "not_found_title": Text("找不到这个包裹", "We could not find this parcel"),
    "not_found": Text(
        "这个追踪链接无效。请使用短信或邮件中的完整链接，或用订单号查询。",
        "This tracking link is not valid. Use the full link from your message, or look the parcel up by order.",
    ),
    "estimated_delivery": Text("预计送达", "Estimated delivery"),
    "most_likely": Text("最可能", "Most likely"),
    "progress": Text("物流进度", "Progress"),
    "step_done": Text("已完成", "done"),
    "step_current": Text("当前", "current step"),
    "step_interrupted": Text("受阻", "interrupted"),
    "step_upcoming": Text("未开始", "not yet"),
    "journey": Text("物流详情", "Journey"),
    "journey_note": Text("最新在前，北京时间", "Newest first, China time (UTC+8)"),
    "no_scans": Text(
        "暂无物流信息，快递员揽收后会在这里显示。", "No scans yet: they appear here once the courier has it."
    ),
    "carrier": Text("承运商", "Carrier"),
    "tracking_number": Text("运单号", "Tracking number"),
    "copy_button": Text("复制运单号", "Copy tracking number"),
    "copied": Text("运单号已复制", "Tracking number copied"),
    "copy_failed": Text("无法复制，请长按运单号手动复制", "Could not copy: select the number instead"),
    "carrier_service": Text("承运商客服", "Carrier customer service"),
    "destination": Text("目的地", "Destination"),
    "proof": Text("签收信息", "Proof of delivery"),
    "delivered_at": Text("签收时间", "Delivered at"),
    "received": Text("签收方式", "Received"),
    "place": Text("地点", "Place"),
    "returns": Text("申请退货", "Start a return"),
    "updated": Text("最近更新", "Last updated"),
    "help": Text("需要帮助？", "Need help?"),
    "support": Text("联系{brand}客服", "Contact {brand}"),
    "phone": Text("电话", "Phone"),
    "email": Text("邮箱", "E-mail"),
    "website": Text("在线客服", "Help centre"),
    "switch_language": Text("English", "中文"),
    "switch_language_label": Text("切换到英文", "Switch to Chinese"),
    "find_another": Text("查询其他包裹", "Track another parcel"),
    "order_id": Text("订单号", "Order number"),
    "digits": Text("收件人手机号后四位", "Last 4 digits of the receiver's phone"),
    "digits_hint": Text("例如 1234", "For example 1234"),
    "submit": Text("查询", "Track"),
    "lookup_intro": Text(
        "输入订单号和收件人手机号的后四位，查看包裹到哪儿了。",
        "Enter your order number and the last 4 digits of the receiver's phone to see where your parcel is.",
    ),
    "lookup_refused": Text(
        "没有找到与该订单号和手机号后四位匹配的包裹，请核对后重试。",
        "We found no parcel for that order number and those phone digits. Please check them and try again.",
    ),
    "lookup_throttled": Text(
        "查询次数过多，请稍后再试。",
        "Too many attempts. Please try again later.",
    ),
    "json": Text("数据（JSON）", "Data (JSON)"),
}
