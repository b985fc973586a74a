"""The hostile-input suite, part 1: schemathesis against the running local stack, from ``infra/openapi.json``.

Every operation is fuzzed with schema-valid (positive) and schema-invalid (negative) data, with and
without the API key; then a stateful run follows the document's links (create -> read / find / cancel /
retry). Every answer must be documented (status, content type, body schema), none may be a 5xx, every
schema-valid request must be accepted (or answered with a documented state conflict / not-found), and
every schema-invalid one rejected with a 4xx. The number of examples is bounded so the suite stays fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import GenerationMode

from sandbox.carriers.kdniao import data_sign
from sandbox.local.client import LocalStackClient
from tests.e2e.conftest import assert_no_denials

# one worker runs the whole module: its private stack starts once, not once per xdist worker
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("fuzzed-stack")]

OPENAPI = Path(__file__).resolve().parents[2] / "infra" / "openapi.json"
#: examples per operation and mode: small enough for `make test`, large enough to find what was found before
EXAMPLES = 12
STATEFUL_EXAMPLES = 6
STATEFUL_BATCHES = 2


_PATHS = json.loads(OPENAPI.read_text(encoding="utf-8"))["paths"]
#: (operation, mode): negative data only where the operation takes input (nothing to negate otherwise)
CASES = [
    pytest.param(f"{method.upper()} {path}", mode, id=f"{method.upper()} {path} {mode.value}")
    for path, methods in _PATHS.items()
    for method, operation in methods.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or operation.get("parameters") or operation.get("requestBody")
]


@pytest.fixture(scope="module")
def fuzzed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackClient]:
    """A private local stack: what the fuzzers create (odd shipments, signed garbage in the tracking DLQ)
    stays out of the other tests' way."""
    stack = LocalStackClient.start(tmp_path_factory.mktemp("fuzzed-stack"))
    try:
        yield stack
        assert_no_denials(stack)
    finally:
        assert stack.stop().code == 0


@pytest.fixture(scope="module")
def api_schema(fuzzed_stack: LocalStackClient) -> Any:
    local_stack = fuzzed_stack
    schema = schemathesis.openapi.from_path(OPENAPI)
    schema.config.update(base_url=local_stack.api, headers=local_stack.headers)
    return schema


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_operation_answers_as_documented_for_valid_and_invalid_input(
    api_schema: Any, label: str, mode: GenerationMode
) -> None:
    # Given one operation of the document and data valid (positive) or invalid (negative) against it
    operation = api_schema.find_operation_by_label(label)

    @given(case=operation.as_strategy(generation_mode=mode))
    @_settings(EXAMPLES)
    def fuzz(case: Any) -> None:
        # When the request is sent to the running local stack
        # Then the answer is documented, never a 5xx; valid data is accepted, invalid data rejected
        case.call_and_validate()

    fuzz()


def test_the_links_chain_create_read_cancel_retry_without_undocumented_answers(api_schema: Any) -> None:
    # Given the document's links from a created shipment to reading, finding, cancelling and retrying it
    answered: list[tuple[str, int]] = []

    # schemathesis guesses that `order_id` in the create body points at an "Order" resource no operation
    # produces, and so would never start a walk from creating a shipment; it is the OMS's own id
    api_schema.analysis.dependency_graph.operations["POST /v1/shipments"].inputs.clear()

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def after_call(self, response: Any, case: Any) -> None:
            answered.append((f"{case.method} {case.path}", response.status_code))

    # When schemathesis walks them against the running stack (every answer validated at every step)
    # Walks are not derandomized: answers depend on what earlier walks created (a repeated order id is a
    # replay), which can make Hypothesis' replay of a walk diverge. Like schemathesis' own runner, a
    # diverged replay (FlakyStrategyDefinition) only ends that batch; a failed check still fails the test.
    for _ in range(STATEFUL_BATCHES):
        with contextlib.suppress(FlakyStrategyDefinition):
            Machine.run(settings=settings(_settings(STATEFUL_EXAMPLES), stateful_step_count=6, derandomize=False))
    # Then the walk really followed the links: shipments it created were read through their own ids
    created = [status for op, status in answered if op == "POST /v1/shipments" and status in (200, 202)]
    read = [status for op, status in answered if op == "GET /v1/shipments/{shipment_id}" and status == 200]
    assert created, answered
    assert read, answered


# ------------------------------------------------------------------------------------ carrier webhooks

#: the local stack's default provider credentials (sandbox/local/settings.py): signing needs them
KDNIAO_APP_KEY = "local-kdniao-app-key"
KUAIDI100_SALT = "local-kuaidi100-salt"
SF_PUSH_TOKEN = "local-sf-push-token-0001"
WEBHOOK_EXAMPLES = 15

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
#: hostile payloads: arbitrary bytes (mis-encoded), arbitrary JSON, nesting far past the bound, oversized
HOSTILE = st.one_of(
    st.binary(min_size=1, max_size=1024),
    _json.map(lambda value: json.dumps(value).encode("utf-8")),
    st.integers(min_value=40, max_value=20_000).map(lambda depth: ("[" * depth + "]" * depth).encode()),
    st.integers(min_value=130_000, max_value=400_000).map(lambda size: b'{"x":"' + b"a" * size + b'"}'),
)


def _form(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode("ascii")


def _kdniao(payload: bytes, signing: str) -> tuple[str, bytes, str]:
    key = {"right": KDNIAO_APP_KEY, "wrong": "not-the-app-key"}.get(signing)
    if key is None:
        return "/v1/webhooks/kdniao", payload, "application/x-www-form-urlencoded"
    data = payload.decode("utf-8", errors="replace")
    form = _form({"RequestData": data, "DataSign": data_sign(data, key), "RequestType": "102"})
    return "/v1/webhooks/kdniao", form, "application/x-www-form-urlencoded"


def _kuaidi100(payload: bytes, signing: str) -> tuple[str, bytes, str]:
    param = payload.decode("utf-8", errors="replace")
    salt = {"right": KUAIDI100_SALT, "wrong": "not-the-salt"}.get(signing)
    if salt is None:
        return "/v1/webhooks/kuaidi100", payload, "application/x-www-form-urlencoded"
    sign = hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()
    return "/v1/webhooks/kuaidi100", _form({"sign": sign, "param": param}), "application/x-www-form-urlencoded"


def _sf(payload: bytes, signing: str) -> tuple[str, bytes, str]:
    token = {"right": SF_PUSH_TOKEN, "wrong": "wrong-token-0123456789"}.get(signing, "x")
    return f"/v1/webhooks/sf/{token}", payload, "application/json"


SIGNERS = {"kdniao": _kdniao, "kuaidi100": _kuaidi100, "sf": _sf}


@pytest.mark.parametrize("provider", list(SIGNERS))
def test_hostile_webhook_bodies_get_a_4xx_or_are_accepted_never_a_5xx(
    fuzzed_stack: LocalStackClient, provider: str
) -> None:
    local_stack = fuzzed_stack
    session = requests.Session()

    @given(payload=HOSTILE, signing=st.sampled_from(["none", "wrong", "right"]))
    @_settings(WEBHOOK_EXAMPLES)
    def fuzz(payload: bytes, signing: str) -> None:
        # Given a hostile body, unsigned, wrongly signed or correctly signed for the provider
        path, body, content_type = SIGNERS[provider](payload, signing)
        # When it is pushed to the running stack's webhook
        answer = session.post(
            local_stack.webhooks + path, data=body, headers={"Content-Type": content_type}, timeout=30
        )
        # Then the answer is never a 5xx; without the right signature it is a refusal (4xx); a correctly
        # signed push is acknowledged (it is queued and its fate is the normalizer's: stored or DLQ'd) or
        # refused as unreadable
        assert answer.status_code < 500, (signing, answer.status_code, answer.text[:200])
        if signing != "right":
            assert 400 <= answer.status_code < 500, (signing, answer.status_code, answer.text[:200])

    fuzz()
