"""The published samples under ``tests/fixtures/<provider>/published/`` and how each travels.

Every sample file is kept byte for byte as published (its source is in that folder's ``SOURCES.md``);
``expected/<sample>.expected.json`` holds its canonical outcome, written by hand from reading the
payload. This module only knows how a sample reaches parcelhub:

* as a **push** (``push_request``): the sample is the push body itself (an SF JSON or XML body, a
  Kuaidi100 wire form), or the part of a push the provider signs (a Kuaidi100 ``param``), or an answer
  that a push carries unchanged (a Kdniao ``Data[]`` element is the 1002/8001 answer; a Kuaidi100
  ``lastResult`` is the query answer; SF routes are the same nodes in both); the envelope around it is
  the documented one (REFERENCE §1.6, §2.6, §3.3) and it is signed with the caller's test credentials;
* as a **query answer** (``query_answer``), for the shapes that are answers.

Shared by the unit tests (plugins only) and the integration tests (webhook handler + normalizer).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from parcelhub.carriers.base import HttpRequest, ParsedPush, TrackingQuery
from parcelhub.carriers.kdniao.signing import data_sign
from parcelhub.carriers.kuaidi100.signing import push_sign
from parcelhub.carriers.wire import FORM_CONTENT_TYPE, compact_json, encode_form
from parcelhub.domain.models import CHINA_TZ, Carrier, Provider, TrackingEvent
from parcelhub.domain.status import fold

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDERS = (Provider.KDNIAO, Provider.SF, Provider.KUAIDI100)

#: the shapes that reach parcelhub as a push, and those that are (also) query answers
PUSH_SHAPES = frozenset(
    {"push-wire", "push-param", "push-json", "push-xml", "push-form-xml", "query", "answer", "answer-traces",
     "query-result-data", "route-nodes"}
)  # fmt: skip
QUERY_SHAPES = frozenset({"query", "answer", "answer-traces", "query-result-data", "route-nodes"})
#: a fixed push time for the envelopes built around answers (Kdniao ``PushTime``)
PUSH_TIME = "2026-01-05 09:00:00"


@dataclass(frozen=True)
class Sample:
    provider: Provider
    name: str
    expected: dict[str, Any]

    @property
    def path(self) -> Path:
        return FIXTURES / self.provider.value / "published" / self.name

    @property
    def raw(self) -> bytes:
        return self.path.read_bytes()

    @property
    def shape(self) -> str:
        return str(self.expected["shape"])

    @property
    def carrier(self) -> Carrier:
        return Carrier(self.expected["carrier"])

    @property
    def tracking_number(self) -> str:
        return str(self.expected["tracking_number"])

    @property
    def claim_carrier(self) -> Carrier:
        """The carrier we would have subscribed with (Kuaidi100 corrects it in ``autoCheck`` pushes)."""
        also = self.expected.get("also_numbers") or []
        return Carrier(also[0][0]) if also else self.carrier

    @property
    def received_at(self) -> datetime | None:
        value = self.expected.get("received_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def is_push(self) -> bool:
        return self.shape in PUSH_SHAPES and not (self.shape == "query" and "data" not in self.json())

    @property
    def is_query(self) -> bool:
        return self.shape in QUERY_SHAPES

    def json(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))

    def __str__(self) -> str:
        return f"{self.provider.value}/{self.name}"


def samples() -> list[Sample]:
    found: list[Sample] = []
    for provider in PROVIDERS:
        for path in sorted((FIXTURES / provider.value / "published" / "expected").glob("*.expected.json")):
            expected = json.loads(path.read_text("utf-8"))
            found.append(Sample(provider, expected["sample"], expected))
    return found


# ------------------------------------------------------------------------------------------ pushes


def _kdniao_element(sample: Sample) -> dict[str, Any]:
    if sample.shape == "answer-traces":
        return dict(sample.expected["element"]) | {"Traces": sample.json()}
    element: dict[str, Any] = sample.json()
    return element


def _sf_routes(sample: Sample) -> tuple[str, list[dict[str, Any]]]:
    """The route nodes of an SF answer-shaped sample and the number they belong to."""
    if sample.shape == "route-nodes":
        nodes = [json.loads(line) for line in sample.raw.decode("utf-8").splitlines() if line.strip()]
        return sample.tracking_number, nodes
    result = json.loads(sample.raw.decode("utf-8"))
    (resp,) = result["msgData"]["routeResps"]
    return str(resp["mailNo"]), list(resp["routes"])


def _kuaidi100_push(sample: Sample, salt: str) -> HttpRequest:
    if sample.shape == "push-wire":
        if salt == sample.expected.get("salt"):
            return HttpRequest(body=sample.raw, headers={"Content-Type": FORM_CONTENT_TYPE})
        param = dict(urllib.parse.parse_qsl(sample.raw.decode("utf-8"), keep_blank_values=True))["param"]
    elif sample.shape == "push-param":
        param = sample.raw.decode("utf-8")
    else:  # a query answer is the lastResult of a push
        param = compact_json({"status": "polling", "billstatus": "", "message": "", "autoCheck": "0",
                              "comOld": "", "comNew": "", "lastResult": sample.json()})  # fmt: skip
    body = encode_form({"sign": push_sign(param, salt), "param": param})
    return HttpRequest(body=body.encode("utf-8"), headers={"Content-Type": FORM_CONTENT_TYPE})


def _kdniao_push(sample: Sample, app_key: str) -> HttpRequest:
    element = _kdniao_element(sample)
    valued = any(isinstance(t, dict) and t.get("Action") for t in element.get("Traces") or [])
    request_data = compact_json(
        {"EBusinessID": element.get("EBusinessID", ""), "PushTime": PUSH_TIME, "Count": "1", "Data": [element]}
    )
    form = {
        "RequestData": request_data,
        "DataSign": data_sign(request_data, app_key),
        "RequestType": "102" if valued else "101",
    }
    return HttpRequest(body=encode_form(form).encode("utf-8"), headers={"Content-Type": FORM_CONTENT_TYPE})


#: how each SF push shape travels: content type, and the body made of the sample's bytes
_SF_PUSHES = {
    "push-json": "application/json;charset=UTF-8",
    "push-xml": "application/xml;charset=UTF-8",
    "push-form-xml": "application/x-www-form-urlencoded; charset=UTF-8",
}


def _sf_push(sample: Sample, push_token: str) -> HttpRequest:
    token = {"token": push_token}
    content_type = _SF_PUSHES.get(sample.shape)
    if content_type is None:  # an answer's routes, pushed as JSON with their number
        number, routes = _sf_routes(sample)
        pushed = {"Body": {"WaybillRoute": [{"mailno": number} | route for route in routes]}}
        return HttpRequest(compact_json(pushed).encode("utf-8"), {"Content-Type": _SF_PUSHES["push-json"]}, token)
    body = sample.raw
    if sample.shape == "push-form-xml":
        body = encode_form({"content": sample.raw.decode("utf-8")}).encode("utf-8")
    return HttpRequest(body, {"Content-Type": content_type}, token)


def push_request(sample: Sample, credentials: dict[str, str]) -> HttpRequest:
    """The push as the provider would send it, signed with ``credentials`` (``app_key`` / ``salt`` /
    ``push_token``). The sample's own bytes travel unchanged wherever the sample is the pushed text."""
    if sample.provider is Provider.KUAIDI100:
        return _kuaidi100_push(sample, credentials["salt"])
    if sample.provider is Provider.KDNIAO:
        return _kdniao_push(sample, credentials["app_key"])
    return _sf_push(sample, credentials["push_token"])


# ------------------------------------------------------------------------------------------ answers


def query_answer(sample: Sample) -> dict[str, Any]:
    """The provider's answer to a tracking query, as the client returns it (a JSON object)."""
    if sample.provider is Provider.KDNIAO:
        return _kdniao_element(sample)
    if sample.provider is Provider.KUAIDI100:
        answer: dict[str, Any] = sample.json()
        return answer
    if sample.shape == "query-result-data":
        result_data = sample.raw.decode("utf-8")
    else:
        number, routes = _sf_routes(sample)
        result_data = compact_json({"success": True, "errorCode": "S0000", "errorMsg": None,
                                    "msgData": {"routeResps": [{"mailNo": number, "routes": routes}]}})  # fmt: skip
    return {"apiErrorMsg": "", "apiResponseID": "0", "apiResultCode": "A1000", "apiResultData": result_data}


def query(sample: Sample) -> TrackingQuery:
    return TrackingQuery(sample.carrier, sample.tracking_number)


# ------------------------------------------------------------------------------------------ outcomes


def china(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def in_order(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows in time order (ties in a fixed order: a snapshot may list same-second scans either way)."""
    return sorted(rows, key=lambda row: (row[0], row[3], row[1], row[4]))


def event_rows(events: list[TrackingEvent]) -> list[list[Any]]:
    """Events as the expected files write them, in time order."""
    return in_order(
        [[china(e.occurred_at), e.status.value, e.sub_status.value, e.raw_code, e.inferred] for e in events]
    )


def outcome(events: list[TrackingEvent]) -> list[str] | None:
    state = fold(events)
    return None if state is None else [state.status.value, state.sub_status.value]


def newest(events: list[TrackingEvent]) -> TrackingEvent:
    return max(reversed(events), key=lambda e: e.occurred_at)


def facts_of(event: TrackingEvent, keys: list[str]) -> dict[str, Any]:
    dumped = event.model_dump(mode="json")
    return {key: dumped[key] for key in keys}


def assert_outcome(sample: Sample, parsed: ParsedPush) -> None:
    """The parsed push or answer is exactly what the expected file says."""
    expected = sample.expected
    events = list(parsed.events)
    assert event_rows(events) == in_order(expected["events"]), sample
    assert {(e.carrier, e.tracking_number) for e in events} <= {(sample.carrier, sample.tracking_number)}, sample
    assert outcome(events) == expected["final"], sample
    assert list(parsed.unmapped_codes) == expected["unmapped_codes"], sample
    assert list(parsed.inferred_codes) == expected["inferred_codes"], sample
    facts = expected.get("facts") or {}
    if facts:
        assert facts_of(newest(events), list(facts)) == facts, sample
