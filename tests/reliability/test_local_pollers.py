"""The local stack's pollers outlive an SQS outage, as Lambda's event source mapping does.
(Before: the first failed receive ended the poller's thread, and after the SQS endpoint was
killed and replaced no job ran again until the stack was restarted.)"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError
from taskmill.topology import QUEUES

import taskmill_local.pollers as pollers
from taskmill_local.pollers import QueuePoller

ARN = "arn:aws:sqs:us-east-1:123456789012:taskmill-local-normal"


class FlakySqs:
    """Refuses the first receives (connection refused, then an error answer), then hands
    out one message and asks the poller to stop."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.failures: list[Exception] = [
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "Receive"),
        ]
        self.deleted: list[str] = []

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": ARN}}

    def receive_message(self, **_: Any) -> dict[str, Any]:
        if self.failures:
            raise self.failures.pop(0)
        self.stop.set()
        return {"Messages": [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}]}

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> None:
        self.deleted += [entry["ReceiptHandle"] for entry in Entries]


def test_a_poller_keeps_polling_through_sqs_errors(monkeypatch) -> None:
    monkeypatch.setattr(pollers, "RETRY_SECONDS", 0.01)
    stop = threading.Event()
    sqs = FlakySqs(stop)
    invoked: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        invoked.append(event)
        return {"batchItemFailures": []}

    poller = QueuePoller(sqs, "http://sqs/normal", QUEUES[1], handler, stop)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert [r["messageId"] for e in invoked for r in e["Records"]] == ["m1"]
    assert sqs.deleted == ["r1"]
