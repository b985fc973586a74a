"""The sandbox controls the demo relies on: stalling a parcel (``POST /_sandbox/stall``) and a push log
that says what each push carried. Against the real Kdniao sandbox over loopback, pushing to a real
webhook receiver."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sandbox.carriers.base import HAPPY_PATH
from sandbox.carriers.kdniao import KdniaoSandbox

pytestmark = pytest.mark.integration


class _Receiver(BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        body = b'{"EBusinessID":"test","UpdateTime":"2024-11-11 10:00:00","Success":true,"Reason":""}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/webhooks/kdniao", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def sandbox(webhook: tuple[str, list[bytes]]) -> Iterator[KdniaoSandbox]:
    box = KdniaoSandbox("test", "test-app-key", webhook_url=webhook[0], stage_seconds=1.0, seed=7)
    box.push_mode.mode = "manual"  # the test drives the clock
    with box:
        yield box


def _parcel(box: KdniaoSandbox, number: str, order_id: str) -> None:
    reply = requests.post(
        f"{box.url}/_sandbox/parcels",
        json={"carrier": "ZTO", "tracking_number": number, "order_id": order_id, "subscribed": True},
        timeout=5,
    )
    assert reply.status_code == 201


def test_a_stall_for_an_order_applies_when_its_waybill_is_issued(sandbox: KdniaoSandbox) -> None:
    # Given the demo asks to stall an order whose waybill is not issued yet
    reply = requests.post(f"{sandbox.url}/_sandbox/stall", json={"order_id": "shp_2", "after": 2}, timeout=5)
    assert reply.status_code == 202
    assert reply.json()["pending"] is True
    # When the waybill is issued and the whole lifecycle is due
    _parcel(sandbox, "73100000000302", "shp_2")
    parcel = sandbox.parcels["73100000000302"]
    sandbox.advance(now=parcel.created_at + 100)
    # Then the parcel stops after two scans, and the listing says so
    listed = {p["tracking_number"]: p for p in requests.get(f"{sandbox.url}/_sandbox/parcels", timeout=5).json()}
    assert listed["73100000000302"]["scans"] == ["picked_up", "in_transit"]
    assert listed["73100000000302"]["stall_after"] == 2


def test_a_stall_never_rewinds_a_parcel(sandbox: KdniaoSandbox) -> None:
    # Given a parcel already three scans along
    _parcel(sandbox, "73100000000303", "shp_3")
    parcel = sandbox.parcels["73100000000303"]
    sandbox.advance(now=parcel.created_at + 3.5)
    assert len(parcel.scans) == 3
    # When it is stalled "after 1" by tracking number
    reply = requests.post(
        f"{sandbox.url}/_sandbox/stall", json={"tracking_number": "73100000000303", "after": 1}, timeout=5
    )
    # Then it stops where it is
    assert reply.status_code == 200
    assert reply.json()["parcels"] == [{"tracking_number": "73100000000303", "stall_after": 3, "scans": 3}]
    sandbox.advance(now=parcel.created_at + 100)
    assert len(parcel.scans) == 3


def test_stall_control_rejects_bad_requests(sandbox: KdniaoSandbox) -> None:
    assert requests.post(f"{sandbox.url}/_sandbox/stall", json={"after": 1}, timeout=5).status_code == 400
    assert (
        requests.post(f"{sandbox.url}/_sandbox/stall", json={"order_id": "x", "after": -1}, timeout=5).status_code
        == 400
    )
    unknown = requests.post(f"{sandbox.url}/_sandbox/stall", json={"tracking_number": "nope", "after": 1}, timeout=5)
    assert unknown.status_code == 404


def test_the_push_log_says_what_each_push_carried(sandbox: KdniaoSandbox, webhook: tuple[str, list[bytes]]) -> None:
    # Given every push duplicated and shuffled
    requests.post(
        f"{sandbox.url}/_sandbox/push-mode",
        json={"mode": "manual", "duplicate_rate": 1.0, "shuffle": True},
        timeout=5,
    )
    _parcel(sandbox, "73100000000304", "shp_4")
    parcel = sandbox.parcels["73100000000304"]
    # When the whole lifecycle is pushed at once
    sandbox.advance(now=parcel.created_at + 100)
    log = requests.get(f"{sandbox.url}/_sandbox/pushes", timeout=5).json()
    # Then the log has the original and its duplicate, each with the tracking number, the scans and times
    assert len(log) == 2 == len(webhook[1])
    assert sorted(p["duplicate"] for p in log) == [False, True]
    for push in log:
        assert push["tracking_number"] == "73100000000304"
        assert push["order_id"] == "shp_4"
        assert sorted(stage for stage, _ in push["scans"]) == sorted(s.value for s in HAPPY_PATH)
        assert push["status"] == 200
        assert push["sent_at"] <= push["time"]
    # and the webhook received those pushes: Kdniao snapshots naming the same number
    assert all("73100000000304" in urllib.parse.unquote_plus(body.decode()) for body in webhook[1])
