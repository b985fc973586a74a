"""The waybill workflow end to end on moto Step Functions, our handler in-process, real sandboxes.

Each test drives the real ASL (``infra/statemachines/waybill.asl.json``): Retry/Catch are matched on
our exception class names, the plugins speak each provider's wire format to its sandbox over loopback.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import boto3
import pytest

from parcelhub import composition
from parcelhub.adapters.kms import PiiCipher
from parcelhub.carriers.base import WaybillOrder
from parcelhub.carriers.sf.plugin import SfPlugin
from parcelhub.domain.models import Carrier, CustomerTier, Provider
from parcelhub.domain.status import Status
from parcelhub.security.links import TrackingLinks

from .conftest import REGION, TRACKING_LINK_SECRET, WEBHOOK_BASE, World, order_request

pytestmark = pytest.mark.integration


def detail_types(events: list[dict[str, object]]) -> list[str]:
    return [str(e["detail-type"]) for e in events]


def vip(world: World, **overrides: object) -> str:
    return world.new_shipment(order_request(customer_tier="vip", **overrides)).shipment_id


def test_regular_order_gets_a_zto_waybill_through_kdniao_with_label_claim_stall_and_subscription(
    world: World,
) -> None:
    # Given a regular customer's order under 500 CNY
    shipment = world.new_shipment(order_request())
    # When the workflow runs
    described = world.run(shipment.shipment_id)
    # Then it succeeds with a ZTO waybill issued by Kdniao
    assert described["status"] == "SUCCEEDED", described
    stored = world.shipment(shipment.shipment_id)
    assert stored.status is Status.WAYBILL_CREATED
    assert (stored.provider, stored.carrier) == (Provider.KDNIAO, Carrier.ZTO)
    assert stored.tracking_number
    assert stored.waybill is not None
    assert [a.outcome for a in stored.waybill_attempts] == ["created"]
    # and the tracking claim points back at the shipment
    claim = composition.store().find_by_tracking("ZTO", stored.tracking_number)
    assert claim is not None
    assert claim.shipment_id == shipment.shipment_id
    # and the label (it prints the receiver) is in S3 under labels/<shipment>/<tracking>.html, not in the state
    assert stored.waybill.label_ref == f"labels/{shipment.shipment_id}/{stored.tracking_number}.html"
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=world.bucket, Key=stored.waybill.label_ref)
    assert body["Body"].read()
    history = world.sfn.get_execution_history(executionArn=described["executionArn"])["events"]
    assert "13912345678" not in json.dumps(history, default=str)
    assert "碧波路" not in json.dumps(history, default=str)
    # and the no-pickup stall deadline is in the stall index (24 h by default)
    due = list(composition.store().query_due_stalls(datetime.now(UTC) + timedelta(hours=25)))
    assert [(d.shipment_id, d.rule) for d in due] == [(shipment.shipment_id, "no_pickup")]
    assert not list(composition.store().query_due_stalls(datetime.now(UTC) + timedelta(hours=23)))
    # and tracking is subscribed at Kdniao for this tracking number
    with world.kdniao.lock:
        subscribed = [p for p in world.kdniao.parcels.values() if p.tracking_number == stored.tracking_number]
    assert subscribed
    assert subscribed[0].subscribed
    # and the delivery estimate was made with the waybill (no lane history yet: the defaults), kept as
    # the promise, and announced once next to exactly one WaybillCreated (no failover)
    assert stored.estimated_delivery is not None
    assert stored.promised_delivery == stored.estimated_delivery
    assert stored.estimated_delivery.basis == "default:created"
    published = world.events()
    assert sorted(detail_types(published)) == ["EstimatedDeliveryChanged", "WaybillCreated"]
    estimate = next(e["detail"] for e in published if e["detail-type"] == "EstimatedDeliveryChanged")
    assert (estimate["shipment_id"], estimate["basis"]) == (shipment.shipment_id, "default:created")
    events = [e for e in published if e["detail-type"] == "WaybillCreated"]
    assert events[0]["detail"]["failed_over"] is False
    assert events[0]["detail"]["tracking_number"] == stored.tracking_number
    # with the customer tracking page's link, authentic for this shipment
    url = events[0]["detail"]["tracking_url"]
    assert url.startswith(f"{WEBHOOK_BASE}/t/")
    assert TrackingLinks(TRACKING_LINK_SECRET).verify(url.rsplit("/", 1)[1]) == shipment.shipment_id


def test_vip_order_goes_to_sf_first_and_stores_the_route_label_json(world: World) -> None:
    # Given a VIP order
    shipment_id = vip(world)
    # When the workflow runs
    assert world.run(shipment_id)["status"] == "SUCCEEDED"
    # Then SF issued it directly (SF + 13 digits) and the route label data is stored as JSON
    stored = world.shipment(shipment_id)
    assert (stored.provider, stored.carrier) == (Provider.SF, Carrier.SF)
    assert stored.tracking_number
    assert stored.tracking_number.startswith("SF")
    assert stored.waybill
    assert stored.waybill.label_ref
    assert stored.waybill.label_ref.endswith(".json")


def test_sf_outage_retries_with_backoff_then_fails_over_to_kdniao(world: World) -> None:
    # Given SF is in an outage and a VIP order
    world.fault(world.sf, outage=True)
    shipment_id = vip(world)
    # When the workflow runs
    described = world.run(shipment_id)
    # Then SF got ONE create; its 503 leaves the outcome unclear, so SF was asked about that order on each
    # of the 2 retries (issue 13: never a second create, resolved before any failover), then Kdniao issued
    # the backup ZTO waybill
    assert described["status"] == "SUCCEEDED", described
    assert len(world.create_calls(world.sf)) == 1
    assert len(world.fetch_calls(world.sf)) >= 3
    stored = world.shipment(shipment_id)
    assert (stored.provider, stored.carrier) == (Provider.KDNIAO, Carrier.ZTO)
    assert [(a.provider, a.outcome) for a in stored.waybill_attempts] == [
        (Provider.SF, "unavailable"),
        (Provider.KDNIAO, "created"),
    ]
    # and WaybillCreated says so, with one CarrierFailover sf -> kdniao
    events = {e["detail-type"]: e["detail"] for e in world.events()}
    assert events["WaybillCreated"]["failed_over"] is True
    assert events["WaybillCreated"]["attempt_count"] == 2
    failover = events["CarrierFailover"]
    assert (failover["from_provider"], failover["to_provider"], failover["reason"]) == ("sf", "kdniao", "unavailable")


def test_address_rejection_moves_on_without_retrying_the_rejecting_provider(world: World) -> None:
    # Given SF rejects the address
    world.fault(world.sf, reject="address")
    shipment_id = vip(world)
    # When the workflow runs
    assert world.run(shipment_id)["status"] == "SUCCEEDED"
    # Then SF saw exactly ONE create call, the attempt carries SF's code, and Kdniao issued the waybill
    assert len(world.create_calls(world.sf)) == 1
    stored = world.shipment(shipment_id)
    first, second = stored.waybill_attempts
    assert (first.provider, first.outcome) == (Provider.SF, "rejected")
    assert first.error_code
    assert first.error_message
    assert (second.provider, second.outcome) == (Provider.KDNIAO, "created")
    # and a rejection says nothing about SF's health: its circuit counted no failure
    state, _ = composition.store().get_health("sf")
    assert not state.get("failures")


def test_circuit_opens_once_then_skips_sf_and_a_probe_closes_it_after_the_cool_down(world: World) -> None:
    # Given a breaker that opens after 3 failures and cools down for 5 minutes, and SF in an outage
    world.configure({"circuit": {"failure_threshold": 3, "window_seconds": 60, "cool_down_seconds": 300}})
    world.fault(world.sf, outage=True)
    # When three VIP orders are processed one after the other
    first, second, third = (vip(world) for _ in range(3))
    assert world.run(first)["status"] == "SUCCEEDED"  # 1 create + 2 retries asking about it fail: it opens
    calls_when_opened = len(world.sf.request_log)
    assert world.run(second)["status"] == "SUCCEEDED"
    assert world.run(third)["status"] == "SUCCEEDED"
    # Then the circuit opened exactly once, with its alert, and SF saw no call after it opened
    events = world.events()
    opened = [e["detail"] for e in events if e["detail-type"] == "CarrierCircuitOpened"]
    assert len(opened) == 1
    assert opened[0]["provider"] == "sf"
    assert "熔断" in opened[0]["alert"]["message"]
    assert "Circuit opened" in opened[0]["alert"]["message"]
    assert len(world.create_calls(world.sf)) == 1  # issue 13: the retries ask about the order, never re-create
    assert len(world.sf.request_log) == calls_when_opened
    # and the later shipments record the skip, then the backup's waybill
    for shipment_id in (second, third):
        outcomes = [(a.provider, a.outcome) for a in world.shipment(shipment_id).waybill_attempts]
        assert outcomes == [(Provider.SF, "skipped_circuit_open"), (Provider.KDNIAO, "created")]
    # When SF recovers and the cool-down passes (time travel: the stored open_until moves into the past)
    world.fault(world.sf, outage=False)
    state, version = composition.store().get_health("sf")
    assert composition.store().put_health("sf", {**state, "open_until": time.time() - 1}, version)
    fourth = vip(world)
    assert world.run(fourth)["status"] == "SUCCEEDED"
    # Then the one probe went to SF, succeeded and closed the circuit (one CarrierCircuitClosed)
    assert world.shipment(fourth).provider is Provider.SF
    closed = [e for e in world.events() if e["detail-type"] == "CarrierCircuitClosed"]
    assert len(closed) == 1
    state, _ = composition.store().get_health("sf")
    assert state["state"] == "closed"


def test_every_provider_down_marks_waybill_failed_with_an_alert_and_retry_recovers(world: World) -> None:
    # Given both providers are down
    world.fault(world.sf, outage=True)
    world.fault(world.kdniao, outage=True)
    shipment_id = world.new_shipment(order_request()).shipment_id
    # When the workflow runs
    described = world.run(shipment_id)
    # Then it fails: WAYBILL_FAILED, and a WaybillFailed event with a bilingual ops alert
    assert described["status"] == "FAILED"
    assert world.shipment(shipment_id).status is Status.WAYBILL_FAILED
    failed = [e["detail"] for e in world.events() if e["detail-type"] == "WaybillFailed"]
    assert len(failed) == 1
    assert [a["outcome"] for a in failed[0]["attempts"]] == ["unavailable", "unavailable"]
    assert "下单失败" in failed[0]["alert"]["message"]
    assert "Waybill failed" in failed[0]["alert"]["message"]
    # When the outage is cleared and /retry re-runs it (status back to PENDING, execution <id>-r<n>)
    world.fault(world.sf, outage=False)
    world.fault(world.kdniao, outage=False)
    now = datetime.now(UTC)
    _, name = composition.store().begin_run(
        shipment_id, "retry", expected={Status.WAYBILL_FAILED}, recovery_due=now + timedelta(minutes=15), now=now
    )
    retried = world.run(shipment_id, name=name)
    # Then it gets its waybill
    assert retried["status"] == "SUCCEEDED", retried
    stored = world.shipment(shipment_id)
    assert stored.status is Status.WAYBILL_CREATED
    assert stored.tracking_number
    assert [a.outcome for a in stored.waybill_attempts] == ["unavailable", "unavailable", "created"]
    created = [e["detail"] for e in world.events() if e["detail-type"] == "WaybillCreated"]
    assert len(created) == 1
    assert created[0]["attempt_count"] == 1


def test_sf_duplicate_order_fetches_the_existing_waybill_instead_of_failing(world: World) -> None:
    # Given SF already has the order (an earlier call's answer was lost): created under the shipment id
    shipment_id = vip(world)
    shipment = world.shipment(shipment_id)
    plugin = composition.plugin(Provider.SF)
    assert isinstance(plugin, SfPlugin)
    cipher = PiiCipher(world.key_id)
    request = order_request(customer_tier="vip", receiver=cipher.decrypt_party(shipment.pii["receiver"], shipment_id))
    earlier = plugin.create_waybill(
        WaybillOrder(shipment_id=shipment_id, carrier=Carrier.SF, request=request, sender=request.receiver)
    )
    # When the workflow runs
    assert world.run(shipment_id)["status"] == "SUCCEEDED"
    # Then SF answered 8016 and the existing waybill was recorded, not a new one
    stored = world.shipment(shipment_id)
    assert stored.tracking_number == earlier.tracking_number
    assert [a.outcome for a in stored.waybill_attempts] == ["created"]


def test_concurrent_executions_for_one_shipment_make_one_waybill_and_one_create_call(world: World) -> None:
    # Given one shipment and two executions started at once (an original and a racing retry)
    shipment_id = world.new_shipment(order_request()).shipment_id
    arns = [world.start(shipment_id), world.start(shipment_id, name=f"{shipment_id}-r1")]
    results = [world.wait(arn, timeout=150) for arn in arns]
    # Then both end well, but the provider saw ONE create call and the shipment has ONE waybill
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    assert len([c for c in world.create_calls(world.kdniao) if c["operation"] == "create_waybill"]) == 1
    stored = world.shipment(shipment_id)
    assert [a.outcome for a in stored.waybill_attempts] == ["created"]


def live_orders(world: World, shipment_id: str) -> list[str]:
    """The shipment's carrier orders that are (or may be) live at a provider: not cancelled, not absent."""
    orders = world.shipment(shipment_id).carrier_orders
    return [key for key, order in orders.items() if order.state not in {"cancelled", "absent"}]


def test_duplicate_runs_of_one_name_at_once_make_one_carrier_order_and_one_announcement(world: World) -> None:
    twins = 3
    # Given one shipment whose asynchronous Express start ran more than once: runs of the SAME execution name
    # at once (Express is at-least-once and does not de-duplicate names)
    shipment_id = world.new_shipment(order_request()).shipment_id
    # When they run concurrently
    arns = [world.start(shipment_id)] + [world.start_duplicate(shipment_id) for _ in range(twins - 1)]
    results = [world.wait(arn, timeout=150) for arn in arns]
    # Then none fails, the provider got ONE create call, the shipment has ONE live carrier order and one
    # "created" attempt, and ONE WaybillCreated was announced
    assert [r["status"] for r in results] == ["SUCCEEDED"] * twins
    assert len(world.create_calls(world.kdniao)) == 1
    assert len(live_orders(world, shipment_id)) == 1
    assert [a.outcome for a in world.shipment(shipment_id).waybill_attempts] == ["created"]
    assert [e["detail-type"] for e in world.events()].count("WaybillCreated") == 1


def test_a_duplicate_run_after_the_run_ended_does_nothing(world: World) -> None:
    # Given a shipment whose workflow ran to its end (waybill recorded and announced)
    shipment_id = world.new_shipment(order_request()).shipment_id
    assert world.run(shipment_id)["status"] == "SUCCEEDED"
    announced = world.events()
    asked = len(world.kdniao.request_log)
    # When a late duplicate of that start runs (same name)
    duplicate = world.wait(world.start_duplicate(shipment_id))
    # Then it ends without asking the provider anything (no create, no second subscription), adding an
    # attempt or announcing anything
    assert duplicate["status"] == "SUCCEEDED"
    assert len(world.kdniao.request_log) == asked
    assert len(world.create_calls(world.kdniao)) == 1
    assert [a.outcome for a in world.shipment(shipment_id).waybill_attempts] == ["created"]
    assert [e["detail-type"] for e in announced].count("WaybillCreated") == 1
    assert world.events() == []
    assert not world.sfn.get_execution_history(executionArn=duplicate["executionArn"])["events"][-1].get(
        "executionFailedEventDetails"
    )


def test_cancelled_shipment_needs_no_waybill(world: World) -> None:
    # Given a shipment cancelled before its workflow ran
    shipment_id = world.new_shipment(order_request()).shipment_id
    composition.store().set_status(shipment_id, Status.CANCELLED, expected={Status.PENDING}, now=datetime.now(UTC))
    # When the workflow runs
    assert world.run(shipment_id)["status"] == "SUCCEEDED"
    # Then no provider was asked and nothing was announced
    assert not world.create_calls(world.kdniao)
    assert not world.create_calls(world.sf)
    assert world.shipment(shipment_id).status is Status.CANCELLED
    assert world.events() == []


def test_pinned_sf_for_a_regular_customer_uses_sf_and_the_sf_callback_is_the_token_path(world: World) -> None:
    # Given a regular order pinned to SF
    shipment_id = world.new_shipment(order_request(carrier="SF", customer_tier=CustomerTier.REGULAR)).shipment_id
    # When the workflow runs
    assert world.run(shipment_id)["status"] == "SUCCEEDED"
    # Then SF issued it
    assert world.shipment(shipment_id).carrier is Carrier.SF
    from parcelhub.composition import callback_url

    assert callback_url(Provider.SF) == f"{WEBHOOK_BASE}/v1/webhooks/sf/tok-0123456789abcdef0123456789"
    assert callback_url(Provider.KDNIAO) == f"{WEBHOOK_BASE}/v1/webhooks/kdniao"


def billed_transitions(world: World, execution_arn: str) -> int:
    """State transitions as Standard bills them: every state entered, plus every task retry."""
    history = world.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    task_states = sum(1 for e in history if e["type"] == "TaskStateEntered")
    invocations = sum(1 for e in history if e["type"] == "LambdaFunctionScheduled")
    return entered + (invocations - task_states)


def test_transition_counts_quoted_in_docs(world: World) -> None:
    # The figures in docs/waybill-workflow.md (cost per 1,000 shipments) come from these runs.
    happy = world.start(world.new_shipment(order_request()).shipment_id)
    assert world.wait(happy)["status"] == "SUCCEEDED"
    assert billed_transitions(world, happy) == 9
    world.fault(world.kdniao, reject="address")
    rejected = world.start(world.new_shipment(order_request()).shipment_id)
    assert world.wait(rejected)["status"] == "SUCCEEDED"
    assert billed_transitions(world, rejected) == 13
    world.fault(world.kdniao, outage=True)
    unavailable = world.start(world.new_shipment(order_request()).shipment_id)
    assert world.wait(unavailable)["status"] == "SUCCEEDED"
    assert billed_transitions(world, unavailable) == 15


def test_no_carrier_covering_the_destination_fails_with_an_explained_alert(world: World) -> None:
    # Given a policy where neither ZTO nor SF serves Shanghai
    world.configure({"selection": {"exclusions": {"ZTO": ["上海"], "SF": ["上海市"]}}})
    shipment_id = world.new_shipment(order_request()).shipment_id
    # When the workflow runs
    assert world.run(shipment_id)["status"] == "FAILED"
    # Then no provider was called, the shipment is WAYBILL_FAILED and the attempt says why
    assert not world.create_calls(world.kdniao)
    assert not world.create_calls(world.sf)
    stored = world.shipment(shipment_id)
    assert stored.status is Status.WAYBILL_FAILED
    assert [(a.outcome, a.error_code) for a in stored.waybill_attempts] == [("rejected", "NO_CANDIDATE")]
    failed = [e["detail"] for e in world.events() if e["detail-type"] == "WaybillFailed"]
    assert len(failed) == 1
    assert "上海市" in failed[0]["alert"]["message"]


def test_a_daily_cap_routes_to_the_backup_and_a_failed_create_gives_its_count_back(world: World) -> None:
    # Given capacity planning on, SF taking one parcel a day, and SF rejecting the first order's address
    world.configure({"capacity": {"enabled": True, "carriers": {"SF": {"daily_cap": 1}}}})
    world.fault(world.sf, reject="address")
    first = vip(world)
    # When the first VIP order runs: SF (counted before the create) rejects it, ZTO issues it
    assert world.run(first)["status"] == "SUCCEEDED"
    assert world.shipment(first).waybill.carrier is Carrier.ZTO  # type: ignore[union-attr]
    # When SF accepts again and two more VIP orders run
    world.fault(world.sf)
    second, third = vip(world), vip(world)
    assert world.run(second)["status"] == "SUCCEEDED"
    assert world.run(third)["status"] == "SUCCEEDED"
    # Then SF took the second (the rejected create gave its count back), and the third went past SF's cap
    assert world.shipment(second).waybill.carrier is Carrier.SF  # type: ignore[union-attr]
    refused, issued = world.shipment(third).waybill_attempts
    assert (refused.carrier, refused.outcome, refused.error_code) == (Carrier.SF, "rejected", "CAPACITY_CAP_REACHED")
    assert (issued.carrier, issued.outcome) == (Carrier.ZTO, "created")
    assert len(world.create_calls(world.sf)) == 2  # the refused order never reached SF
    # and each carrier's day counts its waybills exactly once
    store = composition.store()
    day = datetime.now(UTC).astimezone(timezone(timedelta(hours=8))).date()
    counted = store.standing(["SF", "ZTO"], day)
    assert (counted["SF"].intake_today, counted["ZTO"].intake_today) == (1, 2)
