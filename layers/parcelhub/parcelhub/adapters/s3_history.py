"""The delivery-fact history in S3: JSON lines, partitioned by the day the shipment ended.

``facts/dt=YYYY-MM-DD/<digest>.jsonl``: one object per day of each call (a stream batch), one fact per
line in :mod:`fact_records`' columns. The object's name is a digest of the shipment ids it holds, so a
batch retried with the same records rewrites the same object; a batch retried with other records may
write a fact again (readers dedupe by ``shipment_id``; the scorecards themselves count once). Athena reads
it through the Glue table in template.yaml (partition projection on ``dt``), DuckDB reads the same files
(``tools.history``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from parcelhub.adapters import fact_records
from parcelhub.adapters.s3 import _Objects
from parcelhub.domain.lanes import DeliveryFact

PREFIX = "facts"


def object_key(day: str, shipment_ids: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(shipment_ids)).encode()).hexdigest()[:24]
    return f"{PREFIX}/dt={day}/{digest}.jsonl"


def json_lines(facts: Sequence[DeliveryFact]) -> bytes:
    lines = [json.dumps(fact_records.to_record(f), ensure_ascii=False, separators=(",", ":")) for f in facts]
    return ("\n".join(lines) + "\n").encode("utf-8")


class S3FactHistory(_Objects):
    """Writes delivery facts to the history bucket (the ``FactArchive`` port). A fact carries no personal
    data (carrier, lane, times, cost), so the bucket keeps S3-managed encryption and an analyst's Athena
    query needs no grant on the PII key."""

    def put_facts(self, facts: Sequence[DeliveryFact]) -> None:
        by_day: dict[str, dict[str, DeliveryFact]] = {}
        for fact in facts:
            by_day.setdefault(fact_records.day_of(fact), {})[fact.shipment_id] = fact
        for day, group in sorted(by_day.items()):
            self.client.put_object(
                Bucket=self.bucket,
                Key=object_key(day, list(group)),
                Body=json_lines(list(group.values())),
                ContentType="application/x-ndjson",
            )
