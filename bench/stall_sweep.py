"""Stall sweep scaling: items read per sweep with 1k, 10k, 100k active shipments and a fixed number due.

The real store (``DynamoShipmentStore.query_due_stalls(now, stats=QueryStats())``) on moto in-process,
the table created from template.yaml's ``ParcelhubTable`` (keys, the sparse ``stall`` GSI and its INCLUDE
projection). Active shipments are written as shipment items carrying the stall-index attributes (the
store's own ``serialization.stall_attributes``, so the shard spread is the real one) with BatchWriteItem
(25 per call) up to ``--api-items`` (default 10,000); beyond that they go straight into moto's DynamoDB
backend (``Table.put_item``, the same item validation without the HTTP round trip), because moto needs
about 2 ms per item through the API and 100k would eat most of the 10 minute budget. ``due`` of them are
overdue, the rest due in 1-5 days. Sizes grow cumulatively (the 10k table is the 1k table plus 9k more),
so the due set stays the same shipments. The sweep itself always goes through the store and the API.

``items_read`` is DynamoDB's ``ScannedCount`` summed over the sweep's pages (what the query is billed on);
``rcu_estimated`` applies DynamoDB's rule for an eventually consistent index query (0.5 RCU per 4 KB
read per page, rounded up) to the bytes of the items returned; moto's own ConsumedCapacity figure is
reported too (moto does not model it).

    python -m bench.stall_sweep [--sizes 1000,10000,100000] [--due 20]
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
TABLE = "parcelhub-bench"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEFAULT_DUE = 20
DEFAULT_API_ITEMS = 10_000
BATCH = 25


def command(sizes: list[int], due: int, api_items: int = DEFAULT_API_ITEMS) -> str:
    return (
        f".venv/bin/python -m bench.stall_sweep --sizes {','.join(map(str, sizes))} --due {due} --api-items {api_items}"
    )


def table_spec() -> dict[str, Any]:
    from sandbox.local.template import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["ParcelhubTable"]["Properties"]
    return {
        "TableName": TABLE,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"],
    }


def shipment_item(index: int, due_at: datetime, shards: int) -> dict[str, Any]:
    """A shipment item in the stall index, with the attributes the index projects."""
    from parcelhub.adapters.dynamodb import serialization as ser

    shipment_id = f"shp_bench_{index:07d}"
    item: dict[str, Any] = {
        "pk": {"S": ser.shipment_pk(shipment_id)},
        "sk": {"S": ser.META},
        "shipment_id": {"S": shipment_id},
        "order_id": {"S": f"DTC-BENCH-{index:07d}"},
        "status": {"S": "IN_TRANSIT"},
        "carrier": {"S": "ZTO"},
        "provider": {"S": "kdniao"},
        "tracking_number": {"S": f"7319{index:010d}"},
        "last_event_at": {"S": ser.iso(due_at - timedelta(hours=48))},
        "last_event_text": {"S": "【杭州市】快件已发往 上海转运中心"},
    }
    for name, value in ser.stall_attributes(shipment_id, due_at, "in_transit_48h", f"ep-{index}", shards).items():
        item[name] = {"S": value}
    return item


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB item size: attribute names plus values (strings as UTF-8)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode("utf-8"))
        for kind, raw in value.items():
            size += len(str(raw).encode("utf-8")) if kind in {"S", "N"} else 16
    return size


def run(
    sizes: list[int] | tuple[int, ...] = DEFAULT_SIZES, due: int = DEFAULT_DUE, api_items: int = DEFAULT_API_ITEMS
) -> list[dict[str, Any]]:
    """One row per size: ``{"active", "due", "items_read", ...}``."""
    import boto3

    from parcelhub.adapters.dynamodb import DynamoShipmentStore
    from parcelhub.ports.store import DEFAULT_SHARDS, QueryStats
    from sandbox.local.stack import in_process_moto

    rows: list[dict[str, Any]] = []
    with in_process_moto():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**table_spec())
        store = DynamoShipmentStore(TABLE, client=client, shards=DEFAULT_SHARDS)
        backend_table = _backend_table()
        now = datetime.now(UTC)
        written = 0
        loaded_backend = 0
        write_seconds = 0.0
        for size in sorted(sizes):
            started = time.perf_counter()
            pending: list[dict[str, Any]] = []
            via_backend = 0
            for index in range(written, size):
                overdue = index < due
                due_at = now - timedelta(minutes=5 + index) if overdue else now + timedelta(hours=24 + index % 96)
                item = shipment_item(index, due_at, DEFAULT_SHARDS)
                if index >= api_items:
                    backend_table.put_item(item)
                    via_backend += 1
                    continue
                pending.append({"PutRequest": {"Item": item}})
                if len(pending) == BATCH:
                    _write(client, pending)
                    pending = []
            if pending:
                _write(client, pending)
            loaded_backend += via_backend
            write_seconds += time.perf_counter() - started
            written = size

            stats = QueryStats()
            started = time.perf_counter()
            found = list(store.query_due_stalls(now, stats=stats))
            sweep_ms = (time.perf_counter() - started) * 1000
            returned_bytes = sum(_item_bytes(_projected(shipment_item(i, now, DEFAULT_SHARDS))) for i in range(due))
            rows.append(
                {
                    "active": size,
                    "due": due,
                    "items_read": stats.items_read,
                    "items_returned": stats.items_returned,
                    "found": len(found),
                    "pages": stats.pages,
                    "shards": DEFAULT_SHARDS,
                    "rcu_estimated": _rcu(returned_bytes, stats.pages),
                    "moto_consumed_capacity": stats.capacity_units,
                    "sweep_ms_on_moto": round(sweep_ms, 1),
                    "load_seconds_cumulative": round(write_seconds, 1),
                    "loaded_via_batch_write_item": size - loaded_backend,
                    "loaded_via_moto_backend": loaded_backend,
                }
            )
            if len(found) != min(due, size):
                raise RuntimeError(f"sweep over {size} shipments found {len(found)} due, expected {due}")
    return rows


def _backend_table() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(TABLE)


def _write(client: Any, requests: list[dict[str, Any]]) -> None:
    while requests:
        response = client.batch_write_item(RequestItems={TABLE: requests})
        requests = list(response.get("UnprocessedItems", {}).get(TABLE, []))


def _projected(item: dict[str, Any]) -> dict[str, Any]:
    """What the ``stall`` index holds of an item: the keys plus template.yaml's NonKeyAttributes."""
    spec = next(i for i in table_spec()["GlobalSecondaryIndexes"] if i["IndexName"] == "stall")
    keep = {"pk", "sk", "stall_pk", "stall_sk", *spec["Projection"].get("NonKeyAttributes", [])}
    return {k: v for k, v in item.items() if k in keep}


def _rcu(returned_bytes: int, pages: int) -> float:
    """Eventually consistent reads: 0.5 RCU per 4 KB, each page rounded up to a whole 4 KB (min 1)."""
    if pages == 0:
        return 0.0
    per_page = returned_bytes / pages
    return pages * 0.5 * max(1, math.ceil(per_page / 4096))


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| active shipments | due | items read | pages (8 shards) | RCU (estimated) | sweep ms on moto | loaded via |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        loaded = f"BatchWriteItem {r['loaded_via_batch_write_item']:,}"
        if r["loaded_via_moto_backend"]:
            loaded += f" + moto backend {r['loaded_via_moto_backend']:,}"
        lines.append(
            f"| {r['active']:,} | {r['due']} | {r['items_read']} | {r['pages']} | {r['rcu_estimated']} | "
            f"{r['sweep_ms_on_moto']} | {loaded} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--due", type=int, default=DEFAULT_DUE)
    parser.add_argument("--api-items", type=int, default=DEFAULT_API_ITEMS, help="items written with BatchWriteItem")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"$ {command(sizes, args.due, args.api_items)}")
    print(table(run(sizes, args.due, args.api_items)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
