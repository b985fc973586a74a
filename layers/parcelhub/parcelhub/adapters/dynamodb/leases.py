"""Named leases on the single table: ``LEASE#<name>`` / ``LEASE``, one holder at a time.

Acquire and renew are one conditional ``UpdateItem`` (free, expired, or already the caller's); release
is a conditional ``DeleteItem``. Lease items carry ``expires_at`` so the table's TTL removes stale ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parcelhub.adapters.dynamodb import serialization as ser
from parcelhub.adapters.dynamodb.table import ConditionFailed, Expr, Table
from parcelhub.ports.errors import LeaseHeld
from parcelhub.ports.store import Lease

#: a released or expired lease item lingers this long before TTL removes it
LEASE_TTL_GRACE = timedelta(days=1)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class LeaseRecords(Table):
    """The :class:`~parcelhub.ports.store.Leases` port."""

    def acquire_lease(self, name: str, owner: str, *, now: datetime, seconds: float) -> Lease:
        until = now + timedelta(seconds=seconds)
        expr = Expr()
        expr.set("owner", owner).set("until_ms", _millis(until)).set("expires_at", ser.epoch(until + LEASE_TTL_GRACE))
        condition = (
            f"attribute_not_exists({expr.n('pk')}) OR {expr.n('owner')} = {expr.v(owner)}"
            f" OR {expr.n('until_ms')} <= {expr.v(_millis(now))}"
        )
        try:
            self._update(ser.lease_pk(name), ser.LEASE, expr, condition)
        except ConditionFailed as failed:
            old = failed.old or {}
            held_until = datetime.fromtimestamp(int(old.get("until_ms", 0)) / 1000, tz=UTC)
            raise LeaseHeld(name, str(old.get("owner", "")), held_until) from None
        return Lease(name=name, owner=owner, until=until)

    def release_lease(self, name: str, owner: str) -> None:
        try:
            self._call(
                "delete_item",
                TableName=self.table_name,
                Key={"pk": {"S": ser.lease_pk(name)}, "sk": {"S": ser.LEASE}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ConditionFailed:
            return  # not ours (any more): nothing to release
