"""Sends job messages to the queue of their priority, ten per SQS call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from taskmill.jobs.model import Job
from taskmill.queue.messages import delay_seconds, message_attributes, message_body
from taskmill.settings import QueueSettings
from taskmill.topology import SQS_MAX_DELAY_SECONDS

SQS_BATCH_LIMIT = 10


def default_sqs_client() -> Any:
    # Imported here: boto3 costs ~240 ms of cold start, paid only by functions that send.
    import boto3

    return boto3.client("sqs")


def sqs_errors() -> tuple[type[Exception], ...]:
    """What a failed SQS call raises; evaluated only when something was raised."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


@dataclass
class SendResult:
    sent: list[UUID] = field(default_factory=list)
    failed: dict[UUID, str] = field(default_factory=dict)


class JobQueue:
    """Routes job messages by priority. Holds the container's one SQS client, created on
    first use."""

    def __init__(
        self, settings: QueueSettings, client_factory: Callable[[], Any] = default_sqs_client
    ) -> None:
        self._settings = settings
        self._client_factory = client_factory
        self._client: Any = None
        self.calls = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def queue_url(self, priority: str) -> str:
        return self._settings.queue_url(priority)

    def dlq_url(self, priority: str) -> str:
        return self._settings.dlq_url(priority)

    def send(self, jobs: Sequence[Job]) -> SendResult:
        """Send one message per job. Never raises for SQS trouble: what could not be sent is
        in `failed`, and stays marked "to be sent" for the recovery sweep."""
        result = SendResult()
        by_queue: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_queue[self.queue_url(job.priority)].append(job)
        for url, queued in by_queue.items():
            for start in range(0, len(queued), SQS_BATCH_LIMIT):
                self._send_batch(url, queued[start : start + SQS_BATCH_LIMIT], result)
        return result

    def _send_batch(self, url: str, jobs: Sequence[Job], result: SendResult) -> None:
        entries = [
            {
                "Id": str(index),
                "MessageBody": message_body(job.id),
                "MessageAttributes": message_attributes(job),
                "DelaySeconds": delay_seconds(job),
            }
            for index, job in enumerate(jobs)
        ]
        try:
            self.calls += 1
            response = self.client.send_message_batch(QueueUrl=url, Entries=entries)
        except sqs_errors() as exc:
            for job in jobs:
                result.failed[job.id] = type(exc).__name__
            return
        for entry in response.get("Successful", []):
            result.sent.append(jobs[int(entry["Id"])].id)
        for entry in response.get("Failed", []):
            result.failed[jobs[int(entry["Id"])].id] = str(entry.get("Code", "failed"))

    def dead_letter(self, job: Job, reason: str, *, error: str | None = None) -> None:
        """Put a failed job's message in its priority's DLQ, the reason as attributes."""
        extra = {"failure_reason": reason}
        if error:
            extra["last_error"] = error
        self.calls += 1
        self.client.send_message(
            QueueUrl=self.dlq_url(job.priority),
            MessageBody=message_body(job.id),
            MessageAttributes=message_attributes(job, extra),
        )

    def delay_redelivery(self, priority: str, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after `seconds` (a retry through SQS)."""
        self.calls += 1
        self.client.change_message_visibility(
            QueueUrl=self.queue_url(priority),
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, SQS_MAX_DELAY_SECONDS)),
        )

    def dead_letter_raw(self, priority: str, body: str, reason: str) -> None:
        """Put a message that is not a job message in the DLQ as it came, with the reason."""
        self.calls += 1
        self.client.send_message(
            QueueUrl=self.dlq_url(priority),
            MessageBody=body or "(empty)",
            MessageAttributes={"failure_reason": {"DataType": "String", "StringValue": reason}},
        )
