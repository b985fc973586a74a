"""Every canonical status and sub-status speaks both languages; the language is chosen as documented."""

from __future__ import annotations

import pytest

from parcelhub.api.trackpage.texts import (
    HEADLINES,
    MILESTONE_NAMES,
    STATUS_NAMES,
    SUB_STATUS_NAMES,
    UI,
    Text,
    choose_language,
)
from parcelhub.domain.progress import Milestone
from parcelhub.domain.status import Status, SubStatus


def _bilingual(table: dict[object, Text]) -> list[str]:
    """The keys whose texts are missing, empty, identical in both languages, or in the wrong script."""
    bad = []
    for key, text in table.items():
        zh, en = text("zh-CN"), text("en")
        if not zh.strip() or not en.strip() or zh == en:
            bad.append(f"{key}: empty or untranslated")
        elif not any("\u4e00" <= ch <= "\u9fff" for ch in zh) or any("\u4e00" <= ch <= "\u9fff" for ch in en):
            bad.append(f"{key}: zh must be Chinese, en must not be")
    return bad


@pytest.mark.parametrize(
    ("table", "members"),
    [(STATUS_NAMES, Status), (HEADLINES, Status), (SUB_STATUS_NAMES, SubStatus), (MILESTONE_NAMES, Milestone)],
    ids=["status names", "headlines", "sub-status names", "milestones"],
)
def test_every_canonical_value_has_both_texts(table: dict[object, Text], members: type) -> None:
    assert set(table) == set(members)
    assert _bilingual(table) == []


def test_every_page_string_has_both_texts() -> None:
    assert _bilingual({k: v for k, v in UI.items() if k != "switch_language"}) == []
    # the language switch names the *other* language in its own script
    assert (UI["switch_language"]("zh-CN"), UI["switch_language"]("en")) == ("English", "中文")


@pytest.mark.parametrize(
    ("query", "accept", "chosen"),
    [
        (None, None, "zh-CN"),
        ("en", "zh-CN", "en"),
        ("en-US", None, "en"),
        ("zh", "en", "zh-CN"),
        ("fr", "en-GB", "en"),  # an unsupported ?lang= falls through to Accept-Language
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr-FR, en;q=0.5, zh-CN;q=0.8", "zh-CN"),  # by quality, not by position
        (None, "zh-TW", "zh-CN"),
        (None, "en;q=0, fr", "zh-CN"),  # q=0 means "not this one"
        (None, "de, ja", "zh-CN"),
        (None, "en;q=bogus, zh", "zh-CN"),
    ],
)
def test_language_query_then_accept_language_then_chinese(query: str | None, accept: str | None, chosen: str) -> None:
    assert choose_language(query, accept) == chosen
