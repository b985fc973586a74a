"""Generate the event contracts: infra/events/<EventName>.json and docs/events.md (dev-only tool).

The JSON Schema of each event's ``detail`` comes from the models ``EVENT_TYPES`` lists (``events.contracts``);
the docs add when each event fires, who consumes it, and a realistic example::

    python -m tools.event_schemas --write infra/events --docs docs/events.md
    python -m tools.event_schemas --check infra/events --docs docs/events.md   # CI: fails on drift
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from parcelhub.domain.models import Carrier, CustomerTier, Provider, ServiceLevel, SignType
from parcelhub.domain.returns import ReturnReason, ReturnState
from parcelhub.domain.status import Status, SubStatus
from parcelhub.events import (
    EVENT_TYPES,
    SOURCE,
    Alert,
    AttemptSummary,
    CarrierCapacityAlert,
    CarrierCircuitClosed,
    CarrierCircuitOpened,
    CarrierFailover,
    DeliveryConfirmed,
    EstimatedDeliveryChanged,
    Event,
    ReturnCancelled,
    ReturnCreated,
    ReturnPickedUp,
    ReturnReceived,
    ShipmentAccepted,
    ShipmentDelivered,
    ShipmentException,
    ShipmentStalled,
    ShipmentStatusChanged,
    StallResolved,
    TrackingRegistered,
    WaybillCancelFailed,
    WaybillCreated,
    WaybillFailed,
)
from parcelhub.events.base import SCHEMA_VERSION

E = TypeVar("E", bound=Event)

# ---------------------------------------------------------------------------------------- examples

_T0 = datetime(2024, 5, 1, 2, 30, 56, tzinfo=UTC)  # 2024-05-01 10:30:56 China time


def _at(hours: float) -> datetime:
    return _T0 + timedelta(hours=hours)


_SHIPMENT = {"shipment_id": "shp_01HX3Z9K7Q4M2N8P5R6S", "order_id": "DTC-20240501-0042"}
_ZTO = {**_SHIPMENT, "carrier": Carrier.ZTO, "provider": Provider.KDNIAO, "tracking_number": "73100012345678"}

#: a booked return (its own shipment, linked to the one it returns)
_RETURN = {
    **_ZTO,
    "shipment_id": "ret_018f2a1b3c4d7e9f01a2b3c4",
    "tracking_number": "73100012349999",
    "original_shipment_id": _SHIPMENT["shipment_id"],
    "reason": ReturnReason.DAMAGED,
}


def _example_attempts() -> list[AttemptSummary]:
    return [
        AttemptSummary(
            provider=Provider.SF,
            carrier=Carrier.SF,
            outcome="unavailable",
            error_code="HTTP 503",
            error_message="Service Unavailable",
            at=_at(0.01),
        ),
        AttemptSummary(
            provider=Provider.KDNIAO,
            carrier=Carrier.ZTO,
            outcome="rejected",
            error_code="105",
            error_message="收件地址超出派送范围",
            at=_at(0.02),
        ),
    ]


_EXAMPLES: dict[str, Callable[[], Event]] = {
    "ShipmentAccepted": lambda: ShipmentAccepted(
        **_SHIPMENT,
        customer_tier=CustomerTier.VIP,
        service=ServiceLevel.STANDARD,
        destination_province="广东省",
        destination_city="深圳市",
        parcel_count=1,
        accepted_at=_T0,
        emitted_at=_T0,
    ),
    "WaybillCreated": lambda: WaybillCreated(
        **_ZTO,
        created_at=_at(0.01),
        attempt_count=2,
        failed_over=True,
        has_label=True,
        tracking_url="https://track.brand.example/t/shp_01HX3Z9K7Q4M2N8P5R6S.q3Vb0mY4rT8wXe2Lk9NpZA",
        emitted_at=_at(0.01),
    ),
    "DeliveryConfirmed": lambda: DeliveryConfirmed(
        **_ZTO,
        signed_at=_at(2.1),
        sign_type=SignType.STATION,
        station="菜鸟驿站(阳光小区店)",
        receipt="copied",
        emitted_at=_at(2.1),
    ),
    "TrackingRegistered": lambda: TrackingRegistered(
        shipment_id="shp_0193a7c2e4f1a2b3c4d5e6f8",
        order_id="TMALL-3390021187",
        carrier=Carrier.YTO,
        provider=Provider.KUAIDI100,
        tracking_number="YT7512345678901",
        detection="pattern",
        candidates=[Carrier.YTO],
        registered_at=_at(0.01),
        emitted_at=_at(0.01),
    ),
    "WaybillFailed": lambda: WaybillFailed(
        **_SHIPMENT, attempts=_example_attempts(), failed_at=_at(0.02), emitted_at=_at(0.02)
    ),
    "WaybillCancelFailed": lambda: WaybillCancelFailed(
        **_SHIPMENT,
        provider=Provider.SF,
        carrier=Carrier.SF,
        provider_order_id="shp_0193a7c2e4f1a2b3c4d5e6f7",
        tracking_number="SF1234567890123",
        cancel_attempts=5,
        error_code="HTTP_503",
        error_message="HTTP 503",
        failed_at=_at(0.5),
        emitted_at=_at(0.5),
    ),
    "CarrierFailover": lambda: CarrierFailover(
        **_SHIPMENT,
        attempt=1,
        from_provider=Provider.SF,
        from_carrier=Carrier.SF,
        to_provider=Provider.KDNIAO,
        to_carrier=Carrier.ZTO,
        reason="unavailable",
        error_code="HTTP 503",
        error_message="Service Unavailable",
        occurred_at=_at(0.01),
        emitted_at=_at(0.01),
    ),
    "ShipmentStatusChanged": lambda: ShipmentStatusChanged(
        **_ZTO,
        old_status=Status.PICKED_UP,
        new_status=Status.IN_TRANSIT,
        sub_status=SubStatus.AT_TRANSIT_HUB,
        occurred_at=_at(8),
        location="杭州市",
        description="【杭州市】快件已到达 杭州中转部",
        emitted_at=_at(8.01),
    ),
    "ShipmentDelivered": lambda: ShipmentDelivered(
        **_ZTO,
        sub_status=SubStatus.SIGNED_AT_LOCKER,
        occurred_at=_at(50),
        location="深圳市",
        description="【深圳市】您的快件已签收，签收人凭取件码在丰巢智能柜取件",
        emitted_at=_at(50.01),
    ),
    "ShipmentException": lambda: ShipmentException(
        **_ZTO,
        old_status=Status.OUT_FOR_DELIVERY,
        new_status=Status.EXCEPTION,
        sub_status=SubStatus.RECIPIENT_UNREACHABLE,
        occurred_at=_at(30),
        location="深圳市",
        description="【深圳市】快递员李师傅（13800000000）派件时收件人电话无人接听",
        emitted_at=_at(30.01),
    ),
    "ShipmentStalled": lambda: ShipmentStalled(
        **_ZTO,
        status=Status.IN_TRANSIT,
        sub_status=SubStatus.AT_TRANSIT_HUB,
        rule="in_transit",
        threshold_seconds=48 * 3600,
        stalled_for_seconds=51 * 3600 + 20 * 60,
        last_event_text="【杭州市】快件已到达 杭州中转部",
        last_event_at=_at(8),
        episode_id="stall-in_transit-20240501T103056Z",
        detected_at=_at(59.34),
        emitted_at=_at(59.34),
    ),
    "StallResolved": lambda: StallResolved(
        **_ZTO,
        rule="in_transit",
        episode_id="stall-in_transit-20240501T103056Z",
        new_status=Status.ARRIVED_AT_DESTINATION_CITY,
        stalled_for_seconds=55 * 3600,
        resolved_at=_at(63),
        emitted_at=_at(63.01),
    ),
    "CarrierCircuitOpened": lambda: CarrierCircuitOpened(
        provider=Provider.SF,
        failures=5,
        window_seconds=60,
        cool_down_seconds=300,
        opened_at=_at(0.01),
        half_open_at=_at(0.01 + 300 / 3600),
        last_error_code="HTTP 503",
        last_error_message="Service Unavailable",
        emitted_at=_at(0.01),
    ),
    "CarrierCapacityAlert": lambda: CarrierCapacityAlert(
        carrier=Carrier.ZTO,
        kind="balance_low",
        day=date(2026, 11, 9),
        daily_cap=3000,
        intake_today=1850,
        forecast_today=2400.0,
        balance_left=4100,
        balance_source="provider",
        cover_days=1.6,
        min_cover_days=3.0,
        cap_day=date(2026, 11, 11),
        promotion="双11",
        emitted_at=_at(0.5),
    ),
    "CarrierCircuitClosed": lambda: CarrierCircuitClosed(
        provider=Provider.SF, opened_at=_at(0.01), closed_at=_at(0.2), emitted_at=_at(0.2)
    ),
    "EstimatedDeliveryChanged": lambda: EstimatedDeliveryChanged(
        **_ZTO,
        earliest=datetime(2024, 5, 3, 16, tzinfo=UTC),  # 4 May 00:00 China time
        most_likely=datetime(2024, 5, 4, 3, 20, tzinfo=UTC),
        latest=datetime(2024, 5, 5, 15, 59, 59, tzinfo=UTC),
        confidence=0.91,
        basis="lane:city:picked_up",
        previous_latest=datetime(2024, 5, 4, 15, 59, 59, tzinfo=UTC),
        emitted_at=_at(8.2),
    ),
    "ReturnCreated": lambda: ReturnCreated(
        **_RETURN,
        return_state=ReturnState.PICKUP_BOOKED,
        pickup_window_start=_at(24),
        pickup_window_end=_at(27),
        emitted_at=_at(0.01),
    ),
    "ReturnPickedUp": lambda: ReturnPickedUp(**_RETURN, picked_up_at=_at(25), emitted_at=_at(25.01)),
    "ReturnReceived": lambda: ReturnReceived(**_RETURN, received_at=_at(50), emitted_at=_at(50.01)),
    "ReturnCancelled": lambda: ReturnCancelled(**_RETURN, return_state=ReturnState.CANCELLED, emitted_at=_at(2)),
}


def example(cls: type[E]) -> E:
    """A realistic instance of an event (docs, contract tests)."""
    return cast(E, _EXAMPLES[cls.detail_type()]())


# ------------------------------------------------------------------------------ schemas and docs


def schema_for(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an event's ``detail``."""
    body = cls.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:parcelhub:events:{cls.detail_type()}:v{SCHEMA_VERSION}",
        "x-source": SOURCE,
        "x-detail-type": cls.detail_type(),
        **body,
    }


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def render_schemas() -> dict[str, str]:
    """``{"<EventName>.json": text}`` for every event."""
    return {f"{cls.detail_type()}.json": _dump(schema_for(cls)) for cls in EVENT_TYPES}


def _type_of(prop: Mapping[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " \\| ".join(_type_of(p) for p in prop["anyOf"])
    if "enum" in prop:
        return "enum"
    if "const" in prop:
        return f"`{prop['const']}`"
    if prop.get("type") == "array":
        return f"array of {_type_of(prop.get('items', {}))}"
    kind = str(prop.get("type", "any"))
    return f"{kind} ({prop['format']})" if "format" in prop else kind


def render_docs() -> str:
    """``docs/events.md``: each event, when it fires, who consumes it, its fields and an example."""
    out = [
        "# parcelhub events",
        "",
        (
            "<!-- Generated by `python -m tools.event_schemas --write infra/events --docs docs/events.md`;"
            " do not edit by hand. -->"
        ),
        "",
        (
            "Every event is put on the hub's EventBridge bus with `source` = `parcelhub` and `detail-type` = the"
            " event name. The `detail` is described by a JSON Schema in `infra/events/<EventName>.json`"
            " (generated from `parcelhub/events/contracts.py`; CI fails on drift, and a contract test validates"
            " what the code emits against it)."
        ),
        "",
        "- `event_id` is deterministic (a hash of what happened): dedupe on it, delivery is at-least-once.",
        "- `emitted_at` is the publish time (UTC); business times are in each event's own fields.",
        "- No personal data: no names, phones or street addresses; carrier texts are redacted.",
        (
            "- `ShipmentStalled`, `WaybillFailed`, `WaybillCancelFailed`, `CarrierCircuitOpened` and"
            " `CarrierCapacityAlert` carry `alert.subject` (ASCII, SNS"
            " subject rules) and `alert.message` (Chinese, then English). The ops rule forwards"
            " `$.detail.alert.message` to the ops SNS topic."
        ),
        "",
        "| event | fires when | consumers |",
        "|---|---|---|",
    ]
    for cls in EVENT_TYPES:
        out.append(
            f"| [{cls.detail_type()}](#{cls.detail_type().lower()}) | {cls.fires_when} | {'; '.join(cls.consumers)} |"
        )
    for cls in EVENT_TYPES:
        schema = schema_for(cls)
        required = set(schema.get("required", []))
        sample = example(cls)
        out += ["", f"## {cls.detail_type()}", "", (cls.__doc__ or "").strip(), ""]
        out += [f"**Fires when:** {cls.fires_when}", "", f"**Consumers:** {'; '.join(cls.consumers)}", ""]
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        for name, prop in schema.get("properties", {}).items():
            desc = str(prop.get("description", "")).replace("|", "\\|")
            out.append(f"| `{name}` | {_type_of(prop)} | {'yes' if name in required else 'no'} | {desc} |")
        out += ["", "Example `detail`:", "", "```json", _dump(json.loads(sample.detail_json())).rstrip(), "```"]
        alert = getattr(sample, "alert", None)
        if isinstance(alert, Alert):
            out += ["", "The ops alert it carries (`alert.message`):", "", "```text", alert.message, "```"]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.event_schemas", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="DIR", type=Path, help="write infra/events/<EventName>.json")
    mode.add_argument("--check", metavar="DIR", type=Path, help="fail when DIR differs from the models")
    parser.add_argument("--docs", metavar="FILE", type=Path, help="also write/check docs/events.md")
    args = parser.parse_args(argv)
    wanted = render_schemas()
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in args.write.glob("*.json")} - set(wanted):
            (args.write / stale).unlink()
        for name, text in wanted.items():
            (args.write / name).write_text(text, encoding="utf-8")
        if args.docs:
            args.docs.parent.mkdir(parents=True, exist_ok=True)
            args.docs.write_text(render_docs(), encoding="utf-8")
        return 0
    folder: Path = args.check
    present = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json")} if folder.is_dir() else {}
    drift = sorted(n for n in set(wanted) | set(present) if wanted.get(n) != present.get(n))
    if args.docs and (not args.docs.exists() or args.docs.read_text(encoding="utf-8") != render_docs()):
        drift.append(str(args.docs))
    if drift:
        print(f"event contracts drifted from parcelhub.events: {', '.join(drift)}", file=sys.stderr)
        print("regenerate: python -m tools.event_schemas --write infra/events --docs docs/events.md", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
