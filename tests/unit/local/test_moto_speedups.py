"""The moto process's speed-ups change how much work moto does per request, never what it answers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.local import moto_process

pytestmark = pytest.mark.unit

DEFINITION = json.dumps(
    {
        "StartAt": "Choose",
        "States": {
            "Choose": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Result": {"size": "big"}, "End": True},
            "Small": {"Type": "Pass", "Parameters": {"size.$": "States.Format('small {}', $.n)"}, "End": True},
        },
    }
)


#: one attribute of each DynamoDB type the wire shape nests (sets, map, list, null, bool)
EVERY_TYPE: dict[str, Any] = {
    "tags": {"SS": ["vip", "cod"]},
    "weights": {"NS": ["1.5", "2"]},
    "view": {"M": {"status": {"S": "IN_TRANSIT"}, "events": {"L": [{"N": "3"}, {"NULL": True}]}}},
    "paid": {"BOOL": False},
}


@contextlib.contextmanager
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free loopback port, threaded as the moto process serves; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The moto classes and module functions the patches replace, put back after the test."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    monkeypatch.setattr(
        DomainDispatcherApplication,
        "get_backend_for_host",
        DomainDispatcherApplication.__dict__["get_backend_for_host"],
    )
    monkeypatch.setattr(AmazonStateLanguageParser, "parse", AmazonStateLanguageParser.__dict__["parse"])
    return monkeypatch


def test_a_host_resolves_to_the_same_backend_without_listing_the_package_again(restored: Any) -> None:
    """Given moto's dispatcher, when hosts are resolved with the cached routing, then each host maps to the
    backend moto's own resolution gives, and moto's package directory is listed once, not per request."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    unbuilt: Any = lambda backend: None  # noqa: E731 - routing only: no app is built
    dispatcher = DomainDispatcherApplication(create_app=unbuilt)
    hosts = ["dynamodb.cn-north-1.amazonaws.com", "sqs.cn-north-1.amazonaws.com", "moto_api", "states.cn-north-1"]
    hosts += ["no-such-service.cn-north-1.amazonaws.com", "sns"]
    expected = {host: dispatcher.get_backend_for_host(host) for host in hosts}
    listed: list[int] = []
    original = backends.list_of_moto_modules

    def counting() -> Any:
        listed.append(1)
        return original()

    restored.setattr(backends, "list_of_moto_modules", counting)

    moto_process.route_requests_by_cached_host()
    for _ in range(3):
        assert {host: dispatcher.get_backend_for_host(host) for host in hosts} == expected
    assert len(listed) == 1
    assert expected["dynamodb.cn-north-1.amazonaws.com"] == "dynamodb"
    assert expected["sns"] == "sns"


def test_each_execution_gets_its_own_program_from_one_parse(restored: Any) -> None:
    """Given a definition, when it is parsed for three executions, then ANTLR parses it once, every
    execution gets fresh evaluation components of the same shape, and a broken definition still fails."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    parsed: list[str] = []
    original = AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        parsed.append(definition)
        return original(definition)

    restored.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    moto_process.parse_each_definition_once()

    programs: list[Any] = [AmazonStateLanguageParser.parse(DEFINITION)[0] for _ in range(3)]
    assert parsed == [DEFINITION]
    assert len({id(program) for program in programs}) == 3
    assert len({id(program.states) for program in programs}) == 3
    assert {type(program).__name__ for program in programs} == {type(original(DEFINITION)[0]).__name__}
    assert [sorted(p.states.states) for p in programs] == [["Big", "Choose", "Small"]] * 3
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": "Nowhere", "States": {"X": {"Type": "Bogus"}}}')


def test_stream_records_read_the_same_when_answered_as_stored(restored: Any) -> None:
    """Given a table with a NEW_AND_OLD_IMAGES stream and items of every attribute type, when its records
    are read through boto3 with moto's serializer and then with the records answered as stored, then boto3
    parses the same records (times and binary included) without moto walking the output shape."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    from sandbox.local.stack import moto_client

    restored.setattr(DynamoDBStreamsHandler, "get_records", DynamoDBStreamsHandler.__dict__["get_records"])
    with moto_endpoint() as url:
        dynamodb = moto_client("dynamodb", url)
        streams = moto_client("dynamodbstreams", url)
        table = dynamodb.create_table(
            TableName="shipments",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        item = {
            "pk": {"S": "SHIPMENT#shp_1 上海"},
            "sk": {"N": "1"},
            "blob": {"B": b"\x00\xffsigned"},
            **EVERY_TYPE,
            "parts": {"BS": [b"a", b"b"]},
        }
        dynamodb.put_item(TableName="shipments", Item=item)
        dynamodb.update_item(
            TableName="shipments",
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET paid = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )
        dynamodb.delete_item(TableName="shipments", Key={"pk": item["pk"], "sk": item["sk"]})
        shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"][0]

        def read() -> list[dict[str, Any]]:
            iterator = streams.get_shard_iterator(
                StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            reply = streams.get_records(ShardIterator=iterator, Limit=100)
            assert reply["NextShardIterator"]
            return list(reply["Records"])

        serialized = read()
        moto_process.stream_records_as_stored()
        walked: list[str] = []
        serialize = DynamoDBStreamsHandler.serialized

        def counting(handler: Any, result: Any) -> Any:
            walked.append(handler._get_action())
            return serialize(handler, result)

        restored.setattr(DynamoDBStreamsHandler, "serialized", counting)
        assert read() == serialized
        assert "GetRecords" not in walked
        assert "GetShardIterator" in walked  # the other operations are serialized by moto as before
    assert [r["eventName"] for r in serialized] == ["INSERT", "MODIFY", "REMOVE"]
    assert serialized[0]["dynamodb"]["NewImage"]["blob"] == {"B": b"\x00\xffsigned"}
    assert serialized[1]["dynamodb"]["ApproximateCreationDateTime"].year >= 2026


def test_queries_answer_the_same_from_one_partition(restored: Any) -> None:
    """Given a table with a range key and a GSI holding several partitions, when base-table and index queries
    (key conditions, filters, descending order, pages) run with moto's full listing and then with the
    partition listing, then every answer is the same, and a query no longer lists the whole table."""
    from moto.dynamodb.models.table import Table

    from sandbox.local.stack import moto_client

    restored.setattr(Table, "query", Table.__dict__["query"])
    restored.setattr(Table, "all_items", Table.__dict__["all_items"])
    with moto_endpoint() as url:
        dynamodb = moto_client("dynamodb", url)
        dynamodb.create_table(
            TableName="parcels",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "tracking", "due")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-tracking",
                    "KeySchema": [
                        {"AttributeName": "tracking", "KeyType": "HASH"},
                        {"AttributeName": "due", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(60):
            item = {"pk": {"S": f"SHP#{n % 7}"}, "sk": {"S": f"EVT#{(n * 37) % 100:03d}"}, "n": {"N": str(n)}}
            if n % 3:
                item |= {"tracking": {"S": f"SF{n % 4}"}, "due": {"S": f"2026-12-0{1 + n % 9}"}}
            dynamodb.put_item(TableName="parcels", Item=item)
        queries: list[dict[str, Any]] = [
            {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "SHP#3"}}},
            {
                "KeyConditionExpression": "pk = :p AND begins_with(sk, :e)",
                "ExpressionAttributeValues": {":p": {"S": "SHP#1"}, ":e": {"S": "EVT#0"}},
                "ScanIndexForward": False,
            },
            {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "SHP#404"}}},
            {
                "IndexName": "by-tracking",
                "KeyConditionExpression": "tracking = :t AND due <= :d",
                "ExpressionAttributeValues": {":t": {"S": "SF1"}, ":d": {"S": "2026-12-06"}, ":n": {"N": "20"}},
                "FilterExpression": "n > :n",
            },
            {
                "IndexName": "by-tracking",
                "KeyConditionExpression": "tracking = :t",
                "ExpressionAttributeValues": {":t": {"S": "SF2"}},
                "ScanIndexForward": False,
            },
        ]

        def answers() -> list[list[dict[str, Any]]]:
            pages: list[list[dict[str, Any]]] = []
            for query in queries:
                for limit in (None, 2):
                    start: dict[str, Any] | None = None
                    while True:
                        extra = ({"Limit": limit} if limit else {}) | ({"ExclusiveStartKey": start} if start else {})
                        reply = dynamodb.query(TableName="parcels", **query, **extra)
                        pages.append(reply["Items"] + [{"last": reply.get("LastEvaluatedKey")}])
                        start = reply.get("LastEvaluatedKey")
                        if not start:
                            break
            return pages

        expected = answers()
        moto_process.query_one_partition()
        listings: list[int] = []
        listed = Table.all_items

        def counting(table: Any) -> Any:
            items = listed(table)
            listings.append(len(items))
            return items

        restored.setattr(Table, "all_items", counting)
        assert answers() == expected
        assert min(listings) <= 9  # a base-table query lists its partition (9 items at most)
    assert sum(len(page) - 1 for page in expected) > 40


def test_items_read_the_same_when_their_attribute_values_are_written_as_stored(restored: Any) -> None:
    """Given items of every attribute type, when GetItem, Query, UpdateItem (ALL_NEW), BatchGetItem and
    TransactGetItems answer through moto's shape walk and then with attribute values written as stored,
    then boto3 parses the same answers, and moto's serializer no longer walks the attribute values."""
    from moto.core.serialize import BaseJSONSerializer

    from sandbox.local.stack import moto_client

    restored.setattr(
        BaseJSONSerializer, "_serialize_type_structure", BaseJSONSerializer.__dict__["_serialize_type_structure"]
    )
    with moto_endpoint() as url:
        dynamodb = moto_client("dynamodb", url)
        dynamodb.create_table(
            TableName="labels",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {
            "pk": {"S": "SHIPMENT#shp_1 上海"},
            "label": {"B": b"\x00\xffPDF"},
            **EVERY_TYPE,
            "parts": {"BS": [b"a", b"\x01"]},
            "version": {"N": "1"},
        }
        dynamodb.put_item(TableName="labels", Item=item)
        key = {"pk": item["pk"]}
        update = {
            "TableName": "labels",
            "Key": key,
            "UpdateExpression": "SET version = version + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "ALL_NEW",
        }

        def answers() -> list[Any]:
            updated = dynamodb.update_item(**update)["Attributes"]
            return [
                dynamodb.get_item(TableName="labels", Key=key)["Item"] | {"version": "-"},
                {**updated, "version": "-"},
                dynamodb.query(
                    TableName="labels",
                    KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": item["pk"]},
                )["Items"][0]
                | {"version": "-"},
                dynamodb.batch_get_item(RequestItems={"labels": {"Keys": [key]}})["Responses"]["labels"][0]
                | {"version": "-"},
                dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": "labels", "Key": key}}])["Responses"][
                    0
                ]["Item"]
                | {"version": "-"},
            ]

        expected = answers()
        moto_process.attribute_values_as_stored()
        walked: list[str] = []
        walk = BaseJSONSerializer._serialize_type_structure

        def counting(serializer: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
            walked.append(shape.name)
            walk(serializer, serialized, value, shape, key)

        restored.setattr(BaseJSONSerializer, "_serialize_type_structure", counting)
        assert answers() == expected
        # 8 attributes in each of the 5 answers, none of their nested values walked (moto's walk: 60)
        assert walked.count("AttributeValue") == 8 * 5
    assert expected[0]["label"] == {"B": b"\x00\xffPDF"}
    assert all(answer == expected[0] for answer in expected)
