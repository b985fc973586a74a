"""The keyword classifier for scans without a code (``carriers.codes.SCAN_KEYWORDS``) and ``resolve``.

Every text below is taken from a published sample (``tests/fixtures/*/published/``) unless it says
otherwise; each rule of the table is pinned by at least one, and so is every priority between rules.
"""

from __future__ import annotations

import pytest

from parcelhub.carriers.codes import (
    CODELESS_SCAN,
    SCAN_KEYWORDS,
    CodeTable,
    KeywordRule,
    classify_text,
    m,
    resolve,
)
from parcelhub.domain.status import Status, SubStatus

pytestmark = pytest.mark.unit

S, X = Status, SubStatus

PUBLISHED_TEXTS = [
    # picked up
    ("已收件[深圳市]", S.PICKED_UP, X.NONE),
    ("顺丰速运 已收取快件", S.PICKED_UP, X.NONE),
    ("【河南省郑州市市场部公司】 已收件 取件人: 河南省郑州市市场部3 (95554)", S.PICKED_UP, X.NONE),
    ("到达：广东广州增城市新塘公司牛仔王便民寄存点 已收件", S.PICKED_UP, X.NONE),  # 已收件 before 到达
    ("已收件(派件人:张益达,电话:18012345678)", S.PICKED_UP, X.NONE),  # 收件 before 派件
    ("【赣州市】江西信丰县公司脐橙淘宝服务部 已揽收", S.PICKED_UP, X.NONE),
    ("上门收件", S.PICKED_UP, X.NONE),
    # awaiting pickup
    ("【长沙市】 【长沙东站】（07**-55**234） 的 长沙东站司法分部（135****1234） 已接单",
     S.WAYBILL_CREATED, X.AWAITING_PICKUP),
    # in transit
    ("快件在 深圳集散中心 ,准备送往下一站 深圳 [深圳市]", S.IN_TRANSIT, X.NONE),
    ("【郑州转运中心公司】 已收入", S.IN_TRANSIT, X.NONE),  # 已收入 (into a hub) is not 已收件
    ("【郑州转运中心】 已发出 下一站 【漯河转运中心公司】", S.IN_TRANSIT, X.NONE),
    ("上海分拨中心/装件入车扫描 ", S.IN_TRANSIT, X.NONE),
    ("[广州市]快件已发车", S.IN_TRANSIT, X.NONE),
    ("快件在【广州番禺集散中心】已装车,准备发往 【广州海珠北山村营业部】", S.IN_TRANSIT, X.NONE),
    ("在途", S.IN_TRANSIT, X.NONE),
    ("代理收件", S.IN_TRANSIT, X.NONE),  # SF 607's text: an agent's intake on the way, not the pickup
    ("清关进行中,请耐心等候", S.IN_TRANSIT, X.CUSTOMS),
    # out for delivery
    ("正在派件..(派件人:邓裕富,电话:18718866310)[深圳 市]", S.OUT_FOR_DELIVERY, X.NONE),
    ("正在派送途中,请您准备签收(派件人:杨家文,电话:18928866224)", S.OUT_FOR_DELIVERY, X.NONE),  # not signed
    ("到达：广东深圳公司福田区岗厦东西村分部 指定：颜烈彬(13822143644) 派送", S.OUT_FOR_DELIVERY, X.NONE),
    # available for pickup
    ("便利店交接", S.AVAILABLE_FOR_PICKUP, X.NONE),
    ("快件已到达世纪联华超市圆通速递妈妈驿站联系电话13781463122", S.AVAILABLE_FOR_PICKUP, X.NONE),
    ("世纪联华超市圆通速递妈妈驿站已发出自提短信请上门自提联系电话13781463122", S.AVAILABLE_FOR_PICKUP, X.NONE),
    ("快件已暂存至常州世纪明珠园17-7号店菜鸟驿站，如有疑问请联系15312399123", S.AVAILABLE_FOR_PICKUP, X.NONE),
    ("快件已由济南历城区翡翠雅郡北区西门店代收，请及时取件，如有疑问请联系15552562271", S.AVAILABLE_FOR_PICKUP, X.NONE),
    # delivered
    ("派件已签收[深圳市]", S.DELIVERED, X.NONE),  # 签收 beats 派件
    ("签收人是：已签收[深圳市]", S.DELIVERED, X.NONE),
    ("已签收,感谢使用顺丰,期待再次为您服务", S.DELIVERED, X.NONE),
    ("您的快件已派送成功（地下车库门口。），如有疑问请电联快递员。", S.DELIVERED, X.NONE),
    ("客户签收人: 他人代签世纪联华超市圆通快递公司己暂放尽快来取拿件电话13781463122 已签收",
     S.DELIVERED, X.SIGNED_BY_PROXY),
    ("已签收，签收人凭取货码签收。", S.DELIVERED, X.SIGNED_AT_LOCKER),
]  # fmt: skip

#: texts of our own, one per rule no published sample reaches
OTHER_TEXTS = [
    ("收件人拒收，快件退回", S.DELIVERY_FAILED, X.REFUSED),
    ("快件已退回寄件人", S.RETURNING, X.NONE),
    ("派件不成功，收件人电话无人接听", S.DELIVERY_FAILED, X.NONE),
    ("快件待揽收", S.WAYBILL_CREATED, X.AWAITING_PICKUP),  # 待揽收 before 揽收
    ("清关异常，请联系客服", S.EXCEPTION, X.CUSTOMS_EXCEPTION),
    ("已清关", S.IN_TRANSIT, X.CUSTOMS_CLEARED),
    ("快件滞留在网点", S.EXCEPTION, X.NONE),
]


@pytest.mark.parametrize(("text", "status", "sub_status"), PUBLISHED_TEXTS + OTHER_TEXTS)
def test_the_text_of_a_scan_maps_as_intended(text: str, status: Status, sub_status: SubStatus) -> None:
    assert classify_text(text) == m(status, sub_status)


def test_every_rule_is_reached_by_a_pinned_text() -> None:
    # Given the texts above Then each rule of the table is the first match of at least one of them
    reached = {
        next(i for i, rule in enumerate(SCAN_KEYWORDS) if rule.matches(t)) for t, _, _ in PUBLISHED_TEXTS + OTHER_TEXTS
    }
    assert reached == set(range(len(SCAN_KEYWORDS)))


@pytest.mark.parametrize("text", ["", "扫描", "【苏州市】状态码 4.9.9", "路由节点", "备注"])
def test_a_text_that_names_no_milestone_is_not_classified(text: str) -> None:
    assert classify_text(text) is None


def test_a_rule_is_skipped_when_an_exception_word_is_present() -> None:
    rule = KeywordRule(("签收",), m(S.DELIVERED), unless=("准备签收",))
    assert rule.matches("已签收")
    assert not rule.matches("请您准备签收")


TABLE = CodeTable(provider="test", codes={"1": m(S.PICKED_UP)})


def test_resolve_uses_every_signal_most_specific_first() -> None:
    # A known code decides, whatever the text says
    assert resolve("1", "已签收", TABLE).mapping == m(S.PICKED_UP)
    assert not resolve("1", "已签收", TABLE).inferred
    # An unknown code: the provider's normalised status, then the text (inferred), then UNMAPPED
    normalised = resolve("9", "已签收", TABLE, m(S.OUT_FOR_DELIVERY))
    assert (normalised.mapping, normalised.inferred, normalised.unknown_code) == (m(S.OUT_FOR_DELIVERY), False, "9")
    by_text = resolve("9", "已签收", TABLE)
    assert (by_text.mapping, by_text.inferred, by_text.unknown_code, by_text.unmapped) == (
        m(S.DELIVERED),
        True,
        "9",
        False,
    )
    nothing = resolve("9", "路由节点", TABLE)
    assert (nothing.mapping, nothing.unmapped, nothing.unknown_code) == (m(S.IN_TRANSIT, X.UNMAPPED), True, "9")
    # No code: the text, else a plain scan on the way - both inferred, neither UNMAPPED
    assert resolve("", "已签收", TABLE) == resolve("  ", "已签收", TABLE)
    codeless = resolve("", "路由节点", TABLE)
    assert (codeless.mapping, codeless.inferred, codeless.unmapped, codeless.unknown_code) == (
        CODELESS_SCAN,
        True,
        False,
        None,
    )
