"""Queue depths as SQS reports them."""

from __future__ import annotations

from typing import Any

from taskmill.queue.sender import JobQueue
from taskmill.topology import Priority

_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def queue_depths(queue: JobQueue) -> dict[str, dict[str, int]]:
    """Per priority: visible, in flight, delayed, and the DLQ's depth."""
    depths: dict[str, dict[str, int]] = {}
    for priority in Priority:
        main = _attributes(queue, queue.queue_url(priority))
        dead = _attributes(queue, queue.dlq_url(priority))
        depths[priority.value] = {
            "visible": main["ApproximateNumberOfMessages"],
            "in_flight": main["ApproximateNumberOfMessagesNotVisible"],
            "delayed": main["ApproximateNumberOfMessagesDelayed"],
            "dlq_depth": dead["ApproximateNumberOfMessages"]
            + dead["ApproximateNumberOfMessagesNotVisible"],
        }
    return depths


def _attributes(queue: JobQueue, url: str) -> dict[str, int]:
    queue.calls += 1
    response: dict[str, Any] = queue.client.get_queue_attributes(
        QueueUrl=url, AttributeNames=_ATTRIBUTES
    )
    return {name: int(response["Attributes"].get(name, 0)) for name in _ATTRIBUTES}
