"""The tracking page's use cases on the in-memory store: what is read, counted and refused, and how the
page and its HTML come out (escaped, masked, in local time)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from parcelhub.api.trackpage.render import format_time, page_view, render_page, window_text
from parcelhub.app.tracking_page import (
    LinkNotFound,
    LookupRefused,
    TooManyAttempts,
    TrackingPagePorts,
    TrackingPageService,
)
from parcelhub.config import HubConfig
from parcelhub.domain.models import Carrier, DeliveryWindow, Provider, TrackingEvent
from parcelhub.domain.status import Status, state_of
from parcelhub.ports.store import TrackingClaim
from parcelhub.security.links import TrackingLinks
from tests.fakes.journeys import RECEIVER_PHONE, seed
from tests.fakes.store import InMemoryShipmentStore

NOW = datetime(2025, 11, 11, 8, 0, tzinfo=UTC)
LINKS = TrackingLinks("unit-test-tracking-link-secret-0123456789", "https://t.example")


class Spy(InMemoryShipmentStore):
    """The fake store, counting the tracking page's reads and counted attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[str] = Counter()

    def shipment_with_timeline(self, shipment_id: str, limit: int = 200) -> Any:
        self.reads["page"] += 1
        return super().shipment_with_timeline(shipment_id, limit)

    def find_order(self, order_id: str) -> Any:
        self.reads["order"] += 1
        return super().find_order(order_id)

    def count_attempt(self, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
        self.reads["attempt:" + key.split(":", 1)[0]] += 1
        return super().count_attempt(key, limit=limit, window_seconds=window_seconds, now=now)


def service(store: Spy, config: HubConfig | None = None, links: TrackingLinks | None = LINKS) -> TrackingPageService:
    return TrackingPageService(
        TrackingPagePorts(pages=store, counters=store, links=lambda: links, config=lambda: config or HubConfig())
    )


def test_a_forged_token_is_refused_without_a_read() -> None:
    store = Spy()
    seed(store, Status.IN_TRANSIT, "shp_a", "SO-A", now=NOW, links=LINKS)
    forged = TrackingLinks("someone-elses-secret-of-32-bytes-or-more").token("shp_a")
    with pytest.raises(LinkNotFound):
        service(store).page(forged)
    assert store.reads == Counter()


def test_without_a_secret_nothing_is_served() -> None:
    store = Spy()
    seed(store, Status.IN_TRANSIT, "shp_a", "SO-A", now=NOW, links=LINKS)
    with pytest.raises(LinkNotFound):
        service(store, links=None).page(LINKS.token("shp_a"))
    with pytest.raises(LookupRefused):
        service(store, links=None).lookup("SO-A", RECEIVER_PHONE[-4:], source="ip", now=NOW)


def test_a_lookup_counts_first_then_reads_once() -> None:
    store = Spy()
    seed(store, Status.IN_TRANSIT, "shp_a", "SO-A", now=NOW, links=LINKS)
    assert service(store).lookup("SO-A", RECEIVER_PHONE[-4:], source="ip", now=NOW) == LINKS.token("shp_a")
    assert store.reads == Counter({"attempt:ip": 1, "attempt:order": 1, "order": 1})
    for order, digits in (("SO-A", "0000"), ("SO-NOPE", "0000"), ("SO-A", "60571"), ("bad id!", "6057")):
        with pytest.raises(LookupRefused):
            service(store).lookup(order, digits, source="ip", now=NOW)


def test_a_throttled_lookup_reads_nothing() -> None:
    store = Spy()
    config = HubConfig.model_validate({"tracking_page": {"lookup_per_ip": 1}})
    seed(store, Status.IN_TRANSIT, "shp_a", "SO-A", now=NOW, links=LINKS)
    service(store, config).lookup("SO-A", RECEIVER_PHONE[-4:], source="ip", now=NOW)
    store.reads.clear()
    with pytest.raises(TooManyAttempts) as throttled:
        service(store, config).lookup("SO-A", RECEIVER_PHONE[-4:], source="ip", now=NOW)
    assert throttled.value.retry_after == 3600
    assert store.reads == Counter({"attempt:ip": 1})
    # the window passes: allowed again
    assert service(store, config).lookup("SO-A", RECEIVER_PHONE[-4:], source="ip", now=NOW + timedelta(hours=1))


def test_scan_texts_are_escaped_and_redacted_and_times_are_china_time() -> None:
    store = Spy()
    seed(store, Status.PICKED_UP, "shp_a", "SO-A", now=NOW, links=LINKS)
    shipment = store.get("shp_a")
    assert shipment.tracking_number
    claim = TrackingClaim("shp_a", "SO-A", "ZTO", shipment.tracking_number)
    store.append_events(
        claim,
        [
            TrackingEvent(
                carrier=Carrier.ZTO,
                provider=Provider.KDNIAO,
                tracking_number=shipment.tracking_number,
                occurred_at=datetime(2025, 11, 11, 16, 30, tzinfo=UTC),
                status=Status.IN_TRANSIT,
                raw_text='<img src=x onerror="alert(1)"> 联系 13800001111',
            )
        ],
    )
    page = service(store).page(LINKS.token("shp_a"))
    view = page_view(page, "zh-CN")
    html = render_page(page, view).body
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; 联系 138****1111" in html
    assert view.timeline[0].occurred_at.isoformat() == "2025-11-12T00:30:00+08:00"
    assert "2025年11月12日 00:30" in html


def test_delivery_windows_read_naturally() -> None:
    day = DeliveryWindow(earliest=datetime(2025, 11, 13, 1, tzinfo=UTC), latest=datetime(2025, 11, 13, 10, tzinfo=UTC))
    days = DeliveryWindow(earliest=datetime(2025, 11, 13, 1, tzinfo=UTC), latest=datetime(2025, 11, 14, 10, tzinfo=UTC))
    assert window_text(day, "zh-CN") == "11月13日（周四） 09:00–18:00"
    assert window_text(day, "en") == "Thu 13 Nov 09:00–18:00"
    assert window_text(days, "en") == "Thu 13 Nov – Fri 14 Nov"
    assert format_time(datetime(2025, 11, 3, 1, 5, tzinfo=UTC), "en") == "3 Nov 2025, 09:05"


def test_the_page_shows_the_estimated_window_and_its_most_likely_day() -> None:
    # Given a parcel in transit whose estimate spans two days, most likely the second
    store = Spy()
    seed(store, Status.PICKED_UP, "shp_e", "SO-E", now=NOW, links=LINKS)
    window = DeliveryWindow(
        earliest=datetime(2025, 11, 12, 16, tzinfo=UTC),  # 13 Nov 00:00 China time
        most_likely=datetime(2025, 11, 14, 3, tzinfo=UTC),
        latest=datetime(2025, 11, 14, 15, 59, 59, tzinfo=UTC),
        confidence=0.9,
        basis="lane:city:picked_up",
    )
    shipment = store.get("shp_e")
    assert shipment.tracking_number
    scan = TrackingEvent(
        carrier=Carrier.ZTO, provider=Provider.KDNIAO, tracking_number=shipment.tracking_number,
        occurred_at=NOW + timedelta(hours=1), status=Status.IN_TRANSIT, raw_text="快件已发往 上海转运中心",
    )  # fmt: skip
    store.apply_tracking_state(
        "shp_e", state_of(scan), last_event_text=scan.raw_text, stall=None, now=NOW, estimate=window
    )

    # When the page is rendered
    page = service(store).page(LINKS.token("shp_e"))
    view = page_view(page, "zh-CN")
    html = render_page(page, view).body

    # Then it shows the window and the most likely day, with the estimate's confidence and basis in the JSON
    assert view.estimated_delivery is not None
    assert view.estimated_delivery.text == "11月13日（周四） – 11月14日（周五）"
    assert view.estimated_delivery.most_likely_text == "11月14日（周五）"
    assert (view.estimated_delivery.confidence, view.estimated_delivery.basis) == (0.9, "lane:city:picked_up")
    assert "最可能: <time" in html
