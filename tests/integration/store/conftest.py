"""Fixtures of the store contract suite: the same tests run against the in-memory fake and against the
DynamoDB adapter on moto (real boto3 API, the table created with the schema template.yaml declares)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from parcelhub.adapters.dynamodb import DynamoShipmentStore
from parcelhub.adapters.dynamodb.stream import decode_record
from parcelhub.ports.changes import Change
from parcelhub.ports.store import ShipmentStore
from tests.fakes.store import InMemoryShipmentStore

REGION = "us-east-1"
TABLE = "parcelhub-test"
WRITE_UNITS = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1}


def create_table(client: Any, name: str) -> None:
    """The table exactly as template.yaml declares it (keys, sparse GSIs and their projections, TTL)."""
    from sandbox.local.provision import create_table_request
    from sandbox.local.template import load_template

    template = load_template(Path(__file__).resolve().parents[3] / "template.yaml")
    client.create_table(**create_table_request(template["Resources"]["ParcelhubTable"]["Properties"], name))
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})


@dataclass
class Backend:
    """A store under test plus a way to count item writes the way DynamoDB bills them."""

    name: str
    store: ShipmentStore
    item_writes: Callable[[], int]
    calls: Counter[str]
    #: the committed changes the outbox relay would read: the fake's log, or the table's stream decoded
    changes: Callable[[], list[Change]]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so requests are signed and sent (and nothing real is reachable)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's DynamoDB with the table. moto evaluates a conditional write as read, check, write without a
    lock, so two threads can both pass a condition that DynamoDB would let only one pass. DynamoDB makes
    every request atomic; so does this fixture, by handling one moto DynamoDB request at a time. Threads
    still interleave *between* requests, which is where a lost update in our code would come from."""
    from moto.dynamodb.responses import DynamoHandler

    atomic = threading.Lock()
    call_action = DynamoHandler.call_action

    def one_request_at_a_time(self: DynamoHandler) -> Any:
        with atomic:
            return call_action(self)

    monkeypatch.setattr(DynamoHandler, "call_action", one_request_at_a_time)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE)
        yield client


def _moto_backend(client: Any) -> Backend:
    calls: Counter[str] = Counter()
    writes = [0]

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        calls[name] += 1
        if name in WRITE_UNITS:
            writes[0] += WRITE_UNITS[name]
        elif name == "BatchWriteItem":
            writes[0] += sum(len(requests) for requests in params["RequestItems"].values())
        elif name == "TransactWriteItems":
            writes[0] += len(params["TransactItems"])

    client.meta.events.register("before-parameter-build.dynamodb", count)
    return Backend("moto", DynamoShipmentStore(TABLE, client=client), lambda: writes[0], calls, stream_changes)


def stream_changes() -> list[Change]:
    """Every record of the table's stream (DescribeStream, GetShardIterator, GetRecords), decoded."""
    # moto (decorator mode) does not serve botocore's account-based stream endpoints: name the regional one
    streams = boto3.client(
        "dynamodbstreams", region_name=REGION, endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com"
    )
    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    changes: list[Change] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            reply = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not reply["Records"]:
                break
            changes += [c for r in reply["Records"] if (c := decode_record(r)) is not None]
            iterator = reply["NextShardIterator"]
    return changes


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        fake = InMemoryShipmentStore()
        return Backend("memory", fake, lambda: fake.item_writes, Counter(), lambda: list(fake.changes))
    return _moto_backend(request.getfixturevalue("dynamodb"))


@pytest.fixture
def moto_backend(dynamodb: Any) -> Backend:
    return _moto_backend(dynamodb)


@pytest.fixture
def store(backend: Backend) -> ShipmentStore:
    return backend.store
