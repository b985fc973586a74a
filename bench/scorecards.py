"""Scorecard cost at scale: DynamoDB requests to record one delivery fact (and to read a scorecard) with
1,000 and with 100,000 facts already recorded. They must be equal: the write is one transaction of the
fact and its 8 cells whatever the history's size, the read one Query per level and period.

The real adapter (``DynamoScorecards``) on moto in-process, the table created from template.yaml's
``ParcelhubTable`` (with the sparse ``scorecard`` GSI), moto's transactions backing up only what they
touch (``sandbox.local.fidelity``, as in the local stack). The first ``--api-facts`` facts (default 200)
are recorded through the adapter (one ``TransactWriteItems`` each); the rest go straight into moto's
backend as the transactions would have left them — the fact items, and each cell with the summed
contributions of its facts — because moto parses a long ``ADD`` expression in about half a second and
100,000 transactions would take half a day. The measured fact always goes through the adapter and the
API. Facts are spread over 3 carriers, 24 destination cities and 12 ISO weeks.

    python -m bench.scorecards [--sizes 1000,100000] [--api-facts 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
TABLE = "parcelhub-bench-scorecards"
DEFAULT_SIZES = (1_000, 100_000)
DEFAULT_API_FACTS = 200

_CARRIERS = ("ZTO", "SF", "YTO")
_DESTINATIONS = (
    ("广东省", "广州市"), ("广东省", "深圳市"), ("北京市", "北京市"), ("上海市", "上海市"), ("江苏省", "南京市"),
    ("江苏省", "苏州市"), ("四川省", "成都市"), ("湖北省", "武汉市"), ("湖南省", "长沙市"), ("福建省", "厦门市"),
    ("山东省", "青岛市"), ("河南省", "郑州市"), ("陕西省", "西安市"), ("重庆市", "重庆市"), ("天津市", "天津市"),
    ("辽宁省", "沈阳市"), ("云南省", "昆明市"), ("广西壮族自治区", "南宁市"), ("安徽省", "合肥市"),
    ("江西省", "南昌市"), ("河北省", "石家庄市"), ("黑龙江省", "哈尔滨市"), ("新疆维吾尔自治区", "乌鲁木齐市"),
    ("海南省", "海口市"),
)  # fmt: skip


def command(sizes: list[int] | tuple[int, ...] = DEFAULT_SIZES, api_facts: int = DEFAULT_API_FACTS) -> str:
    return f".venv/bin/python -m bench.scorecards --sizes {','.join(map(str, sizes))} --api-facts {api_facts}"


def a_fact(index: int) -> Any:
    """A delivered (every 20th returned) parcel with a promise, a cost and an occasional exception."""
    from parcelhub.domain.lanes import DeliveryFact, Lane, Outcome
    from parcelhub.domain.models import CHINA_TZ

    carrier = _CARRIERS[index % len(_CARRIERS)]
    province, city = _DESTINATIONS[(index // 3) % len(_DESTINATIONS)]
    created = datetime(2026, 9, 7, 9, tzinfo=CHINA_TZ) + timedelta(minutes=(index * 7919) % (12 * 7 * 24 * 60))
    picked = created + timedelta(hours=2 + index % 20)
    returned = index % 20 == 0
    delivered = None if returned else picked + timedelta(hours=18 + (index * 13) % 80)
    ended = delivered or picked + timedelta(days=6)
    return DeliveryFact(
        shipment_id=f"shp_bench_{index:07d}",
        carrier=carrier,
        provider="sf" if carrier == "SF" else "kdniao",
        service="standard",
        lane=Lane("浙江省", "杭州市", province, city),
        outcome=Outcome.RETURNED if returned else Outcome.DELIVERED,
        created_at=created,
        picked_up_at=picked,
        arrived_at=picked + timedelta(hours=12),
        delivered_at=delivered,
        ended_at=ended,
        attempts=0 if returned else 1 + (index % 11 == 0),
        exception_reasons=("RECIPIENT_UNREACHABLE",) if index % 11 == 0 else (),
        promised_latest=created + timedelta(days=3),
        cost_fen=800 + (index % 9) * 100,
    )


def table_spec() -> dict[str, Any]:
    from sandbox.local.provision import create_table_request
    from sandbox.local.template import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["ParcelhubTable"]["Properties"]
    return create_table_request(props, TABLE)


class _Requests:
    """Counts DynamoDB requests by operation (botocore's before-call hook) and the items they carry."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.items = 0
        client.meta.events.register("before-parameter-build.dynamodb", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls[model.name] += 1
        self.items += len(params.get("TransactItems", [])) if model.name == "TransactWriteItems" else 1

    def reset(self) -> None:
        self.calls.clear()
        self.items = 0


def _seed_backend(store: Any, client: Any, start: int, end: int) -> None:
    """Facts ``start..end`` as their transactions would leave them, straight into moto's backend: the fact
    items, and each cell as it stood plus the summed contributions of its new facts."""
    from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
    from moto.dynamodb.models import dynamodb_backends

    from parcelhub.adapters.dynamodb import serialization as ser
    from parcelhub.adapters.dynamodb.lane_cells import attribute_values, stats_from_item
    from parcelhub.domain.lanes import LaneStats, contribution

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(TABLE)
    cells: dict[tuple[str, str], tuple[LaneStats, dict[str, Any]]] = {}
    for index in range(start, end):
        fact = a_fact(index)
        put, *updates = store.fact_write(fact)
        backend.put_item(put["Put"]["Item"])
        stats = contribution(fact)
        for update in updates:
            body = update["Update"]
            slot = (body["Key"]["pk"]["S"], body["Key"]["sk"]["S"])
            values = body["ExpressionAttributeValues"]
            card = {"card_pk": values[":cp"], "card_sk": values[":cs"]}
            earlier = cells.get(slot)
            cells[slot] = (earlier[0] + stats if earlier else stats, card)
    for (pk, sk), (stats, card) in cells.items():
        stored = client.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        total = stats_from_item(ser.from_wire(stored)) + stats if stored else stats
        item = {"pk": {"S": pk}, "sk": {"S": sk}, **card}
        item |= {name: {"N": str(value)} for name, value in attribute_values(total).items()}
        backend.put_item(item)


def run(sizes: list[int] | tuple[int, ...] = DEFAULT_SIZES, api_facts: int = DEFAULT_API_FACTS) -> dict[str, Any]:
    """``{"sizes": [...], "equal": bool}``: per size the requests to record one new fact and to read the
    carrier-level scorecard for all time."""
    import boto3

    from parcelhub.adapters.dynamodb.scorecards import DynamoScorecards
    from parcelhub.domain.lanes import LaneLevel
    from sandbox.local.fidelity import serialize_dynamodb
    from sandbox.local.stack import in_process_moto

    serialize_dynamodb()  # moto's transactions back up what they touch, not the whole table (as the local stack)
    rows: list[dict[str, Any]] = []
    with in_process_moto():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**table_spec())
        store = DynamoScorecards(TABLE, client=client)
        requests = _Requests(client)
        recorded = via_backend = 0
        probe = 10_000_000  # the measured facts' indexes: never among the seeded ones
        for size in sorted(sizes):
            started = time.perf_counter()
            api_end = min(size, api_facts)
            for index in range(recorded, api_end):
                store.record_fact(a_fact(index))
            if size > max(recorded, api_end):
                _seed_backend(store, client, max(recorded, api_end), size)
                via_backend += size - max(recorded, api_end)
            load_seconds = time.perf_counter() - started
            recorded = size
            # one new fact
            requests.reset()
            started = time.perf_counter()
            if not store.record_fact(a_fact(probe)):
                raise RuntimeError("the probe fact was recorded before")
            write_ms = (time.perf_counter() - started) * 1000
            write_calls, write_items = dict(requests.calls), requests.items
            # the same fact again: refused by its condition, nothing added
            requests.reset()
            if store.record_fact(a_fact(probe)):
                raise RuntimeError("a fact was recorded twice")
            replay_calls = dict(requests.calls)
            # a scorecard read
            requests.reset()
            cells = store.scorecards(carrier=None, level=LaneLevel.NATIONAL, lane=None, periods=["all"])
            read_calls = dict(requests.calls)
            rows.append(
                {
                    "recorded_facts": size,
                    "record_one_fact": {"requests": write_calls, "items": write_items},
                    "record_ms_on_moto": round(write_ms, 1),
                    "replay_same_fact": {"requests": replay_calls, "counted": False},
                    "carrier_scorecard_read": {"requests": read_calls, "rows": len(cells)},
                    "national_parcels": sum(c.stats.count("parcels") for c in cells),
                    "load_seconds": round(load_seconds, 1),
                    "loaded_via_transactions": min(size, api_facts),
                    "loaded_via_moto_backend": via_backend,
                }
            )
            probe += 1
            if rows[-1]["national_parcels"] != size + len(rows):
                raise RuntimeError(
                    f"the scorecards count {rows[-1]['national_parcels']} parcels, not {size + len(rows)}"
                )
    first = rows[0]
    equal = all(
        (r["record_one_fact"], r["carrier_scorecard_read"]["requests"])
        == (first["record_one_fact"], first["carrier_scorecard_read"]["requests"])
        for r in rows
    )
    return {"sizes": rows, "equal": equal}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| facts recorded | requests to record one fact | items in it | replayed fact | carrier scorecard read | ms on moto | loaded via |",  # noqa: E501
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["sizes"]:
        write = ", ".join(f"{n} {op}" for op, n in r["record_one_fact"]["requests"].items())
        replay = ", ".join(f"{n} {op}" for op, n in r["replay_same_fact"]["requests"].items())
        read = ", ".join(f"{n} {op}" for op, n in r["carrier_scorecard_read"]["requests"].items())
        loaded = f"{r['loaded_via_transactions']:,} transactions"
        if r["loaded_via_moto_backend"]:
            loaded += f" + moto backend {r['loaded_via_moto_backend']:,}"
        lines.append(
            f"| {r['recorded_facts']:,} | {write} | {r['record_one_fact']['items']} | {replay} (not counted) | "
            f"{read} | {r['record_ms_on_moto']} | {loaded} |"
        )
    lines.append("")
    lines.append(f"Equal at every size: **{'yes' if result['equal'] else 'NO'}**.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorecards", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--api-facts", type=int, default=DEFAULT_API_FACTS)
    args = parser.parse_args(argv)
    result = run([int(s) for s in args.sizes.split(",") if s], args.api_facts)
    print(table(result))
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
