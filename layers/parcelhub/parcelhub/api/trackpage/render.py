"""The tracking page as data (:func:`page_view`, the JSON twin) and as HTML (Jinja2, autoescaped).

One small HTML answer per request: the CSS and the copy button's script are inline, no third-party
asset is loaded, and a Content-Security-Policy allows exactly that inline style and script (by hash),
images from https or data URIs (the brand's logo) and forms posting back to the page's own origin.
Jinja2 is imported on first render only, so the other routes of the function do not pay for it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from parcelhub.api.trackpage.texts import (
    HEADLINES,
    MILESTONE_NAMES,
    STATUS_NAMES,
    SUB_STATUS_NAMES,
    UI,
    Lang,
)
from parcelhub.api.views import (
    BrandView,
    CarrierView,
    DeliveryWindowView,
    MilestoneView,
    ProofOfDeliveryView,
    TimelineEntryView,
    TrackingPageView,
)
from parcelhub.app.tracking_page import TimelineEntry, TrackingPage
from parcelhub.domain.branding import Branding, TrackingPageSettings
from parcelhub.domain.models import CHINA_TZ, DeliveryWindow
from parcelhub.domain.progress import MILESTONES
from parcelhub.domain.status import SubStatus

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

# ------------------------------------------------------------------------------------------ data


@dataclass(frozen=True, slots=True)
class CarrierInfo:
    zh: str
    en: str
    phone: str | None

    def name(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh


@functools.cache
def carriers() -> dict[str, CarrierInfo]:
    """The carrier data table (``carriers.json``): names in both languages, customer-service number."""
    raw = json.loads((HERE / "carriers.json").read_text(encoding="utf-8"))
    return {code: CarrierInfo(**entry) for code, entry in raw.items() if not code.startswith("_")}


def local(moment: datetime) -> datetime:
    return moment.astimezone(CHINA_TZ)


def format_time(moment: datetime, lang: Lang) -> str:
    at = local(moment)
    if lang == "en":
        return at.strftime("%d %b %Y, %H:%M").lstrip("0")
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}"


def _day(moment: datetime, lang: Lang) -> str:
    if lang == "en":
        return f"{moment:%a} {moment.day} {moment:%b}"
    weekdays = "一二三四五六日"
    return f"{moment.month}月{moment.day}日（周{weekdays[moment.weekday()]}）"


def window_text(window: DeliveryWindow, lang: Lang) -> str:
    """``11月13日（周四） 09:00–18:00`` within a day; ``11月13日（周四） – 11月14日（周五）`` across days."""
    earliest, latest = local(window.earliest), local(window.latest)
    if earliest.date() == latest.date():
        return f"{_day(earliest, lang)} {earliest:%H:%M}–{latest:%H:%M}"
    return f"{_day(earliest, lang)} – {_day(latest, lang)}"


def _window_view(window: DeliveryWindow, lang: Lang) -> DeliveryWindowView:
    earliest, latest = local(window.earliest), local(window.latest)
    likely = local(window.most_likely) if window.most_likely else None
    return DeliveryWindowView(
        earliest=earliest,
        latest=latest,
        text=window_text(window, lang),
        most_likely=likely,
        most_likely_text=_day(likely, lang) if likely and earliest.date() != latest.date() else None,
        confidence=window.confidence,
        basis=window.basis,
    )


def _sub_text(sub_status: SubStatus, lang: Lang) -> str | None:
    return None if sub_status is SubStatus.NONE else SUB_STATUS_NAMES[sub_status](lang)


def _entry_view(entry: TimelineEntry, lang: Lang) -> TimelineEntryView:
    return TimelineEntryView(
        occurred_at=local(entry.occurred_at),
        status=entry.status,
        status_text=STATUS_NAMES[entry.status](lang),
        sub_status=entry.sub_status,
        sub_status_text=_sub_text(entry.sub_status, lang),
        text=entry.text,
        location=entry.location,
    )


def brand_view(brand: Branding) -> BrandView:
    return BrandView(
        name=brand.name,
        logo_url=brand.logo_url,
        primary_color=brand.accent,
        support_phone=brand.support_phone,
        support_email=brand.support_email,
        support_url=brand.support_url,
    )


def page_view(page: TrackingPage, lang: Lang) -> TrackingPageView:
    """The page as data, in ``lang``: the JSON twin, and what the HTML template renders."""
    reached = page.progress.index
    milestones = [
        MilestoneView(
            code=milestone,
            text=MILESTONE_NAMES[milestone](lang),
            state="done" if i < reached else "current" if i == reached else "upcoming",
        )
        for i, milestone in enumerate(MILESTONES)
    ]
    carrier = None
    if page.carrier is not None and page.tracking_number:
        info = carriers().get(page.carrier.value)
        carrier = CarrierView(
            code=page.carrier,
            name=info.name(lang) if info else page.carrier.value,
            tracking_number=page.tracking_number,
            service_phone=info.phone if info else None,
        )
    window = page.estimated_delivery
    proof = page.proof
    return TrackingPageView(
        lang=lang,
        status=page.status,
        status_text=STATUS_NAMES[page.status](lang),
        sub_status=page.sub_status,
        sub_status_text=_sub_text(page.sub_status, lang),
        headline=HEADLINES[page.status](lang),
        interrupted=page.progress.interrupted,
        estimated_delivery=_window_view(window, lang) if window else None,
        milestones=milestones,
        timeline=[_entry_view(e, lang) for e in page.timeline],
        carrier=carrier,
        destination=" ".join(p for p in (page.destination_province, page.destination_city) if p)
        if page.destination_province != page.destination_city
        else page.destination_city,
        proof_of_delivery=ProofOfDeliveryView(
            delivered_at=local(proof.delivered_at),
            received=SUB_STATUS_NAMES[proof.sub_status](lang)
            if proof.sub_status is not SubStatus.NONE
            else STATUS_NAMES[page.status](lang),
            location=proof.location,
            text=proof.text,
        )
        if proof
        else None,
        returns_url=page.returns_url,
        brand=brand_view(page.settings.brand),
        last_event_at=local(page.last_event_at) if page.last_event_at else None,
        updated_at=local(page.updated_at),
    )


# ------------------------------------------------------------------------------------------ HTML


@dataclass(frozen=True, slots=True)
class Html:
    body: str
    csp: str


@functools.cache
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@functools.cache
def _script() -> str:
    return (TEMPLATES / "copy.js").read_text(encoding="utf-8").strip()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _csp(style: str, script: str | None) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src {_sha256(style)}",
            f"script-src {_sha256(script)}" if script else "script-src 'none'",
            "img-src https: data:",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _texts(lang: Lang, brand: Branding) -> SimpleNamespace:
    """The page's words as attributes (a dict's own methods would shadow keys such as ``copy``)."""
    texts = {key: text(lang) for key, text in UI.items()}
    texts["support"] = texts["support"].replace("{brand}", brand.name)
    return SimpleNamespace(**texts)


def _render(template: str, *, lang: Lang, settings: TrackingPageSettings, script: bool, **context: Any) -> Html:
    env = _environment()
    brand = settings.brand
    style = env.get_template("style.css.j2").render(accent=brand.accent).strip()
    code = _script() if script else None
    body = env.get_template(template).render(
        lang=lang,
        other_lang="zh-CN" if lang == "en" else "en",
        ui=_texts(lang, brand),
        brand=brand,
        style=style,
        script=code,
        **context,
    )
    return Html(body=body, csp=_csp(style, code))


def render_page(page: TrackingPage, view: TrackingPageView) -> Html:
    return _render(
        "page.html.j2",
        lang=view.lang,
        settings=page.settings,
        script=view.carrier is not None,
        view=view,
        token=page.token,
        when=lambda moment: format_time(moment, view.lang),
    )


def render_lookup(lang: Lang, settings: TrackingPageSettings, *, error: str | None = None, order_id: str = "") -> Html:
    return _render("lookup.html.j2", lang=lang, settings=settings, script=False, error=error, order_id=order_id)


def render_not_found(lang: Lang, settings: TrackingPageSettings) -> Html:
    return _render("not_found.html.j2", lang=lang, settings=settings, script=False)
