"""The carrier webhook handler in-process against moto, fed by the real sandboxes' pushes over loopback."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from functions.carrier_webhook.handler import receive
from parcelhub.app.envelopes import PushEnvelope, parse_envelope
from parcelhub.domain.models import Carrier, Provider
from sandbox.carriers.base import SandboxParcel, Stage
from sandbox.carriers.kdniao import KdniaoSandbox
from sandbox.carriers.kuaidi100 import Kuaidi100Sandbox
from sandbox.carriers.sf import SfSandbox

from .conftest import KDNIAO, KUAIDI100, SF, SF_TOKEN, Hub, Sandboxes, WebhookBridge

pytestmark = pytest.mark.integration

CASES = [
    (Provider.KDNIAO, Carrier.ZTO, "73100000000101"),
    (Provider.SF, Carrier.SF, "SF1400000000101"),
    (Provider.KUAIDI100, Carrier.YTO, "YT7400000000101"),
]


def register(box: Any, carrier: Carrier, number: str) -> None:
    box.track(SandboxParcel(carrier=carrier.value, tracking_number=number, order_id=f"ORD-{number}", subscribed=True))


def drain_all(hub: Hub) -> list[dict[str, Any]]:
    messages = []
    while batch := hub.receive():
        messages += batch
        for m in batch:
            hub.sqs.delete_message(QueueUrl=hub.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return messages


@pytest.mark.parametrize(("provider", "carrier", "number"), CASES, ids=[c[0].value for c in CASES])
def test_a_correctly_signed_push_is_enqueued_raw_and_acknowledged_in_the_providers_format(
    hub: Hub, sandboxes: Sandboxes, provider: Provider, carrier: Carrier, number: str
) -> None:
    # Given the provider's sandbox pushing a signed scan to our webhook
    box = sandboxes.of(provider)
    register(box, carrier, number)
    pushed = box.build_push([(box.parcels[number], [box.add_scan(box.parcels[number], Stage.PICKED_UP)])])[0]
    # When it is delivered over HTTP
    status = box.send(pushed)
    # Then the provider gets its own success reply
    assert status == 200
    reply = box.push_log[-1]["reply"]
    if provider is Provider.KDNIAO:
        assert json.loads(reply)["Success"] is True
        assert json.loads(reply)["EBusinessID"] == KDNIAO["ebusiness_id"]
    elif provider is Provider.SF:
        assert json.loads(reply) == {"return_code": "0000", "return_msg": "成功"}
    else:
        assert json.loads(reply) == {"result": True, "returnCode": "200", "message": "成功"}
    # And exactly one message is queued, carrying the raw push byte for byte
    messages = drain_all(hub)
    assert len(messages) == 1
    envelope = parse_envelope(messages[0]["Body"])
    assert isinstance(envelope, PushEnvelope)
    assert envelope.provider is provider
    assert base64.b64decode(envelope.body_b64) == pushed.body
    if provider is Provider.SF:  # the URL token is a credential: only its digest is queued
        assert envelope.path_params == {"token_sha256": hashlib.sha256(SF_TOKEN.encode()).hexdigest()}
        assert SF_TOKEN not in messages[0]["Body"]


@pytest.mark.parametrize("provider", [Provider.KDNIAO, Provider.SF, Provider.KUAIDI100], ids=lambda p: p.value)
def test_a_push_signed_with_the_wrong_key_or_token_is_refused_and_nothing_is_enqueued(
    hub: Hub,
    bridge: WebhookBridge,
    provider: Provider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a sandbox holding the wrong key (Kdniao AppKey, Kuaidi100 salt) or the wrong SF URL token
    carrier, number = {
        Provider.KDNIAO: (Carrier.ZTO, "73100000000201"),
        Provider.SF: (Carrier.SF, "SF1400000000201"),
        Provider.KUAIDI100: (Carrier.YTO, "YT7400000000201"),
    }[provider]
    impostor: Any = {
        Provider.KDNIAO: lambda: KdniaoSandbox(
            KDNIAO["ebusiness_id"], "not-the-app-key", webhook_url=bridge.url + "/v1/webhooks/kdniao"
        ),
        Provider.SF: lambda: SfSandbox(
            **SF, push_token="wrong-token-0123456789", webhook_url=bridge.url + "/v1/webhooks/sf"
        ),
        Provider.KUAIDI100: lambda: Kuaidi100Sandbox(
            KUAIDI100["key"], KUAIDI100["customer"], "not-the-salt", webhook_url=bridge.url + "/v1/webhooks/kuaidi100"
        ),
    }[provider]()
    impostor.push_mode.mode = "manual"
    impostor.start()
    try:
        register(impostor, carrier, number)
        push = impostor.build_push(
            [(impostor.parcels[number], [impostor.add_scan(impostor.parcels[number], Stage.PICKED_UP)])]
        )[0]
        # When it pushes
        status = impostor.send(push)
    finally:
        impostor.stop()
    # Then 401 (403 for the SF URL token) with the provider's failure body, and nothing queued
    assert status == (403 if provider is Provider.SF else 401)
    reply = json.loads(impostor.push_log[-1]["reply"])
    assert reply.get("Success", reply.get("result", reply.get("return_code"))) in (False, "1000")
    assert hub.queued() == 0
    assert drain_all(hub) == []
    # And a WebhookRejected metric with the provider dimension was emitted
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"WebhookRejected"' in line]
    assert any(m.get("provider") == provider.value for m in emitted)


def test_an_unreadable_body_gets_400_and_nothing_is_enqueued(hub: Hub, bridge: WebhookBridge) -> None:
    # Given requests whose body cannot be read: broken base64, an empty form, a non-JSON SF body
    broken = WebhookBridge.event("/v1/webhooks/kdniao", {"Content-Type": "application/x-www-form-urlencoded"}, b"")
    broken["body"] = "%%% not base64 %%%"
    empty = WebhookBridge.event("/v1/webhooks/kuaidi100", {"Content-Type": "application/x-www-form-urlencoded"}, b"")
    no_form = WebhookBridge.event(
        "/v1/webhooks/kdniao", {"Content-Type": "application/x-www-form-urlencoded"}, b"hello=world"
    )
    sf = WebhookBridge.event(f"/v1/webhooks/sf/{SF_TOKEN}", {"Content-Type": "application/json"}, b"{not json")
    # When they reach the webhook
    statuses = [receive(event)["statusCode"] for event in (broken, empty, no_form, sf)]
    # Then each is a 400 and nothing is queued
    assert statuses == [400, 400, 400, 400]
    assert hub.queued() == 0


def test_an_unknown_provider_path_is_404(hub: Hub) -> None:
    event = WebhookBridge.event("/v1/webhooks/cainiao", {"Content-Type": "application/json"}, b"{}")
    assert receive(event)["statusCode"] == 404


def test_when_the_queue_is_unavailable_the_provider_gets_its_failure_reply_with_503(
    hub: Hub, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the tracking queue does not answer (deleted)
    from .conftest import reset_caches

    hub.sqs.delete_queue(QueueUrl=hub.queue_url)
    reset_caches()
    box = sandboxes.kdniao
    register(box, Carrier.ZTO, "73100000000301")
    # When a correctly signed push arrives
    status = box.send(
        box.build_push(
            [(box.parcels["73100000000301"], [box.add_scan(box.parcels["73100000000301"], Stage.PICKED_UP)])]
        )[0]
    )
    # Then Kdniao is told to push again: its failure body, HTTP 503
    assert status == 503
    assert json.loads(box.push_log[-1]["reply"])["Success"] is False


def kdniao_form(request_data: str, app_key: str = KDNIAO["app_key"]) -> bytes:
    from sandbox.carriers.kdniao import data_sign

    form = {"RequestData": request_data, "DataSign": data_sign(request_data, app_key), "RequestType": "102"}
    import urllib.parse

    return urllib.parse.urlencode(form).encode("ascii")


FORM = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
DEEP = "[" * 5000 + "]" * 5000  # json.loads would raise RecursionError


def hostile_events() -> dict[str, dict[str, Any]]:
    sf = f"/v1/webhooks/sf/{SF_TOKEN}"
    null = WebhookBridge.event(sf, {"Content-Type": "application/json"}, b"{}")
    null["body"] = None
    not_text = WebhookBridge.event(sf, {"Content-Type": "application/json"}, b"{}")
    not_text["body"] = {"an": "object"}
    bad_utf8 = WebhookBridge.event(sf, {"Content-Type": "application/octet-stream"}, b"\xff\xfe\x00garbage")
    return {
        "null body": null,
        "body not a string": not_text,
        "deep JSON (SF)": WebhookBridge.event(sf, {"Content-Type": "application/json"}, DEEP.encode()),
        "deep JSON in a signed Kdniao form": WebhookBridge.event("/v1/webhooks/kdniao", FORM, kdniao_form(DEEP)),
        "not UTF-8": bad_utf8,
        "huge body": WebhookBridge.event("/v1/webhooks/kdniao", FORM, kdniao_form("x" * 200_000)),
    }


@pytest.mark.parametrize("name", list(hostile_events()))
def test_an_unreadable_or_hostile_body_gets_the_providers_failure_reply_and_a_4xx_never_a_5xx(
    hub: Hub, name: str
) -> None:
    event = hostile_events()[name]
    response = receive(event)
    assert 400 <= response["statusCode"] < 500, (name, response)
    assert response["body"]  # the provider's failure reply
    assert hub.queued() == 0


def test_the_signature_is_checked_before_the_body_is_parsed(hub: Hub) -> None:
    # Given a deeply nested body signed with the wrong key, and one sent to the wrong SF token
    forged = WebhookBridge.event("/v1/webhooks/kdniao", FORM, kdniao_form(DEEP, app_key="not-the-key"))
    wrong_token = WebhookBridge.event(
        "/v1/webhooks/sf/" + "x" * 24, {"Content-Type": "application/json"}, DEEP.encode()
    )
    # Then they are refused as forged (401/403), not as unreadable: nothing of them was parsed first
    assert receive(forged)["statusCode"] == 401
    assert receive(wrong_token)["statusCode"] == 403
    assert hub.queued() == 0


@pytest.mark.parametrize(
    ("allowlists", "expected"),
    [
        ('{"kuaidi100": ["203.0.113.0/24"]}', 403),  # loopback is not in the provider's allowlist
        ('{"kuaidi100": ["203.0.113.0/24", "127.0.0.0/8"]}', 200),  # it is
        ('{"kdniao": ["203.0.113.0/24"]}', 200),  # another provider's allowlist does not apply
        ("{}", 200),  # off by default
    ],
    ids=["outside", "inside", "other-provider", "off"],
)
def test_a_providers_source_allowlist_refuses_correctly_signed_pushes_from_elsewhere(  # noqa: PLR0917 - fixtures
    hub: Hub,
    sandboxes: Sandboxes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    allowlists: str,
    expected: int,
) -> None:
    from parcelhub.config import environment

    # Given an allowlist for Kuaidi100 (whose push signature carries no timestamp) and a correctly signed push
    monkeypatch.setenv("WEBHOOK_SOURCE_ALLOWLISTS", allowlists)
    environment.cache_clear()
    box = sandboxes.of(Provider.KUAIDI100)
    register(box, Carrier.YTO, "YT7400000000301")
    pushed = box.build_push(
        [(box.parcels["YT7400000000301"], [box.add_scan(box.parcels["YT7400000000301"], Stage.PICKED_UP)])]
    )
    # When it arrives from 127.0.0.1
    status = box.send(pushed[0])
    environment.cache_clear()
    # Then a source outside the allowlist gets 403 and nothing is queued; inside (or no allowlist) it is accepted
    assert status == expected
    assert len(drain_all(hub)) == (0 if expected == 403 else 1)
    if expected == 403:
        emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"WebhookRejected"' in line]
        assert any(m.get("provider") == "kuaidi100" for m in emitted)


def test_an_allowlist_that_is_not_valid_json_of_networks_fails_loudly() -> None:
    from pydantic import ValidationError

    from parcelhub.config import Environment

    with pytest.raises(ValidationError, match="WEBHOOK_SOURCE_ALLOWLISTS"):
        Environment.model_validate({"WEBHOOK_SOURCE_ALLOWLISTS": '{"kuaidi100": ["not-a-network"]}'})
