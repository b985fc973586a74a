"""The customer tracking page in a real browser: Debian's Chromium driven by Playwright, checked by axe-core.

The page is served in-process: the OMS API handler (``functions/shipments_api``) behind the local stack's
HTTP API server, with the routes template.yaml gives the ShipmentsApi function, under the ``dev`` stage
(relative links must survive it), on moto with one shipment seeded in each canonical status and a
configured brand. For every status, in both languages, at phone (390 px) and desktop (1280 px) widths,
the page renders with no console error (a Content-Security-Policy violation is one), no serious or
critical axe violation, one ``aria-current="step"``, the headline in plain words and nothing wider than
the screen. The copy button copies the tracking number; the lookup form refuses wrong digits and finds
the parcel with the right ones. Chromium is installed by the ``chromium`` fixture where it can be;
the suite skips only where it cannot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from parcelhub.api.trackpage.texts import HEADLINES, UI, Lang
from parcelhub.domain.status import Status

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
SECRET = "e2e-tracking-link-secret-0123456789abcdef"
STAGE = "dev"
WIDTHS = {"phone": 390, "desktop": 1280}
BRAND = {
    "name": "拾光咖啡 Shiguang Coffee",
    "primary_color": "#8A3B12",
    "support_phone": "400-820-1234",
    "support_email": "help@shiguang.example",
    "logo_svg": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" cy="12" r="10" '
    'fill="#fff"/><path d="M7 12h10" stroke="#8A3B12" stroke-width="2"/></svg>',
}


@dataclass
class TrackingSite:
    base: str  # http://127.0.0.1:<port>/dev
    tokens: dict[Status, str]
    tracking_numbers: dict[Status, str]
    order_ids: dict[Status, str]

    def page(self, status: Status, lang: Lang) -> str:
        return f"{self.base}/t/{self.tokens[status]}?lang={lang}"


class _Context:
    function_name = "parcelhub-e2e-shipments-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:parcelhub-e2e-shipments-api"
    aws_request_id = "e2e"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def _template_routes() -> list[Any]:
    """The ShipmentsApi function's HTTP API routes, as template.yaml declares them."""
    from sandbox.local.template import HttpRoute, load_template

    function = load_template(ROOT / "template.yaml")["Resources"]["ShipmentsApiFunction"]
    routes = []
    for name, event in function["Properties"]["Events"].items():
        if event["Type"] == "HttpApi":
            props = event["Properties"]
            routes.append(
                HttpRoute("ShipmentsApiFunction", name, "ParcelhubApi", props["Method"], props["Path"], STAGE)
            )
    return routes


@pytest.fixture(scope="module")
def site() -> Iterator[TrackingSite]:
    """moto + the hub's table, secret and config + the API handler behind a loopback HTTP server."""
    from moto import mock_aws

    from functions.shipments_api.handler import lambda_handler
    from parcelhub import composition
    from sandbox.local.http_api import HttpApiServer
    from sandbox.local.secret_parts import create_secrets, secret_values
    from sandbox.local.stack import FAKE_CREDENTIALS
    from tests.conftest import table_spec
    from tests.fakes.journeys import seed

    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(
        {
            **FAKE_CREDENTIALS,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "parcelhub",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "STAGE": STAGE,
            "TABLE_NAME": "parcelhub-e2e",
            "CONFIG_PARAMETER": "/parcelhub/e2e/config",
        }
    )
    server = HttpApiServer(0)
    try:
        with mock_aws():
            boto3.client("dynamodb", region_name=REGION).create_table(**table_spec("ParcelhubTable", "parcelhub-e2e"))
            os.environ.update(
                create_secrets(
                    boto3.client("secretsmanager", region_name=REGION), "parcelhub/e2e", secret_values({}, [], SECRET)
                )
            )
            config = {"tracking_page": {"brand": BRAND, "returns_url": "https://shiguang.example/returns/{order_id}"}}
            boto3.client("ssm", region_name=REGION).put_parameter(
                Name="/parcelhub/e2e/config", Type="String", Value=json.dumps(config)
            )
            os.environ["PUBLIC_BASE_URL"] = f"{server.url}/{STAGE}"
            composition.reset()
            links = composition.tracking_links()
            assert links is not None
            store, now = composition.store(), datetime.now(UTC)
            tokens, numbers, orders = {}, {}, {}
            for i, status in enumerate(Status):
                shipment = seed(store, status, f"shp_e2e{i:04d}", f"SO-E2E-{i:04d}", now=now, links=links)
                tokens[status] = links.token(shipment.shipment_id)
                numbers[status] = shipment.tracking_number or ""
                orders[status] = shipment.order_id
            server.configure(
                _template_routes(), lambda _function, event: lambda_handler(event, _Context()), {"ParcelhubApi": "e2e"}
            )
            server.start()
            yield TrackingSite(f"{server.url}/{STAGE}", tokens, numbers, orders)
    finally:
        server.stop()
        composition.reset()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


class Console:
    """Console errors and uncaught exceptions of a page (a CSP violation is logged as an error)."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))


def _serious(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _problems(page: Any, console: Console, *, site: TrackingSite, status: Status, lang: Lang, width: int) -> list[str]:
    """What is wrong with the page of ``status`` (empty when nothing is)."""
    console.errors.clear()
    response = page.goto(site.page(status, lang), wait_until="load")
    if response is None or response.status != 200:
        return [f"HTTP {response.status if response else None}"]
    found = []
    # the status as a headline in plain words, in the language asked for
    if page.locator("html").get_attribute("lang") != lang:
        found.append(f"html lang is {page.locator('html').get_attribute('lang')}")
    if page.locator("h1").inner_text().strip() != HEADLINES[status](lang):
        found.append(f"headline {page.locator('h1').inner_text()!r}")
    # the progress bar: exactly one current step, announced without colour
    if page.locator('ol.progress [aria-current="step"]').count() != 1:
        found.append("not exactly one aria-current step")
    # nothing wider than the screen
    if page.evaluate("document.documentElement.scrollWidth") > width:
        found.append("wider than the screen")
    # the copy button appears once its script ran (allowed by the CSP's hash) when there is a number
    if site.tracking_numbers[status] and not page.locator("button.copy").is_visible():
        found.append("no copy button")
    found += [f"axe: {violation}" for violation in _serious(page)]
    found += [f"console: {error}" for error in console.errors]
    return found


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_status_renders_cleanly_and_accessibly(site: TrackingSite, browser: Any, lang: Lang, width: str) -> None:
    # one browser context per language and width; every canonical status's page in it
    context = browser.new_context(viewport={"width": WIDTHS[width], "height": 900}, locale=lang)
    page = context.new_page()
    console = Console(page)
    try:
        problems = {
            s.value: found
            for s in Status
            if (found := _problems(page, console, site=site, status=s, lang=lang, width=WIDTHS[width]))
        }
    finally:
        context.close()
    assert problems == {}


def test_the_copy_button_copies_the_tracking_number(site: TrackingSite, browser: Any) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    console = Console(page)
    try:
        page.goto(site.page(Status.IN_TRANSIT, "zh-CN"))
        page.get_by_role("button", name=UI["copy_button"]("zh-CN")).click()
        status = page.locator("#copy-status")
        status.wait_for(state="attached")
        page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")
        assert status.inner_text() == UI["copied"]("zh-CN")
        assert page.evaluate("navigator.clipboard.readText()") == site.tracking_numbers[Status.IN_TRANSIT]
        assert console.errors == []
    finally:
        context.close()


def test_the_lookup_form_refuses_wrong_digits_and_finds_the_parcel(site: TrackingSite, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    console = Console(page)
    order_id = site.order_ids[Status.OUT_FOR_DELIVERY]
    try:
        page.goto(f"{site.base}/track?lang=en")
        assert _serious(page) == []
        # wrong digits: the same form again, with the uniform message announced, and no page
        page.get_by_label(UI["order_id"]("en")).fill(order_id)
        page.get_by_label(UI["digits"]("en")).fill("1234")
        with page.expect_navigation():
            page.get_by_role("button", name=UI["submit"]("en")).click()
        assert page.get_by_role("alert").inner_text() == UI["lookup_refused"]("en")
        assert "/t/" not in page.url
        assert _serious(page) == []
        # the right digits (the receiver phone's last four): the tracking page of that parcel
        page.get_by_label(UI["digits"]("en")).fill("6057")
        with page.expect_navigation():
            page.get_by_role("button", name=UI["submit"]("en")).click()
        assert page.url == f"{site.base}/t/{site.tokens[Status.OUT_FOR_DELIVERY]}?lang=en"
        assert page.locator("h1").inner_text() == HEADLINES[Status.OUT_FOR_DELIVERY]("en")
        # the refusal answered 404 (one console line for it); nothing else went wrong
        assert [e for e in console.errors if "404" not in e] == []
    finally:
        context.close()
