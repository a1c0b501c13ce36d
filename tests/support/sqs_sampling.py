"""SQS's receive as AWS documents it, on a test's moto client.

moto answers every receive with the first visible messages in the order they were sent, so
a receive with a zero visibility timeout returns the same ten again and again, and an empty
answer means an empty queue. AWS spreads a queue's messages over many servers
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html):

- a short poll (`WaitTimeSeconds` 0) asks a random sample of them, so it can return only
  some of the visible messages, the same ones again, or none at all while others wait;
- a long poll (`WaitTimeSeconds` 1 or more) asks all of them and answers empty only when no
  message is visible.

`SamplingSqs` wraps the moto client and answers receives so; everything else (and the
state of every message: visibility, receipt handles, counts) is moto's. It chooses which
visible messages a receive may return and makes moto return those by hiding the others for
the duration of the call.
"""

from __future__ import annotations

import random
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

SERVERS = 8
# Each server answers a short poll with this probability ("weighted random distribution").
SHORT_POLL_SAMPLE = 0.25
_HIDDEN = float("inf")


class SamplingSqs:
    def __init__(self, client: Any, *, seed: int = 0) -> None:
        self._client = client
        self._random = random.Random(seed)
        self._server: dict[str, int] = {}
        self.receives: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _queue(self, url: str) -> Any:
        backend = sqs_backends[DEFAULT_ACCOUNT_ID][self._client.meta.region_name]
        return backend.get_queue(url.rstrip("/").rsplit("/", 1)[-1])

    def receive_message(self, **kwargs: Any) -> Any:
        queue = self._queue(kwargs["QueueUrl"])
        long_poll = int(kwargs.get("WaitTimeSeconds", 0)) > 0
        visible = [m for m in queue._messages if m.visible and not m.delayed]
        for message in visible:
            self._server.setdefault(message.id, self._random.randrange(SERVERS))
        if long_poll:
            asked = set(range(SERVERS))
        else:
            asked = {s for s in range(SERVERS) if self._random.random() < SHORT_POLL_SAMPLE}
        unasked = [m for m in visible if self._server[m.id] not in asked]
        self.receives.append({"long_poll": long_poll, "visible": len(visible)})
        saved = [(m, m.visible_at) for m in unasked]
        for message in unasked:
            message.visible_at = _HIDDEN
        try:
            # Nothing can arrive during a wait in a test's single thread: no need to sleep it.
            return self._client.receive_message(**{**kwargs, "WaitTimeSeconds": 0})
        finally:
            for message, visible_at in saved:
                message.visible_at = visible_at
