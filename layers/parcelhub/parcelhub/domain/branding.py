"""The brand's tracking page as configuration (``HubConfig.tracking_page``), validated.

Pure: colour contrast by WCAG 2.x (relative luminance), a whitelist check of an inline SVG logo, and the
settings models. A primary colour without AA contrast against the page's white background (4.5:1, the
ratio for normal text: the colour is used for links, the copy button and the header band under white
text) is not refused — the page falls back to :data:`DEFAULT_PRIMARY` and says so
(:attr:`Branding.primary_fell_back`), so a brand's typo never takes its tracking page down.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

#: The page background (every text colour is checked against it).
BACKGROUND = "#FFFFFF"
#: The fallback primary colour: 6.7:1 against white.
DEFAULT_PRIMARY = "#0B5CAD"
#: WCAG 2.x level AA for normal text.
AA_CONTRAST = 4.5

HexColour = Annotated[str, StringConstraints(pattern=r"^#(?:[0-9A-Fa-f]{3}){1,2}$")]
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://[^\s\"'<>]{3,500}$")]
ServiceNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 \-]{2,19}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s\"'<>]{1,64}@[^@\s\"'<>]{1,190}\.[A-Za-z]{2,24}$")]

# ------------------------------------------------------------------------------------------ contrast


def normalise_hex(colour: str) -> str:
    """``#abc`` -> ``#AABBCC``."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", digits):
        raise ValueError(f"not a hex colour: {colour!r}")
    return "#" + digits.upper()


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB hex colour (0 = black, 1 = white)."""
    digits = normalise_hex(colour)[1:]
    channels = []
    for i in (0, 2, 4):
        c = int(digits[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """``(L1 + 0.05) / (L2 + 0.05)`` with L1 the lighter: 1.0 (same) to 21.0 (black on white)."""
    a, b = relative_luminance(first), relative_luminance(second)
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


# ------------------------------------------------------------------------------------------ inline SVG

_SVG_NS = "http://www.w3.org/2000/svg"
#: Drawing elements only: no script, foreignObject, use/image (external references), animation or style.
_SVG_ELEMENTS = frozenset(
    {
        "svg",
        "g",
        "path",
        "circle",
        "ellipse",
        "rect",
        "line",
        "polyline",
        "polygon",
        "text",
        "tspan",
        "title",
        "desc",
        "defs",
        "linearGradient",
        "radialGradient",
        "stop",
        "clipPath",
    }
)
_SVG_ATTRIBUTES = frozenset(
    {
        "viewBox",
        "width",
        "height",
        "x",
        "y",
        "x1",
        "x2",
        "y1",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "d",
        "points",
        "fill",
        "fill-rule",
        "fill-opacity",
        "stroke",
        "stroke-width",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-opacity",
        "opacity",
        "transform",
        "id",
        "offset",
        "stop-color",
        "stop-opacity",
        "gradientUnits",
        "gradientTransform",
        "clip-path",
        "clip-rule",
        "font-size",
        "font-family",
        "font-weight",
        "text-anchor",
        "role",
        "aria-hidden",
        "aria-label",
        "focusable",
        "preserveAspectRatio",
        "version",
    }
)
SVG_MAX_BYTES = 20_000


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def check_inline_svg(markup: str) -> str:
    """Return ``markup`` when it is a plain drawing (whitelisted elements and attributes, no external
    reference, no DTD); raise ``ValueError`` naming what is not allowed otherwise."""
    text = markup.strip()
    if len(text.encode("utf-8")) > SVG_MAX_BYTES:
        raise ValueError(f"inline SVG logo is larger than {SVG_MAX_BYTES} bytes")
    if re.search(r"<!|<\?", text):
        raise ValueError("inline SVG logo must not contain a DTD, entity, comment or processing instruction")
    import defusedxml.ElementTree as SafeET  # only when a brand configures an inline logo
    from defusedxml import DefusedXmlException

    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ValueError(f"inline SVG logo must not contain a DTD or entities: {exc}") from None
    except SafeET.ParseError as exc:
        raise ValueError(f"inline SVG logo is not well-formed XML: {exc}") from None
    if _local(root.tag) != "svg" or (root.tag.startswith("{") and not root.tag.startswith("{" + _SVG_NS)):
        raise ValueError("inline SVG logo must be one <svg> element")
    for element in root.iter():
        name = _local(element.tag)
        if name not in _SVG_ELEMENTS:
            raise ValueError(f"inline SVG logo: element <{name}> is not allowed")
        for attribute, value in element.attrib.items():
            local = _local(attribute)
            if local not in _SVG_ATTRIBUTES:
                raise ValueError(f"inline SVG logo: attribute {local!r} is not allowed")
            if re.search(r"url\s*\((?!\s*#)|javascript:|data:", value, re.I):
                raise ValueError(f"inline SVG logo: attribute {local!r} refers outside the drawing")
    return text


# ------------------------------------------------------------------------------------------ settings


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Branding(_Settings):
    """Who the tracking page speaks for."""

    name: str = Field("parcelhub", min_length=1, max_length=60)
    #: an https image URL, or ``logo_svg``: an inline SVG drawing (checked by :func:`check_inline_svg`)
    logo_url: HttpsUrl | None = None
    logo_svg: str | None = None
    primary_color: HexColour = DEFAULT_PRIMARY
    support_phone: ServiceNumber | None = None
    support_email: Email | None = None
    support_url: HttpsUrl | None = None

    @field_validator("logo_svg")
    @classmethod
    def _svg(cls, value: str | None) -> str | None:
        return check_inline_svg(value) if value else None

    @field_validator("primary_color")
    @classmethod
    def _hex(cls, value: str) -> str:
        return normalise_hex(value)

    @property
    def primary_fell_back(self) -> bool:
        return contrast_ratio(self.primary_color, BACKGROUND) < AA_CONTRAST

    @property
    def accent(self) -> str:
        """The colour the page uses: the brand's when it meets AA against the background, else the default."""
        return DEFAULT_PRIMARY if self.primary_fell_back else self.primary_color


class TrackingPageSettings(_Settings):
    """The customer tracking page (``GET /t/{token}``) and its lookup form (``/track``)."""

    brand: Branding = Field(default_factory=Branding)
    #: returns are enabled when set: the delivered page links here (``{order_id}`` and
    #: ``{tracking_number}`` are replaced, URL-encoded)
    returns_url: HttpsUrl | None = None
    #: the brand's own domain in front of the API (``https://track.brand.example``); default: the API's URL
    link_base_url: HttpsUrl | None = None
    #: ``Cache-Control: max-age`` of a tracking page
    cache_seconds: int = Field(60, ge=0, le=3600)
    #: lookup attempts allowed per window, per source IP and per order id
    lookup_per_ip: int = Field(30, ge=1, le=10_000)
    lookup_per_order: int = Field(5, ge=1, le=100)
    lookup_window_seconds: int = Field(3600, ge=60, le=86_400)
