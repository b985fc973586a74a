"""At most one live carrier order per shipment: the orders a shipment placed with providers, kept or not.

Every create is recorded *before* it is sent (``CarrierOrders.open_order``: one conditional write, one
attempt in flight per shipment). What happens to it next is always one of:

* the provider answered with a waybill -> it is recorded as the shipment's waybill (``kept``);
* the provider answered "no" before creating anything (a business rejection, bad credentials, no
  connection) -> ``absent``;
* the outcome is unclear (read timeout, connection lost, 5xx, a duplicate-order answer, anything failing
  after the provider answered) -> :meth:`OrderDesk.resolve` asks the provider: SF by the order id
  (``fetch_waybill``), Kdniao by re-submitting the same order (it answers a repeated ``OrderCode`` with the
  order it issued). A waybill found is kept; "no such order" is ``absent``; no answer leaves it ``open``;
* an order that is not kept (the shipment was cancelled meanwhile, another waybill won, the workflow moved
  on while the provider could not be asked) is cancelled with its provider (:meth:`OrderDesk.cancel`, a
  few tries, then again on later sweeps) -> ``cancelled``, or ``cancel_failed`` when every try failed.
  Every cancel is a line in ``waybill_attempts``. The ``cancel_failed`` write is the ops alert: the
  stream relay (``parcelhub.app.outbox``) announces ``WaybillCancelFailed`` from it, so the alert cannot be
  lost between the write and a publish (nothing would try that cancel again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from parcelhub.app.waybill_payloads import MESSAGE_LIMIT, Outcome
from parcelhub.carriers.base import (
    Capability,
    CarrierDuplicateOrder,
    CarrierError,
    CarrierOrderNotFound,
    CarrierRejected,
    CarrierUnavailable,
    ProviderPlugin,
    WaybillOrder,
)
from parcelhub.config import HubConfig
from parcelhub.domain.models import (
    Carrier,
    CarrierOrder,
    Provider,
    Shipment,
    Waybill,
    WaybillAttempt,
)
from parcelhub.domain.policy import CarrierCandidate
from parcelhub.observability import add_metric, logger
from parcelhub.ports.store import WaybillStore

#: order states that count against reusing the shipment id as the provider order id (the provider would
#: answer a repeated id with that order, which is not to be kept)
_SPENT = frozenset({"abandoned", "cancelled", "cancel_failed"})


def attempt(candidate: CarrierCandidate, outcome: Outcome, at: datetime, code: str | None = None,
            message: str | None = None) -> WaybillAttempt:  # fmt: skip
    """A line of the shipment's waybill log."""
    return WaybillAttempt(
        provider=candidate.provider,
        carrier=candidate.carrier,
        outcome=outcome,
        error_code=code,
        error_message=message[:MESSAGE_LIMIT] if message else None,
        at=at,
    )


class OutcomeUnknown(CarrierUnavailable):
    """The provider could not tell what became of an order (the question itself failed)."""


@dataclass
class OrderPorts:
    store: WaybillStore
    plugin: Callable[[Provider], ProviderPlugin]
    config: Callable[[], HubConfig]
    #: the provider request of a shipment for one carrier and provider order id (decrypts the parties)
    build_order: Callable[[Shipment, Carrier, str], WaybillOrder]
    now: Callable[[], datetime]
    sleep: Callable[[float], None] = time.sleep
    #: whether the provider's circuit is open (it is not called then: a cancel waits, uncounted)
    blocked: Callable[[Provider], bool] = lambda provider: False


class OrderDesk:
    """Places, resolves and cancels a shipment's carrier orders (see the module docstring)."""

    def __init__(self, ports: OrderPorts) -> None:
        self.ports = ports

    # ------------------------------------------------------------------------------------ placing
    @staticmethod
    def order_id_for(shipment: Shipment, provider: Provider) -> str:
        """The provider order id of a new attempt: the shipment id, or ``<id>-<n>`` once an order under the
        shipment id at that provider was given up (a repeated id would bring that order back)."""
        spent = [o for o in shipment.carrier_orders.values() if o.provider is provider and o.state in _SPENT]
        return shipment.shipment_id if not spent else f"{shipment.shipment_id}-{len(spent) + 1}"

    def open(self, shipment: Shipment, candidate: CarrierCandidate) -> CarrierOrder:
        """Record the attempt about to be sent (``OrderInFlight``/``StatusConflict`` from the store)."""
        order = CarrierOrder(
            provider=candidate.provider,
            carrier=candidate.carrier,
            order_id=self.order_id_for(shipment, candidate.provider),
            state="open",
            at=self.ports.now(),
        )
        self.ports.store.open_order(shipment.shipment_id, order, self.ports.now())
        return order

    def absent(self, shipment_id: str, order: CarrierOrder) -> None:
        """The provider has no such order: nothing live, nothing in flight."""
        self.ports.store.settle_order(shipment_id, order.key, "absent", self.ports.now())

    # ------------------------------------------------------------------------------------ asking
    def resolve(self, shipment: Shipment, order: CarrierOrder) -> Waybill | None:
        """What became of an order: its waybill, or None when the provider has no such order.
        Raises :class:`OutcomeUnknown` when the provider cannot be asked (or cannot tell)."""
        plugin = self.ports.plugin(order.provider)
        try:
            if Capability.FETCH_WAYBILLS in plugin.capabilities:
                try:
                    waybill = plugin.fetch_waybill(order.order_id)
                except CarrierOrderNotFound:
                    add_metric("CarrierOrderResolved", provider=order.provider.value, found="no")
                    return None
            else:
                # no query by order id: re-submit the same order, the provider answers with the one it has
                waybill = plugin.create_waybill(self.ports.build_order(shipment, order.carrier, order.order_id))
        except CarrierDuplicateOrder as duplicate:
            raise OutcomeUnknown(duplicate.provider, f"duplicate order, not retrievable: {duplicate.message}",
                                 duplicate.code) from None  # fmt: skip
        except CarrierRejected as rejected:
            raise OutcomeUnknown(rejected.provider, f"cannot tell: {rejected.message}", rejected.code) from None
        except CarrierError as failure:
            raise OutcomeUnknown(failure.provider, f"cannot be asked: {failure.message}", failure.code) from None
        add_metric("CarrierOrderResolved", provider=order.provider.value, found="yes")
        if not waybill.provider_order_id:
            waybill = waybill.model_copy(update={"provider_order_id": order.order_id})
        return waybill

    # ------------------------------------------------------------------------------------ cancelling
    def cancel(self, shipment: Shipment, order: CarrierOrder, waybill: Waybill | None = None) -> bool:
        """Make sure an order that is not kept is not live at its provider. True when it is settled
        (cancelled, or never there); False when it is left for a later sweep or finally failed (alerted)."""
        store, now, config = self.ports.store, self.ports.now, self.ports.config().recovery
        if self.ports.blocked(order.provider):  # known down: not called; tried again later, not counted
            later = now() + timedelta(seconds=config.cancel_retry_seconds)
            number = waybill.tracking_number if waybill else order.tracking_number
            store.settle_order(shipment.shipment_id, order.key, "abandoned", now(), tracking_number=number,
                               recovery_due=later)  # fmt: skip
            return False
        candidate = CarrierCandidate(provider=order.provider, carrier=order.carrier)
        error: CarrierError | None = None
        for attempt_no in range(config.cancel_tries):
            if attempt_no:
                self.ports.sleep(min(0.5 * 2**attempt_no, 4.0))
            try:
                if waybill is None:
                    waybill = self.resolve(shipment, order)
                    if waybill is None:
                        store.settle_order(shipment.shipment_id, order.key, "absent", now())
                        return True
                self.ports.plugin(order.provider).cancel_waybill(waybill)
            except CarrierRejected as rejected:  # e.g. picked up already: no retry will change that
                error = rejected
                break
            except CarrierError as failure:
                error = failure
                continue
            store.settle_order(
                shipment.shipment_id,
                order.key,
                "cancelled",
                now(),
                tracking_number=waybill.tracking_number,
                attempt=attempt(candidate, "cancelled", now(), None, f"order {order.order_id} not kept: cancelled"),
            )
            add_metric("CarrierOrderCancelled", provider=order.provider.value)
            return True
        return self._cancel_failed(shipment, order, waybill, error, final=isinstance(error, CarrierRejected))

    def _cancel_failed(
        self, shipment: Shipment, order: CarrierOrder, waybill: Waybill | None, error: CarrierError | None, *,
        final: bool,
    ) -> bool:  # fmt: skip
        store, now, config = self.ports.store, self.ports.now(), self.ports.config().recovery
        tries = order.cancel_attempts + 1
        number = waybill.tracking_number if waybill else order.tracking_number
        code = error.code if error else None
        message = error.message if error else None
        if not final and tries < config.max_cancel_attempts:
            store.settle_order(
                shipment.shipment_id,
                order.key,
                "abandoned",
                now,
                tracking_number=number,
                cancel_attempts=tries,
                recovery_due=now + timedelta(seconds=config.cancel_retry_seconds),
            )
            add_metric("CarrierOrderCancelRetry", provider=order.provider.value)
            return False
        candidate = CarrierCandidate(provider=order.provider, carrier=order.carrier)
        store.settle_order(
            shipment.shipment_id,
            order.key,
            "cancel_failed",
            now,
            tracking_number=number,
            cancel_attempts=tries,
            attempt=attempt(candidate, "cancel_failed", now, code, message),
        )
        add_metric("CarrierOrderCancelFailed", provider=order.provider.value)
        logger().error("order not kept and not cancelled: ops alerted", extra={"provider": order.provider.value})
        return False

    def abandon(self, shipment_id: str, order: CarrierOrder) -> None:
        """The order is not kept and its provider cannot be asked now: the recovery sweep cancels it."""
        now = self.ports.now()
        self.ports.store.settle_order(shipment_id, order.key, "abandoned", now, recovery_due=now)
        add_metric("CarrierOrderAbandoned", provider=order.provider.value)

    def settle_unkept(self, shipment: Shipment, *, include_open: bool) -> bool:
        """Cancel every order of the shipment that is not kept (``abandoned``, and ``open`` ones when
        ``include_open``: nobody is working on them). True when none is left unsettled."""
        settled = True
        for order in list(shipment.carrier_orders.values()):
            if order.state == "abandoned" or (include_open and order.state == "open"):
                settled = self.cancel(shipment, order) and settled
        return settled
