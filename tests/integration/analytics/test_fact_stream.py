"""The delivery-facts consumer on moto: the table's stream -> ended shipments -> facts recorded exactly once
(replays, a failed write, a write whose answer was lost) and written to the S3 history."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.delivery_facts.handler import lambda_handler
from parcelhub import composition
from parcelhub.adapters.dynamodb.lane_cells import ALL_TIME, cell_pk
from parcelhub.domain.lanes import LaneLevel, Outcome
from parcelhub.domain.models import Carrier
from parcelhub.domain.status import Status
from sandbox.local.streams import first_failure
from tests.conftest import REGION, HubAws
from tests.fakes.journeys import seed
from tests.fakes.stream import StreamRelay

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HISTORY = "parcelhub-test-history"


class _Context:
    function_name = "delivery-facts"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:delivery-facts"
    log_group_name = "/aws/lambda/delivery-facts"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def deliver(records: list[dict[str, Any]]) -> str | None:
    """One invocation of the consumer; the sequence number it asks to retry from (None: all done)."""
    result = lambda_handler({"Records": records}, _Context())
    index = first_failure(result, [str(r["dynamodb"]["SequenceNumber"]) for r in records])
    return None if index is None else str(records[index]["dynamodb"]["SequenceNumber"])


def national_parcels(carrier: str = "ZTO") -> int:
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName="parcelhub-test",
        Key={"pk": {"S": cell_pk(carrier, "standard", LaneLevel.NATIONAL, "*")}, "sk": {"S": ALL_TIME}},
        ConsistentRead=True,
    )
    return int(item.get("Item", {}).get("c_parcels", {}).get("N", 0))


def history_lines() -> list[dict[str, Any]]:
    s3 = boto3.client("s3", region_name=REGION)
    lines: list[dict[str, Any]] = []
    for obj in s3.list_objects_v2(Bucket=HISTORY, Prefix="facts/").get("Contents", []):
        assert obj["Key"].startswith("facts/dt=2026-11-27/")
        assert obj["Key"].endswith(".jsonl")
        body = s3.get_object(Bucket=HISTORY, Key=obj["Key"])["Body"].read().decode()
        lines += [json.loads(line) for line in body.splitlines() if line]
    return lines


@pytest.fixture
def stream(hub_aws: HubAws) -> StreamRelay:
    return StreamRelay(hub_aws.table_name)


def test_ended_shipments_are_recorded_once_and_land_in_the_history(stream: StreamRelay) -> None:
    # Given a delivered, a returned and a moving shipment committed to the table
    store = composition.store()
    seed(store, Status.DELIVERED, "shp_d1", "ORD-D1", now=NOW, links=None)
    seed(store, Status.RETURNED, "shp_r1", "ORD-R1", now=NOW, links=None)
    seed(store, Status.IN_TRANSIT, "shp_t1", "ORD-T1", now=NOW, links=None)
    records = stream.records()
    # When the consumer reads the stream
    assert deliver(records) is None
    # Then the two ended shipments have a fact, added to their cells once
    scorecards = composition.scorecards()
    delivered, returned = scorecards.recorded_fact("shp_d1"), scorecards.recorded_fact("shp_r1")
    assert delivered is not None
    assert returned is not None
    assert (delivered.outcome, returned.outcome) == (Outcome.DELIVERED, Outcome.RETURNED)
    assert scorecards.recorded_fact("shp_t1") is None
    assert national_parcels() == 2
    # and the history holds one JSON line per fact in the ended day's partition
    assert sorted(line["shipment_id"] for line in history_lines()) == ["shp_d1", "shp_r1"]
    # When the same records are delivered again (a replay)
    assert deliver(records) is None
    assert deliver(records[::-1]) is None
    # Then nothing is counted twice
    assert national_parcels() == 2
    cells = scorecards.scorecards(carrier="ZTO", level=LaneLevel.DESTINATION, lane="广东省", periods=[ALL_TIME])
    assert [(c.lane, c.stats.count("parcels"), c.stats.count("returned")) for c in cells] == [("广东省", 2, 1)]


def _wrapped(real: Any, transact: Callable[..., Any]) -> Any:
    class Client:
        def __getattr__(self, name: str) -> Any:
            return transact if name == "transact_write_items" else getattr(real, name)

    return Client()


def throttled(**_: Any) -> Any:
    raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems")


@pytest.mark.parametrize("committed", [False, True], ids=["write failed", "write committed, answer lost"])
def test_a_failed_write_is_retried_and_counted_once(
    stream: StreamRelay, monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    # Given a delivered shipment, and a first attempt whose transaction fails (or commits and then fails)
    seed(composition.store(), Status.DELIVERED, "shp_f1", "ORD-F1", now=NOW, links=None, carrier=Carrier.ZTO)
    records = stream.records()
    real = boto3.client("dynamodb", region_name=REGION)
    calls: list[str] = []

    def flaky(**params: Any) -> Any:
        calls.append("transact")
        if len(calls) == 1:
            if committed:
                real.transact_write_items(**params)
            throttled()
        return real.transact_write_items(**params)

    failing = composition.scorecards()
    monkeypatch.setattr(failing, "_client", _wrapped(real, flaky))
    # When the consumer runs: the record is reported, and the stream retries from it
    retry_from = deliver(records)
    assert retry_from is not None
    assert national_parcels() == (1 if committed else 0)
    retry = [r for r in records if str(r["dynamodb"]["SequenceNumber"]) >= retry_from]
    assert deliver(retry) is None
    # Then the fact counts once, whatever the first attempt left behind
    assert len(calls) == 2
    assert national_parcels() == 1
    assert failing.recorded_fact("shp_f1") is not None
