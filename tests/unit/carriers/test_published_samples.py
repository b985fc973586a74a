"""Every published sample (``tests/fixtures/*/published/``) parses into its hand-written outcome.

Given a payload the carrier published (docs, official SDKs, demo and integration code; sources in each
``SOURCES.md``), when it reaches the provider plugin as a push (signed with test credentials) and, for
answers, as a query answer, then the events, the folded status, the unmapped and inferred codes and the
waybill-level facts are exactly the expected ones. The integration twin drives the same samples through
the webhook handler and the normalizer (``tests/integration/ingest/test_published_samples.py``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from parcelhub.carriers.base import ParsedPush
from parcelhub.carriers.kdniao import parsers as kdniao_parsers
from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kdniao.settings import KdniaoSettings
from parcelhub.carriers.kuaidi100 import parsers as kuaidi100_parsers
from parcelhub.carriers.kuaidi100.plugin import Kuaidi100Plugin
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings
from parcelhub.carriers.sf import parsers as sf_parsers
from parcelhub.carriers.sf.plugin import SfPlugin
from parcelhub.carriers.sf.settings import SfSettings
from parcelhub.domain.models import CHINA_TZ, Provider
from tests.published import Sample, assert_outcome, push_request, query, query_answer, samples

pytestmark = pytest.mark.unit

CREDENTIALS = {
    "app_key": "00000000-1111-2222-3333-444444444444",
    "salt": "TESTSALT-0123456789",
    "push_token": "tok-0123456789abcdef0123456789",
}
#: the plugins' clock: stamps what has no time of its own (a Kuaidi100 abort without traces)
NOW = datetime(2026, 1, 5, 9, 0, 1, tzinfo=CHINA_TZ)
SAMPLES = samples()


def plugin(sample: Sample, salt: str | None = None) -> Any:
    now = sample.received_at or NOW
    if sample.provider is Provider.KDNIAO:
        return KdniaoPlugin(KdniaoSettings(ebusiness_id="1234567", app_key=CREDENTIALS["app_key"]), clock=lambda: now)
    if sample.provider is Provider.SF:
        settings = SfSettings(partner_id="TESTPARTNER", checkword="TESTCHECKWORD", monthly_card="7551234567",
                              push_token=CREDENTIALS["push_token"])  # fmt: skip
        return SfPlugin(settings, clock=lambda: now)
    settings_k = Kuaidi100Settings(key="TESTKEY", customer="TESTCUSTOMER", salt=salt or CREDENTIALS["salt"])
    return Kuaidi100Plugin(settings_k, clock=lambda: now)


def answer(sample: Sample) -> ParsedPush:
    body, asked = query_answer(sample), query(sample)
    if sample.provider is Provider.KDNIAO:
        return kdniao_parsers.parse_query_response(body, asked, plugin(sample).settings, NOW)
    if sample.provider is Provider.SF:
        return sf_parsers.parse_query_response(body, asked, plugin(sample).settings)
    return kuaidi100_parsers.parse_query_response(body, asked, plugin(sample).settings)


def test_there_are_at_least_twenty_samples_across_the_three_providers_each_with_a_source() -> None:
    # Given the published samples and the SOURCES.md of each provider
    assert len(SAMPLES) >= 20
    assert {sample.provider for sample in SAMPLES} == set(Provider)
    for sample in SAMPLES:
        sources = (sample.path.parent / "SOURCES.md").read_text("utf-8")
        # Then every sample file exists and its source is named
        assert sample.path.is_file(), sample
        assert f"`{sample.name}`" in sources, f"{sample} has no source in SOURCES.md"


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.is_push], ids=str)
def test_a_published_push_parses_into_its_expected_outcome(sample: Sample) -> None:
    # Given the sample as the provider pushes it, signed with our test credentials
    receiver = plugin(sample)
    request = push_request(sample, CREDENTIALS)
    # When the webhook's verification and the normalizer's parse run
    receiver.verify_push(request)
    parsed = receiver.parse_push(request)
    # Then the outcome is the hand-written one, and the ACK is a success in the push's own shape
    assert_outcome(sample, parsed)
    reply = receiver.push_ack(True, request=request)
    assert reply.status_code == 200
    if sample.provider is Provider.SF and sf_parsers.push_shape(request) in ("xml", "form"):
        assert reply.body == '<Response service="RoutePushService"><Head>OK</Head></Response>'
        assert "xml" in reply.content_type
    else:
        body = json.loads(reply.body)
        assert body.get("Success", body.get("result", body.get("return_code") == "0000")) is True


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.is_query], ids=str)
def test_a_published_answer_parses_into_its_expected_outcome(sample: Sample) -> None:
    # Given the sample as the provider answers a tracking query / When parsed like a push
    parsed = answer(sample)
    # Then the outcome is the hand-written one (the poller counts its codes the same way)
    assert_outcome(sample, parsed)


def test_the_kuaidi100_wire_sample_verifies_byte_for_byte_with_its_own_salt() -> None:
    # Given the published wire body, signed by Kuaidi100 with the subscriber's salt (a lower-case sign)
    (sample,) = [s for s in SAMPLES if s.shape == "push-wire"]
    salt = str(sample.expected["salt"])
    request = push_request(sample, CREDENTIALS | {"salt": salt})
    assert request.body == sample.raw
    # When verified with that salt Then it is authentic and parses into the expected outcome
    receiver = plugin(sample, salt=salt)
    receiver.verify_push(request)
    assert_outcome(sample, receiver.parse_push(request))


def test_no_published_sample_with_a_usable_signal_leaves_anything_unmapped() -> None:
    # Given every sample, pushed and answered
    found: list[str] = []
    for sample in SAMPLES:
        parsed: list[ParsedPush] = []
        if sample.is_push:
            parsed.append(plugin(sample).parse_push(push_request(sample, CREDENTIALS)))
        if sample.is_query:
            parsed.append(answer(sample))
        found += [f"{sample}:{code}" for p in parsed for code in p.unmapped_codes]
        found += [f"{sample}:{e.raw_code}" for p in parsed for e in p.events if e.sub_status.value == "UNMAPPED"]
    # Then nothing is UNMAPPED: every scan was explained by a code, SF's normalised status or its text
    assert found == []
