"""The simulated OMS's orders: a DTC brand's day, deterministic for a seed.

A realistic mix: mostly regular customers and some VIPs, baskets of the brand's products with their
prices (so the declared value is the basket's value, a few above the 500 CNY high-value line),
receivers across China's provinces with real province / city / district names, and a few orders the
OMS got wrong (a phone with a letter in it, a missing street address or district, a 5-digit postcode)
that the API must reject with 422 and say which field is wrong. A few orders are sent twice, the way
an OMS retries after a timeout: the API must answer with the same shipment.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: (province, city, [districts], postcode prefix, weight) - destinations weighted like a DTC brand's orders
DESTINATIONS: tuple[tuple[str, str, tuple[str, ...], str, int], ...] = (
    ("上海市", "上海市", ("浦东新区", "徐汇区", "静安区", "闵行区"), "200", 14),
    ("北京市", "北京市", ("朝阳区", "海淀区", "东城区", "丰台区"), "100", 12),
    ("广东省", "广州市", ("天河区", "越秀区", "海珠区"), "510", 8),
    ("广东省", "深圳市", ("南山区", "福田区", "宝安区"), "518", 9),
    ("浙江省", "杭州市", ("西湖区", "拱墅区", "余杭区"), "310", 8),
    ("浙江省", "宁波市", ("鄞州区", "海曙区"), "315", 3),
    ("江苏省", "南京市", ("鼓楼区", "玄武区", "建邺区"), "210", 5),
    ("江苏省", "苏州市", ("姑苏区", "吴中区"), "215", 5),
    ("四川省", "成都市", ("武侯区", "锦江区", "高新区"), "610", 6),
    ("湖北省", "武汉市", ("洪山区", "江汉区", "武昌区"), "430", 4),
    ("福建省", "厦门市", ("思明区", "湖里区"), "361", 3),
    ("山东省", "青岛市", ("市南区", "崂山区"), "266", 3),
    ("陕西省", "西安市", ("雁塔区", "碑林区"), "710", 3),
    ("湖南省", "长沙市", ("岳麓区", "芙蓉区"), "410", 3),
    ("重庆市", "重庆市", ("渝中区", "江北区"), "400", 3),
    ("天津市", "天津市", ("南开区", "和平区"), "300", 2),
    ("河南省", "郑州市", ("金水区", "二七区"), "450", 2),
    ("辽宁省", "沈阳市", ("和平区", "沈河区"), "110", 2),
    ("云南省", "昆明市", ("五华区", "盘龙区"), "650", 1),
    ("黑龙江省", "哈尔滨市", ("南岗区", "道里区"), "150", 1),
    ("新疆维吾尔自治区", "乌鲁木齐市", ("天山区", "沙依巴克区"), "830", 1),
    ("西藏自治区", "拉萨市", ("城关区",), "850", 1),
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英")
STREETS = ("中山路", "人民路", "解放路", "建设路", "文化路", "长江路", "和平路", "新华路", "科技路", "滨江大道")
MOBILE_PREFIXES = ("138", "139", "137", "136", "150", "151", "152", "158", "159", "186", "187", "188", "177", "199")

#: the brand's catalogue: (product, unit price CNY, weight kg)
CATALOGUE: tuple[tuple[str, Decimal, float], ...] = (
    ("纯棉圆领T恤", Decimal("89.00"), 0.25),
    ("羊毛混纺围巾", Decimal("239.00"), 0.3),
    ("真空保温杯 500ml", Decimal("129.00"), 0.45),
    ("降噪蓝牙耳机", Decimal("399.00"), 0.2),
    ("玻尿酸精华液 30ml", Decimal("268.00"), 0.15),
    ("轻量跑步鞋", Decimal("459.00"), 0.8),
    ("真丝睡衣套装", Decimal("699.00"), 0.4),
    ("手冲咖啡礼盒", Decimal("158.00"), 1.1),
)

#: what an OMS gets wrong, and the receiver field the API must name in its 422
BAD_INPUTS: dict[str, str] = {
    "phone_with_letter": "receiver.phone",
    "missing_address": "receiver.address",
    "missing_district": "receiver.district",
    "short_postcode": "receiver.postcode",
}


@dataclass(frozen=True)
class PlannedOrder:
    """One order the simulated OMS will send, with what the demo expects of it."""

    index: int
    order_id: str
    body: dict[str, Any]
    customer_tier: str
    declared_value: Decimal
    province: str
    city: str
    bad_input: str | None = None  # a key of BAD_INPUTS: the API must answer 422 naming the field
    resend: bool = False  # the OMS sends it twice (an idempotent replay)
    stall_after: int | None = None  # the carrier's lifecycle stops after this many scans
    probe: bool = False  # polled often, for the push -> visible latency
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def expect_accepted(self) -> bool:
        return self.bad_input is None


def _phone(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(8))


def _receiver(rng: random.Random) -> dict[str, Any]:
    province, city, districts, postcode, _ = rng.choices(DESTINATIONS, weights=[d[4] for d in DESTINATIONS])[0]
    street = rng.choice(STREETS)
    return {
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "phone": _phone(rng),
        "province": province,
        "city": city,
        "district": rng.choice(districts),
        "address": f"{street}{rng.randint(1, 999)}号{rng.randint(1, 30)}栋{rng.randint(1, 28)}0{rng.randint(1, 6)}室",
        "postcode": postcode + f"{rng.randint(0, 999):03d}",
    }


def _spoil(receiver: dict[str, Any], kind: str, rng: random.Random) -> dict[str, Any]:
    spoiled = dict(receiver)
    if kind == "phone_with_letter":
        phone = list(spoiled["phone"])
        phone[rng.randint(3, 9)] = "O"  # the letter O typed for a zero
        spoiled["phone"] = "".join(phone)
    elif kind == "missing_address":
        spoiled["address"] = "无"
    elif kind == "missing_district":
        spoiled["district"] = ""
    elif kind == "short_postcode":
        spoiled["postcode"] = spoiled["postcode"][:5]
    return spoiled


def _basket(rng: random.Random, vip: bool) -> tuple[list[dict[str, Any]], Decimal, float]:
    lines = rng.choices(CATALOGUE, k=rng.choices((1, 2, 3), weights=(6, 3, 1))[0] + (1 if vip else 0))
    items: dict[str, tuple[Decimal, int, float]] = {}
    for name, price, weight in lines:
        _, quantity, _ = items.get(name, (price, 0, weight))
        items[name] = (price, quantity + 1, weight)
    value = sum((price * quantity for price, quantity, _ in items.values()), Decimal("0"))
    weight = sum(w * quantity for _, quantity, w in items.values()) + 0.1  # the box
    body = [
        {"name": name, "quantity": quantity, "unit_price": {"amount": str(price), "currency": "CNY"}}
        for name, (price, quantity, _) in items.items()
    ]
    return body, value, round(weight, 2)


def plan_orders(
    count: int,
    *,
    seed: int = 20241111,
    run_id: str = "DEMO",
    vip_share: float = 0.15,
    bad_share: float = 0.03,
    resend_share: float = 0.02,
    stalls: int | None = None,
    probes: int = 3,
) -> list[PlannedOrder]:
    """The day's orders. Bad inputs, resends, stalls and probes are spread evenly, never on the same order."""
    rng = random.Random(seed)
    bad_count = max(1, round(count * bad_share)) if count >= 10 else 0
    stall_count = stalls if stalls is not None else max(1, round(count * 0.03))
    resend_count = max(1, round(count * resend_share)) if count >= 10 else 0
    roles: dict[int, str] = {}

    def spread(role: str, how_many: int, offset: float) -> None:
        for k in range(how_many):
            index = int((k + offset) * count / max(how_many, 1)) % count
            while index in roles:
                index = (index + 1) % count
            roles[index] = role

    spread("bad", min(bad_count, count), 0.3)
    spread("stall", min(stall_count, count - len(roles)), 0.15)
    spread("resend", min(resend_count, count - len(roles)), 0.6)
    spread("probe", min(probes, count - len(roles)), 0.45)
    bad_kinds = list(BAD_INPUTS)
    stall_points = (2, 0, 4)  # in transit, never picked up, out for delivery too long
    orders: list[PlannedOrder] = []
    bad_seen = stall_seen = 0
    for index in range(count):
        vip = rng.random() < vip_share
        receiver = _receiver(rng)
        items, value, weight = _basket(rng, vip)
        role = roles.get(index)
        bad_input = None
        if role == "bad":
            bad_input = bad_kinds[bad_seen % len(bad_kinds)]
            bad_seen += 1
            receiver = _spoil(receiver, bad_input, rng)
        stall_after = None
        if role == "stall":
            stall_after = stall_points[stall_seen % len(stall_points)]
            stall_seen += 1
        order_id = f"{run_id}-{index + 1:05d}"
        body: dict[str, Any] = {
            "order_id": order_id,
            "receiver": receiver,
            "parcels": [{"weight_kg": weight}],
            "items": items,
            "declared_value": {"amount": str(value), "currency": "CNY"},
            "customer_tier": "vip" if vip else "regular",
            "service": "express" if vip else "standard",
        }
        tags = tuple(t for t in ("vip" if vip else "", "high-value" if value >= 500 else "") if t)
        orders.append(
            PlannedOrder(
                index=index,
                order_id=order_id,
                body=body,
                customer_tier="vip" if vip else "regular",
                declared_value=value,
                province=receiver["province"],
                city=receiver["city"],
                bad_input=bad_input,
                resend=role == "resend",
                stall_after=stall_after,
                probe=role == "probe",
                tags=tags,
            )
        )
    return orders
