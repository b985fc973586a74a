"""The simulated OMS's orders: realistic, deterministic, and the bad ones are bad in the named field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parcelhub.domain.models import ShipmentRequest
from sandbox.demo.orders import BAD_INPUTS, DESTINATIONS, plan_orders

pytestmark = pytest.mark.unit


def test_same_seed_same_day() -> None:
    assert [o.body for o in plan_orders(50, seed=7)] == [o.body for o in plan_orders(50, seed=7)]
    assert [o.body for o in plan_orders(50, seed=7)] != [o.body for o in plan_orders(50, seed=8)]


def test_good_orders_are_valid_shipment_requests() -> None:
    # Given a day of 200 orders
    orders = plan_orders(200)
    # When the valid ones are parsed with the API's own request model
    parsed = [ShipmentRequest.model_validate(o.body) for o in orders if o.expect_accepted]
    # Then every one parses, with a declared value equal to its basket
    assert len(parsed) == sum(o.expect_accepted for o in orders) >= 190
    for request in parsed:
        basket = sum(i.quantity * i.unit_price.amount for i in request.items if i.unit_price)
        assert request.declared_value.amount == basket


def test_bad_orders_fail_on_the_named_field() -> None:
    bad = [o for o in plan_orders(200) if o.bad_input]
    assert {o.bad_input for o in bad} == set(BAD_INPUTS)  # every kind of OMS mistake appears
    for order in bad:
        with pytest.raises(ValidationError) as caught:
            ShipmentRequest.model_validate(order.body)
        fields = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
        assert fields == {BAD_INPUTS[order.bad_input or ""]}


def test_a_realistic_mix() -> None:
    orders = plan_orders(200)
    vip = [o for o in orders if o.customer_tier == "vip"]
    provinces = {o.province for o in orders}
    known = {(p, c) for p, c, *_ in DESTINATIONS}
    assert 15 <= len(vip) <= 50
    assert sum(o.declared_value >= 500 for o in orders) >= 10  # some high-value orders go SF-first
    assert len(provinces) >= 15
    assert all((o.province, o.city) in known for o in orders)
    assert 4 <= sum(o.stall_after is not None for o in orders) <= 8
    assert sum(o.resend for o in orders) >= 2
    assert sum(o.probe for o in orders) == 3


def test_roles_never_overlap_and_bad_orders_never_stall() -> None:
    for count in (10, 37, 200):
        orders = plan_orders(count)
        for order in orders:
            roles = [order.bad_input is not None, order.stall_after is not None, order.resend, order.probe]
            assert sum(roles) <= 1, order
        assert len({o.order_id for o in orders}) == count
