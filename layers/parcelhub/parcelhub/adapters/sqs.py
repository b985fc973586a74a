"""SQS senders: the waybill-requests queue (API), the tracking-updates queue (webhook ACK path, poller).

One body is one ``SendMessage``; more go out as ``SendMessageBatch`` in tens, entries SQS reports as failed
(not the sender's fault) are retried, then raised, so nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parcelhub.adapters import aws
from parcelhub.ports.messaging import NotEnqueued

#: SendMessageBatch takes at most ten entries
SQS_BATCH = 10


class SqsMessageSink:
    """The SQS adapter of :class:`~parcelhub.ports.messaging.MessageSink` (client built on first use)."""

    def __init__(self, queue_url: str, *, profile: str = "default", attempts: int = 3, client: Any = None) -> None:
        if not queue_url:
            raise ValueError("a queue URL is required")
        self.queue_url = queue_url
        self._profile = profile
        self._attempts = attempts
        self._client = client

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("sqs", self._profile)

    def send(self, bodies: Sequence[str]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._send(bodies)
        except (ClientError, BotoCoreError) as error:
            raise NotEnqueued(f"{self.queue_url}: {aws.error_code(error) or type(error).__name__}") from error

    def _send(self, bodies: Sequence[str]) -> None:
        if len(bodies) == 1:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=bodies[0])
            return
        for start in range(0, len(bodies), SQS_BATCH):
            pending = {str(i): body for i, body in enumerate(bodies[start : start + SQS_BATCH])}
            for _ in range(self._attempts):
                reply = self.client.send_message_batch(
                    QueueUrl=self.queue_url, Entries=[{"Id": i, "MessageBody": b} for i, b in pending.items()]
                )
                pending = {f["Id"]: pending[f["Id"]] for f in reply.get("Failed", []) if not f.get("SenderFault")}
                if not pending:
                    break
            if pending:
                raise NotEnqueued(f"{len(pending)} message(s) not enqueued to {self.queue_url}")
