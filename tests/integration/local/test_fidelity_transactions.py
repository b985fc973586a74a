"""The local stack's moto: a cancelled TransactWriteItems leaves the table and its stream exactly as they
were (as DynamoDB does), and no transaction copies the whole table (the table object stays the same)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture
def table(aws_credentials: None) -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def _stream(client: Any) -> list[dict[str, Any]]:
    # moto (decorator mode) does not serve botocore's account-based stream endpoints: name the regional one
    streams = boto3.client(
        "dynamodbstreams", region_name=REGION, endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com"
    )
    arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return list(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def _backend_table() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables["t"]


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were(table: Any) -> None:
    # Given a shipment with one scan, and the stream of those two writes
    table.put_item(TableName="t", Item={"pk": {"S": "S#1"}, "sk": {"S": "META"}, "v": {"N": "1"}})
    table.put_item(TableName="t", Item={"pk": {"S": "S#1"}, "sk": {"S": "EV#1"}})
    before = _stream(table)
    same_table = _backend_table()
    # When a transaction writes a new scan, updates the shipment, and fails a condition on a third item
    with pytest.raises(ClientError) as cancelled:
        table.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "S#1"}, "sk": {"S": "EV#2"}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "S#1"}, "sk": {"S": "META"}},
                        "UpdateExpression": "SET v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {
                    "Put": {
                        "TableName": "t",
                        "Item": {"pk": {"S": "ORDER#1"}, "sk": {"S": "CLAIM"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    # Then it is cancelled naming the failed condition, and nothing it wrote remains - not in the table,
    # not in the stream - and the table is the same object (no whole-table copy was put in its place)
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in cancelled.value.response["CancellationReasons"]] == [
        "None",
        "None",
        "ConditionalCheckFailed",
    ]
    items = table.scan(TableName="t")["Items"]
    assert sorted((i["pk"]["S"], i["sk"]["S"]) for i in items) == [("S#1", "EV#1"), ("S#1", "META")]
    assert next(i for i in items if i["sk"]["S"] == "META")["v"] == {"N": "1"}
    assert _stream(table) == before
    assert _backend_table() is same_table
    # And a transaction that commits is applied and streamed in full
    table.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "S#1"}, "sk": {"S": "EV#2"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "ORDER#1"}, "sk": {"S": "CLAIM"}}}},
        ]
    )
    assert len(table.scan(TableName="t")["Items"]) == 4
    assert [r["eventName"] for r in _stream(table)[len(before) :]] == ["INSERT", "INSERT"]
