"""The store's batched tracking reads and writes (issue 21): a batch's claims in one read, its scans in one
write before any claim records their hashes, and the mark that parked pushes wait. The same contract for
the DynamoDB adapter (moto) and the fake; the request counts and DynamoDB's partial answers on moto."""

from __future__ import annotations

from typing import Any

import pytest

from parcelhub.adapters.dynamodb import DynamoShipmentStore
from parcelhub.ports.store import ShipmentStore

from .conftest import TABLE, Backend
from .test_store_contract import a_shipment, a_trace, shipped, together

pytestmark = pytest.mark.integration


def claimed(store: ShipmentStore, count: int) -> dict[tuple[str, str], str]:
    """Given: ``count`` shipments with their waybills' numbers claimed."""
    return {("ZTO", f"7891234{n:07d}"): shipped(store, n, tracking_number=f"7891234{n:07d}") for n in range(count)}


def test_find_claims_answers_what_find_by_tracking_answers_in_one_read_per_100_keys(backend: Backend):
    # Given 230 claimed numbers, and 20 keys nobody claimed
    owners = claimed(backend.store, 230)
    unclaimed = [("ZTO", f"5550000{n:07d}") for n in range(10)] + [("YTO", k[1]) for k in list(owners)[:10]]
    before = backend.calls.copy()
    # When the 250 keys are asked for at once
    found = backend.store.find_claims([*owners, *unclaimed])
    # Then every claimed one is answered as find_by_tracking answers it, the others are absent
    if backend.name == "moto":
        assert backend.calls["BatchGetItem"] - before["BatchGetItem"] == 3
        assert backend.calls["GetItem"] - before["GetItem"] == 0
    assert {key: claim.shipment_id for key, claim in found.items()} == owners
    key = next(iter(owners))
    assert found[key] == backend.store.find_by_tracking(*key)


class PartialReads:
    """A client that answers the first BatchGetItem for half its keys only (``UnprocessedKeys``), as
    DynamoDB does under throttling or past 16 MB."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.partial = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        if self.partial:
            return dict(self.client.batch_get_item(RequestItems=RequestItems))
        self.partial += 1
        keys = RequestItems[TABLE]["Keys"]
        half, rest = keys[: len(keys) // 2], keys[len(keys) // 2 :]
        response = dict(self.client.batch_get_item(RequestItems={TABLE: {**RequestItems[TABLE], "Keys": half}}))
        response["UnprocessedKeys"] = {TABLE: {**RequestItems[TABLE], "Keys": rest}}
        return response


def test_find_claims_asks_again_for_the_keys_dynamodb_left_unprocessed(moto_backend: Backend, dynamodb: Any):
    owners = claimed(moto_backend.store, 40)
    client = PartialReads(dynamodb)
    store = DynamoShipmentStore(TABLE, client=client)
    found = store.find_claims(list(owners))
    assert client.partial == 1
    assert {key: claim.shipment_id for key, claim in found.items()} == owners


def test_scans_of_many_shipments_are_put_at_once_and_each_reported_new_once_by_its_claim(backend: Backend):
    # Given 30 claimed shipments, each with two scans (60 items: three batch writes)
    owners = claimed(backend.store, 30)
    claims = backend.store.find_claims(list(owners))
    scans = {key: [a_trace(0, tracking_number=key[1]), a_trace(1, tracking_number=key[1])] for key in owners}
    before = backend.calls["BatchWriteItem"]
    # When every scan is put, then two writers record the same claims' hashes at the same moment
    backend.store.put_events([(owners[key], e) for key, events in scans.items() for e in events])
    if backend.name == "moto":
        assert backend.calls["BatchWriteItem"] - before == 3
    assert all(len(backend.store.list_events(sid)) == 2 for sid in owners.values())
    reports = together(2, lambda _: {k: backend.store.record_events(claims[k], scans[k]) for k in owners})
    # Then each scan was reported new by exactly one of them, and the claims know every hash
    for key in owners:
        new = [e.content_hash for report in reports for e in report[key]]
        assert sorted(new) == sorted(e.content_hash for e in scans[key])
        again = backend.store.find_by_tracking(*key)
        assert again is not None
        assert again.known_hashes == {e.content_hash for e in scans[key]}


def test_a_claim_is_flagged_while_parked_pushes_wait_and_a_number_nobody_claimed_is_left_alone(store: ShipmentStore):
    shipped(store)
    store.flag_parked("ZTO", "78912345678901", True)
    flagged = store.find_by_tracking("ZTO", "78912345678901")
    assert flagged is not None
    assert flagged.parked
    assert store.find_claims([("ZTO", "78912345678901")])[("ZTO", "78912345678901")].parked
    store.flag_parked("ZTO", "78912345678901", False)
    cleared = store.find_by_tracking("ZTO", "78912345678901")
    assert cleared is not None
    assert not cleared.parked
    store.flag_parked("ZTO", "00000000000000", True)
    assert store.find_by_tracking("ZTO", "00000000000000") is None
    assert cleared.order_id == a_shipment().order_id  # the flag touched nothing else of the claim
