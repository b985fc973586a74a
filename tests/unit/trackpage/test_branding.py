"""Branding is validated: colour contrast by WCAG's formula (with a fallback), inline SVG by a whitelist."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parcelhub.config import HubConfig
from parcelhub.domain.branding import (
    AA_CONTRAST,
    BACKGROUND,
    DEFAULT_PRIMARY,
    Branding,
    check_inline_svg,
    contrast_ratio,
)


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [("#000000", "#FFFFFF", 21.0), ("#FFFFFF", "#FFFFFF", 1.0), ("#767676", "#FFF", 4.54), ("#0B5CAD", "#FFF", 6.67)],
)
def test_contrast_ratio_follows_wcag(first: str, second: str, ratio: float) -> None:
    assert contrast_ratio(first, second) == pytest.approx(ratio, abs=0.01)
    assert contrast_ratio(second, first) == pytest.approx(ratio, abs=0.01)


def test_the_default_colour_meets_aa() -> None:
    assert contrast_ratio(DEFAULT_PRIMARY, BACKGROUND) >= AA_CONTRAST


@pytest.mark.parametrize(("colour", "used"), [("#c00", "#CC0000"), ("#1a7f37", "#1A7F37")])
def test_a_colour_with_aa_contrast_is_used(colour: str, used: str) -> None:
    brand = Branding(primary_color=colour)
    assert not brand.primary_fell_back
    assert brand.accent == used


@pytest.mark.parametrize("colour", ["#FFD500", "#87CEEB", "#FFFFFF", "#808080"])
def test_a_colour_without_aa_contrast_falls_back(colour: str) -> None:
    brand = Branding(primary_color=colour)
    assert brand.primary_fell_back
    assert brand.accent == DEFAULT_PRIMARY


@pytest.mark.parametrize("colour", ["red", "#12345", "#GGGGGG", "rgb(0,0,0)"])
def test_a_colour_that_is_not_hex_is_refused(colour: str) -> None:
    with pytest.raises(ValidationError):
        Branding(primary_color=colour)


def test_branding_lives_in_the_hub_config_with_working_defaults() -> None:
    config = HubConfig.model_validate(
        {"tracking_page": {"brand": {"name": "拾光咖啡", "support_phone": "400-820-1234"}}}
    )
    assert config.tracking_page.brand.name == "拾光咖啡"
    assert HubConfig().tracking_page.returns_url is None  # returns are off unless the brand enables them
    with pytest.raises(ValidationError):
        HubConfig.model_validate({"tracking_page": {"brand": {"logo_url": "http://insecure.example/logo.png"}}})
    with pytest.raises(ValidationError):
        HubConfig.model_validate({"tracking_page": {"returns_url": "javascript:alert(1)"}})


LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" role="img" aria-label="logo">'
    '<defs><linearGradient id="g"><stop offset="0" stop-color="#0B5CAD"/></linearGradient></defs>'
    '<circle cx="12" cy="12" r="10" fill="url(#g)"/><path d="M4 12h16"/><text x="2" y="20">A</text></svg>'
)


def test_a_plain_drawing_is_accepted() -> None:
    assert check_inline_svg(LOGO) == LOGO
    assert Branding(logo_svg=LOGO).logo_svg == LOGO


@pytest.mark.parametrize(
    "svg",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        '<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)"><path d="M0 0"/></a></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div>x</div></foreignObject></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><image href="https://tracker.example/p.gif"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><use href="#x"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" style="background:url(https://t.example)"/>',
        '<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(https://t.example/x)"/></svg>',
        '<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
        "<div>not svg</div>",
        "<svg",
        '<svg xmlns="http://www.w3.org/2000/svg"><path d="' + "M0 0 " * 5000 + '"/></svg>',
    ],
)
def test_anything_but_a_plain_drawing_is_refused(svg: str) -> None:
    with pytest.raises(ValueError, match="inline SVG logo"):
        check_inline_svg(svg)
