"""The smart strategy's cost per call: DynamoDB requests per quote (``POST /v1/quotes``) and per order's
carrier selection under ``rules`` and under ``smart`` (issue 18: no more than one extra read per candidate).

The real adapters on moto in-process, the table from template.yaml; the lane history of both candidates
(ZTO through Kdniao, SF) in the all-time lane cells as the delivery-facts consumer's ``ADD`` updates
leave them, ``facts`` per carrier — the counts must not depend on it (one ``BatchGetItem`` whatever the history).

    python -m bench.selection [--facts 1000]
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.scorecards import REGION, _Requests, table_spec

DEFAULT_FACTS = 1000
SHIPMENT = "shp_bench_selection"
NOW = datetime(2026, 11, 30, 2, tzinfo=UTC)


class _Unpublished:
    def publish(self, events: Any) -> None:
        raise RuntimeError("selection publishes nothing")


def command(facts: int = DEFAULT_FACTS) -> str:
    return f".venv/bin/python -m bench.selection --facts {facts}"


def _shipment() -> Any:
    from parcelhub.domain.models import Item, Money, Parcel, Shipment

    value = Money(amount=Decimal("399.00"))
    return Shipment(
        shipment_id=SHIPMENT,
        order_id="SO-BENCH-SELECTION",
        declared_value=value,
        parcels=[Parcel(weight_kg=1.2)],
        items=[Item(name="围巾", quantity=1, unit_price=value)],
        receiver_masked={"name": "张*"},
        origin_province="浙江省",
        origin_city="杭州市",
        destination_province="上海市",
        destination_city="上海市",
        created_at=NOW,
        updated_at=NOW,
    )


def _history(client: Any, table: str, facts: int) -> None:
    """Each candidate's all-time city, province and national cells as the scorecard writer's ``ADD``
    updates leave them after ``facts`` deliveries (summed here: one update per cell)."""
    from parcelhub.adapters.dynamodb.lane_cells import ALL_TIME, add_expression, cell_pk
    from parcelhub.domain.lanes import DeliveryFact, Lane, LaneLevel, LaneStats, Outcome, contribution, lane_key

    lane = Lane("浙江省", "杭州市", "上海市", "上海市")
    for carrier, provider in (("ZTO", "kdniao"), ("SF", "sf")):
        stats = LaneStats()
        for n in range(facts):
            created = NOW - timedelta(days=60) + timedelta(hours=5 * n)
            delivered = created + timedelta(hours=30 + n % 25)  # all on time
            stats = stats + contribution(
                DeliveryFact(
                    shipment_id=f"shp_bench_{carrier}_{n}",
                    carrier=carrier,
                    provider=provider,
                    service="standard",
                    lane=lane,
                    outcome=Outcome.DELIVERED,
                    created_at=created,
                    picked_up_at=created + timedelta(hours=6),
                    delivered_at=delivered,
                    ended_at=delivered,
                    attempts=1,
                    promised_latest=created + timedelta(hours=60),
                )
            )
        expression, names, values = add_expression(stats)
        for level in (LaneLevel.CITY, LaneLevel.PROVINCE, LaneLevel.NATIONAL):
            key = {"pk": {"S": cell_pk(carrier, "standard", level, lane_key(lane, level))}, "sk": {"S": ALL_TIME}}
            client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )


def run(facts: int = DEFAULT_FACTS) -> dict[str, Any]:
    import boto3

    from parcelhub.adapters.dynamodb import DynamoShipmentStore
    from parcelhub.app.capacity import CapacityGate
    from parcelhub.app.circuit import CircuitBreaker
    from parcelhub.app.quotes import OrderFacts, Quoter
    from parcelhub.app.waybill import WaybillDeps, WaybillService
    from parcelhub.config import HubConfig
    from parcelhub.domain.delivery_clock import local_day
    from parcelhub.domain.models import Carrier, Provider
    from parcelhub.domain.policy import CarrierCandidate
    from sandbox.local.stack import in_process_moto

    smart = HubConfig.model_validate({"selection": {"strategy": "smart"}})
    capped = HubConfig.model_validate(
        {
            "selection": {"strategy": "smart"},
            "capacity": {"enabled": True, "carriers": {"ZTO": {"daily_cap": 5000}, "SF": {"daily_cap": 2000}}},
        }
    )
    with in_process_moto():
        client = boto3.client("dynamodb", region_name=REGION)
        spec = table_spec()
        client.create_table(**spec)
        table = spec["TableName"]
        store = DynamoShipmentStore(table, client=client)
        _history(client, table, facts)
        store.create(_shipment())
        requests = _Requests(client)

        def counted(action: Any) -> dict[str, int]:
            requests.reset()
            action()
            return dict(requests.calls)

        def service(config: HubConfig) -> WaybillService:
            def unused(*_: Any) -> Any:
                raise RuntimeError("selection neither decrypts nor calls a provider")

            return WaybillService(
                WaybillDeps(
                    store=store,
                    publisher=_Unpublished(),
                    decrypt_party=unused,
                    plugin=unused,
                    labels=None,
                    config=lambda: config,
                    callback_url=unused,
                    lanes=store,
                    capacity=store,
                    now=lambda: NOW,
                )
            )

        circuit = CircuitBreaker(store, smart.circuit)
        quoter = Quoter(store, lambda: smart, circuit_open=lambda p: circuit.blocked(p.value))
        order = OrderFacts.of_shipment(store.get(SHIPMENT))
        choice = quoter.quote(order, NOW)
        per_quote = counted(lambda: quoter.quote(order, NOW))
        rules = counted(lambda: service(HubConfig()).select_carriers(SHIPMENT))
        with_smart = counted(lambda: service(smart).select_carriers(SHIPMENT))
        # capacity planning on: the counters ride in the lane cells' read; the create step's admission
        # counts the shipment in one conditional transaction, which a failed create gives back
        store.record_intake("ZTO", "shp_bench_earlier", local_day(NOW))
        with_capacity = counted(lambda: service(capped).select_carriers(SHIPMENT))
        gate = CapacityGate(store, lambda: capped)
        zto = CarrierCandidate(provider=Provider.KDNIAO, carrier=Carrier.ZTO)
        admit = counted(lambda: gate.admit(zto, SHIPMENT, NOW))
        release = counted(lambda: gate.release(Carrier.ZTO, SHIPMENT, NOW))
    reads = ("GetItem", "BatchGetItem", "Query")
    added_reads = sum(with_smart.get(op, 0) for op in reads) - sum(rules.get(op, 0) for op in reads)
    candidates = len(choice.record.options)
    return {
        "lane_facts_per_carrier": facts,
        "candidates": candidates,
        "chosen": f"{choice.record.carrier}/{choice.record.provider} ({choice.record.reason})",
        "per_quote": per_quote,
        "per_order_rules": rules,
        "per_order_smart": with_smart,
        "per_order_smart_with_capacity": with_capacity,
        "capacity_per_create_attempt": admit,
        "capacity_per_failed_create": release,
        "added_reads_per_order": added_reads,
        "added_reads_per_candidate": round(added_reads / candidates, 2),
        "within_target": added_reads <= candidates,
    }


def table(result: dict[str, Any]) -> str:
    def calls(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {op}" for op, n in sorted(counts.items()))

    return "\n".join(
        [
            "| call | DynamoDB requests |",
            "|---|---|",
            f"| a quote ({result['candidates']} candidates) | {calls(result['per_quote'])} |",
            f"| an order's selection, `rules` | {calls(result['per_order_rules'])} |",
            f"| an order's selection, `smart` | {calls(result['per_order_smart'])} |",
            f"| an order's selection, `smart` + capacity | {calls(result['per_order_smart_with_capacity'])} |",
            f"| capacity: admitting a create attempt | {calls(result['capacity_per_create_attempt'])} |",
            f"| capacity: giving back a failed create's count | {calls(result['capacity_per_failed_create'])} |",
            "",
            (
                f"`smart` adds {result['added_reads_per_order']} reads per order "
                f"({result['added_reads_per_candidate']} per candidate; target at most 1: "
                f"**{'met' if result['within_target'] else 'NOT met'}**) and the write of the selection record; "
                f"{result['lane_facts_per_carrier']} lane facts per carrier; chosen {result['chosen']}."
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.selection", description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=DEFAULT_FACTS)
    args = parser.parse_args(argv)
    result = run(args.facts)
    print(table(result))
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
