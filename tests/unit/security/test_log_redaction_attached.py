"""The one logger every handler uses redacts personal data before anything is written."""

from __future__ import annotations

import io
import json
import logging

import pytest

from parcelhub import observability

pytestmark = pytest.mark.unit


def test_the_hub_logger_masks_phones_names_and_addresses_in_messages_and_extra_fields() -> None:
    # Given the logger the handlers use, writing into a buffer
    handler = observability.logger().registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        # When a scan text and a party end up in a log line
        observability.logger().warning(
            "scan: 已签收，签收人：张三，电话13800138000",
            extra={"receiver": {"name": "李四", "phone": "18688806057", "address": "机场路1号某小区3栋502"}},
        )
    finally:
        handler.setStream(previous)
    # Then the line is written, with none of the personal data in clear
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    text = json.dumps(line, ensure_ascii=False)
    assert line["level"] == "WARNING"
    for secret in ("13800138000", "18688806057", "张三", "李四", "机场路1号某小区3栋502"):
        assert secret not in text, secret
    assert "186****6057" in text
