"""Every published sample through the real webhook handler and the real normalizer (moto underneath).

Given a shipment claiming the sample's tracking number, when the sample arrives as the provider pushes it
(signed with the hub's test credentials) and, for answers, as the poller would enqueue it, then the
webhook acknowledges it in the provider's own format, the normalizer stores exactly the hand-written
events (``tests/fixtures/*/published/expected/``) and moves the shipment to the expected status, and no
``UnmappedCarrierCode`` metric fires.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.carrier_webhook.handler import receive
from parcelhub.app.envelopes import poll_envelope_json
from parcelhub.carriers.kdniao import parsers as kdniao_parsers
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kuaidi100 import parsers as kuaidi100_parsers
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.sf import parsers as sf_parsers
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import Provider
from tests.published import Sample, event_rows, in_order, push_request, query, query_answer, samples

from .conftest import KDNIAO, KUAIDI100, SF, SF_TOKEN, Hub, WebhookBridge

pytestmark = pytest.mark.integration

CREDENTIALS = {"app_key": KDNIAO["app_key"], "salt": KUAIDI100["salt"], "push_token": SF_TOKEN}
SAMPLES = samples()


def webhook_path(provider: Provider) -> str:
    return f"/v1/webhooks/sf/{SF_TOKEN}" if provider is Provider.SF else f"/v1/webhooks/{provider.value}"


#: before any published sample's first scan
SAMPLES_BEGIN = datetime(2000, 1, 1, tzinfo=UTC)


def accepted(provider: Provider, response: dict[str, Any]) -> bool:
    body = str(response["body"])
    if "xml" in str(response["headers"]["Content-Type"]):
        return "<Head>OK</Head>" in body
    reply = json.loads(body)
    return bool(reply.get("Success") is True or reply.get("result") is True or reply.get("return_code") == "0000")


def answer_events(sample: Sample) -> list[Any]:
    """What the poller enqueues for the sample's answer: the provider's own parser, the hub's settings."""
    body, asked = query_answer(sample), query(sample)
    if sample.provider is Provider.KDNIAO:
        settings = KdniaoSettings(**KDNIAO)
        return list(kdniao_parsers.parse_query_response(body, asked, settings, datetime.now(UTC)).events)
    if sample.provider is Provider.SF:
        return list(sf_parsers.parse_query_response(body, asked, SfSettings(**SF, push_token=SF_TOKEN)).events)
    return list(kuaidi100_parsers.parse_query_response(body, asked, Kuaidi100Settings(**KUAIDI100)).events)


def without_clock(rows: list[list[Any]]) -> list[list[Any]]:
    """A Kuaidi100 abort without traces is stamped when it is received: compare it without its time."""
    return [["(received)", *row[1:]] if row[3] == "abort" else row for row in rows]


@pytest.mark.parametrize("sample", SAMPLES, ids=str)
def test_a_published_sample_passes_the_webhook_and_the_normalizer(
    hub: Hub, sample: Sample, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a shipment claiming the sample's number (under the carrier we subscribed with), created before the
    # sample's scans (published years ago: scans dated before their shipment existed would be flagged)
    shipment_id = hub.shipment(sample.provider, sample.claim_carrier, sample.tracking_number, created_at=SAMPLES_BEGIN)
    before = hub.store.get(shipment_id).status
    # When the sample arrives as a push through the webhook ...
    if sample.is_push:
        request = push_request(sample, CREDENTIALS)
        response = receive(WebhookBridge.event(webhook_path(sample.provider), dict(request.headers), request.body))
        # Then the provider gets its own success reply (SF: in the shape of its push)
        assert response["statusCode"] == 200, response
        assert accepted(sample.provider, response), response
        xml_push = sample.provider is Provider.SF and sf_parsers.push_shape(request) in ("xml", "form")
        assert ("xml" in str(response["headers"]["Content-Type"])) is xml_push, response
    # ... and as a query answer the poller enqueues
    if sample.is_query:
        events = answer_events(sample)
        hub.sqs.send_message(
            QueueUrl=hub.queue_url, MessageBody=poll_envelope_json(sample.provider, events, datetime.now(UTC))
        )
    responses = hub.normalize()
    # Then no message failed, the timeline is the expected one (stored once), and so is the status
    assert all(not r.get("batchItemFailures") for r in responses), responses
    stored = hub.store.list_events(shipment_id)
    assert without_clock(event_rows(stored)) == without_clock(in_order(sample.expected["events"])), sample
    final = sample.expected["final"]
    shipment = hub.store.get(shipment_id)
    assert (shipment.status.value, shipment.sub_status.value) == (tuple(final) if final else (before.value, "NONE"))
    # And nothing was reported as an unmapped carrier code
    unmapped = [line for line in capsys.readouterr().out.splitlines() if '"UnmappedCarrierCode"' in line]
    assert unmapped == [], unmapped
