"""The tracking-updates queue's messages: what the webhook and the poller enqueue and the normalizer reads,
and the names of the raw archive objects a batch is written to."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from parcelhub.carriers.base import HttpRequest
from parcelhub.domain.models import Provider, TrackingEvent

RAW_PREFIX = "raw"


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    #: set by ``python -m tools.recover replay``: re-read after a mapping fix, replacing stored scans and
    #: re-deciding the status from the whole timeline (see ``Ingestor``)
    replay: bool = False


class PushEnvelope(_Envelope):
    """What the webhook enqueues: the raw push, byte for byte (``functions/carrier_webhook``)."""

    kind: Literal["push"] = "push"
    provider: Provider
    received_at: datetime
    content_type: str = ""
    body_b64: str
    path_params: dict[str, str] = Field(default_factory=dict)

    def request(self) -> HttpRequest:
        headers = {"Content-Type": self.content_type} if self.content_type else {}
        return HttpRequest(
            body=base64.b64decode(self.body_b64, validate=True), headers=headers, path_params=dict(self.path_params)
        )


class PollEnvelope(_Envelope):
    """What the poller enqueues: canonical events a provider answered to a query."""

    kind: Literal["poll"]
    provider: Provider
    received_at: datetime | None = None
    events: list[TrackingEvent]


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("kind", "push"))
    return str(getattr(value, "kind", "push"))


Envelope = Annotated[
    Annotated[PushEnvelope, Tag("push")] | Annotated[PollEnvelope, Tag("poll")],
    Discriminator(_kind),
]


@functools.cache
def _envelope_adapter() -> TypeAdapter[PushEnvelope | PollEnvelope]:
    return TypeAdapter(Envelope)


def parse_envelope(body: str) -> PushEnvelope | PollEnvelope:
    """Read a queue message body (``ValidationError`` when it is not an envelope)."""
    return _envelope_adapter().validate_json(body)


def poll_envelope_json(provider: Provider | str, events: Sequence[TrackingEvent], received_at: datetime) -> str:
    """The queue message the poller sends for one shipment's query result."""
    return json.dumps(
        {
            "provider": str(Provider(provider)),
            "kind": "poll",
            "received_at": received_at.astimezone(UTC).isoformat(),
            "events": [event.model_dump(mode="json") for event in events],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def replay_body(body: str) -> str | None:
    """The queue message that replays an archived one (``None`` when it is no envelope or a replay already)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("replay"):
        return None
    document["replay"] = True
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------------------------------------ archive keys


def raw_key(now: datetime, batch_id: str) -> str:
    day = now.astimezone(UTC)
    return f"{RAW_PREFIX}/{day:%Y}/{day:%m}/{day:%d}/{batch_id}.jsonl.gz"


def day_prefixes(start: datetime, end: datetime) -> list[str]:
    """The archive prefixes (``raw/<yyyy>/<mm>/<dd>/``) of every UTC day from ``start`` to ``end``."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.astimezone(UTC)
    prefixes = []
    while day <= last:
        prefixes.append(f"{RAW_PREFIX}/{day:%Y}/{day:%m}/{day:%d}/")
        day += timedelta(days=1)
    return prefixes


def batch_id(message_ids: Iterable[str]) -> str:
    """Deterministic per set of messages: a redelivered batch overwrites its own archive object."""
    return hashlib.sha256("\n".join(sorted(message_ids)).encode("utf-8")).hexdigest()[:32]
