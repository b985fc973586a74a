"""Masking for display and logs: the display copy and log lines never carry the original personal data."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcelhub.domain.models import Party
from parcelhub.security.masking import (
    RedactingFilter,
    mask_address,
    mask_name,
    mask_party,
    mask_phone,
    redact,
    redact_text,
)

pytestmark = pytest.mark.unit

# --------------------------------------------------------------------------- realistic generators

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林"]
COMPOUND_SURNAMES = ["欧阳", "司马", "诸葛", "上官", "东方", "慕容"]
GIVEN_CHARS = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬燕彬"
MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "135",
    "136",
    "138",
    "139",
    "150",
    "152",
    "158",
    "166",
    "177",
    "180",
    "186",
    "188",
    "199",
]
ROADS = ["科技园南路", "深南大道", "中山路", "人民路", "建设大街", "解放西路", "长安街", "软件产业基地", "望京街"]
REGIONS = [
    ("广东省", "深圳市", "南山区"),
    ("北京市", "北京市", "朝阳区"),
    ("上海市", "上海市", "浦东新区"),
    ("浙江省", "杭州市", "西湖区"),
    ("四川省", "成都市", "武侯区"),
]

chinese_names = st.builds(
    lambda surname, given: surname + given,
    st.sampled_from(SURNAMES + COMPOUND_SURNAMES),
    st.text(alphabet=GIVEN_CHARS, min_size=1, max_size=2),
)
latin_names = st.builds(
    lambda first, last: f"{first} {last}",
    st.sampled_from(["Taylor", "Yann", "Emma", "Liam", "Olivia", "Noah"]),
    st.sampled_from(["Smith", "Chen", "Wong", "Garcia", "Müller"]),
)
mobiles = st.builds(
    lambda p, rest: p + rest, st.sampled_from(MOBILE_PREFIXES), st.text("0123456789", min_size=8, max_size=8)
)
streets = st.builds(
    lambda road, no, building, room: f"{road}{no}号{building}栋{room}室",
    st.sampled_from(ROADS),
    st.integers(1, 999),
    st.integers(1, 30),
    st.integers(101, 2808),
)
parties = st.builds(
    lambda name, phone, region, street, full: Party(
        name=name,
        phone=phone,
        province=region[0],
        city=region[1],
        district=region[2],
        address=(region[0] + region[1] + region[2] + street) if full else street,
    ),
    st.one_of(chinese_names, latin_names),
    mobiles,
    st.sampled_from(REGIONS),
    streets,
    st.booleans(),
)


# ------------------------------------------------------------------------------------------ examples


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("王小明", "王**"),
        ("Taylor", "T***"),
        ("Yann Chen", "Y***"),
        ("张", "*"),
    ],
)
def test_names_keep_only_the_first_character(name: str, masked: str) -> None:
    # Given a receiver name / When it is masked / Then only its first character (or nothing) remains
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800000000", "138****0000"),
        ("+86 138 0000 0000", "138****0000"),
        ("86-18688806057", "186****6057"),
        ("0755-86001234", "0755-****1234"),
        ("010 12345678", "010-****5678"),
        ("4006789888", "400***9888"),
        ("95338", "****"),
    ],
)
def test_phones_keep_prefix_and_last_four(phone: str, masked: str) -> None:
    # Given mobiles, landlines and short service numbers / When masked / Then at most prefix + last 4 remain
    assert mask_phone(phone) == masked


def test_address_keeps_the_region_and_hides_the_street() -> None:
    # Given the SF reference address, alone and with a repeated region prefix
    # When masked
    # Then the street is cut to two characters and the province/city/district stay readable
    assert mask_address("软件产业基地11栋") == "软件***"
    assert (
        mask_address("广东省深圳市南山区软件产业基地11栋", province="广东省", city="深圳市", district="南山区")
        == "广东省深圳市南山区软件***"
    )
    assert mask_address("1号") == "***"


def test_mask_party_is_the_display_copy() -> None:
    # Given the SF reference sender
    party = Party(
        name="张三",
        phone="13800000000",
        province="广东省",
        city="深圳市",
        district="南山区",
        address="软件产业基地11栋",
        postcode="518000",
    )
    # When the display copy is made / Then it matches ARCHITECTURE §8 and holds nothing else
    assert mask_party(party) == {
        "name": "张*",
        "phone": "138****0000",
        "province": "广东省",
        "city": "深圳市",
        "district": "南山区",
        "address": "软件***",
        "postcode": "518000",
    }


# ---------------------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(parties)
def test_masked_party_never_contains_the_originals(party: Party) -> None:
    # Given any realistic Chinese or latin receiver / When masked
    masked = mask_party(party)
    text = json.dumps(masked, ensure_ascii=False)
    # Then neither the name, the phone nor the street address appears anywhere in the display copy
    assert party.name not in text
    assert party.phone not in text
    assert party.address not in text
    assert re.fullmatch(r"1[0-9]{2}\*{4}[0-9]{4}", masked["phone"])
    assert masked["phone"][-4:] == party.phone[-4:]
    # and the routing data stays usable
    assert (masked["province"], masked["city"], masked["district"]) == (party.province, party.city, party.district)


@settings(max_examples=200, deadline=None)
@given(
    mobiles,
    st.sampled_from(["", "+86 ", "86", "+86-"]),
    st.sampled_from(["{}", "联系电话：{}，", "call {} now", "({})"]),
)
def test_redact_text_masks_any_mainland_mobile(mobile: str, prefix: str, template: str) -> None:
    # Given free text (a carrier scan, an error message) with a mobile number in any usual spelling
    text = template.format(prefix + mobile)
    # When redacted / Then the number is gone, its masked form is there
    out = redact_text(text)
    assert mobile not in out
    assert mask_phone(mobile) in out


@settings(max_examples=100, deadline=None)
@given(chinese_names)
def test_redact_text_masks_the_signer_name(name: str) -> None:
    # Given a delivery scan naming the person who signed
    text = f"【深圳市】已签收，签收人：{name}，感谢使用中通快递"
    # When redacted / Then the name is masked but the scan still reads
    out = redact_text(text)
    assert name not in out
    assert out.startswith("【深圳市】已签收，签收人：")
    assert "感谢使用中通快递" in out


def test_redact_text_keeps_texts_without_personal_data() -> None:
    # Given scans without personal data (and a signer that is not a person)
    texts = [
        "【杭州市】快件已到达 杭州中转部",
        "已签收,签收人是本人",
        "派件时收件人电话无人接听",
        "运单号 73100012345678",
    ]
    # When redacted / Then they are unchanged
    assert [redact_text(t) for t in texts] == texts


@settings(max_examples=100, deadline=None)
@given(parties)
def test_redact_masks_provider_payloads(party: Party) -> None:
    # Given request payloads in Kdniao's and SF's wire shapes carrying a party (see REFERENCE.md)
    kdniao = {
        "ShipperCode": "ZTO",
        "Receiver": {
            "Name": party.name,
            "Mobile": party.phone,
            "ProvinceName": party.province,
            "CityName": party.city,
            "ExpAreaName": party.district,
            "Address": party.address,
        },
        "Commodity": [{"GoodsName": "鞋子", "Goodsquantity": 1}],
    }
    sf = {
        "orderId": "shp_1",
        "contactInfoList": [
            {
                "contactType": 2,
                "contact": party.name,
                "mobile": party.phone,
                "tel": party.phone,
                "address": party.address,
            }
        ],
        "cargoDetails": [{"name": "护肤品", "count": 1}],
    }
    for payload in (kdniao, sf):
        # When redacted for a log line
        out = json.dumps(redact(payload), ensure_ascii=False)
        # Then no personal value survives, and the non-personal fields are untouched
        assert party.name not in out
        assert party.phone not in out
        assert party.address not in out
    assert redact(kdniao)["Commodity"] == kdniao["Commodity"]
    assert redact(sf)["cargoDetails"] == sf["cargoDetails"]
    assert redact(kdniao)["Receiver"]["ProvinceName"] == party.province


def test_redacting_filter_cleans_a_real_log_line() -> None:
    # Given a logger writing JSON-ish lines with the redacting filter attached
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(receiver)s %(phone)s"))
    log = logging.getLogger("parcelhub.test.redaction")
    log.propagate = False
    log.addHandler(handler)
    log.addFilter(RedactingFilter())
    log.setLevel(logging.INFO)
    try:
        # When a careless call logs a phone in the message, an arg and extra fields
        log.info(
            "carrier said: 收件人 %s 电话错误",
            "13912345678",
            extra={"receiver": {"name": "欧阳娜娜", "phone": "13912345678"}, "phone": "+86 139 1234 5678"},
        )
    finally:
        log.removeHandler(handler)
    line = stream.getvalue()
    # Then the line carries only masked values
    assert "13912345678" not in line
    assert "1234 5678" not in line
    assert "欧阳娜娜" not in line
    assert "139****5678" in line
