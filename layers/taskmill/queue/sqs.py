"""The SQS adapter: every SQS call the platform makes goes through `JobQueue`.

Like `taskmill.db` for Postgres, it translates the client library's errors into domain
errors (`QueueUnavailable`), so nothing above it knows botocore. Sends never raise: what SQS
did not take stays marked "to be sent" for the recovery sweep.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from taskmill.aws import WORST_CALL_SECONDS, aws_errors, new_client
from taskmill.errors import QueueUnavailable
from taskmill.jobs.model import Job
from taskmill.queue.messages import delay_seconds, message_attributes, message_body
from taskmill.settings import QueueSettings
from taskmill.topology import SQS_MAX_DELAY_SECONDS, Priority

SQS_BATCH_LIMIT = 10
# A DLQ receive long-polls: SQS then asks all its servers, answers at once when any letter is
# visible, and answers empty (after this wait) only when none is. A short poll asks a sample
# of them and can answer empty while letters wait: it cannot end a DLQ scan.
DEAD_LETTER_WAIT_SECONDS = 1
_DEPTH_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def default_sqs_client() -> Any:
    return new_client("sqs")


@dataclass
class SendResult:
    sent: list[UUID] = field(default_factory=list)
    failed: dict[UUID, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReceivedMessage:
    """A message read from a DLQ (its attributes flattened to strings)."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    sent_at: datetime | None


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except aws_errors() as exc:
        raise QueueUnavailable(f"SQS did not answer ({action})") from exc


def _dead_letter_attributes(job: Job, reason: str, error: str | None) -> dict[str, Any]:
    """A dead letter's attributes: the job's, why it failed and its last error, if any (an
    empty attribute is left out)."""
    return message_attributes(job, {"failure_reason": reason, "last_error": error or ""})


class JobQueue:
    """Routes job messages by priority. Holds the container's one SQS client, created on
    first use."""

    def __init__(
        self,
        settings: QueueSettings,
        client_factory: Callable[[], Any] = default_sqs_client,
        *,
        clock: Callable[[], float] = time.monotonic,
        dead_letter_wait_seconds: int = DEAD_LETTER_WAIT_SECONDS,
    ) -> None:
        self._settings = settings
        self._client_factory = client_factory
        self._clock = clock
        self._dead_letter_wait = dead_letter_wait_seconds
        self._client: Any = None
        self._sources: dict[str, Priority | None] = {}
        # Counted for benchmarks: SQS calls per API request / worker batch.
        self.calls = 0

    def _sqs(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        self.calls += 1
        return self._client

    def queue_url(self, priority: Priority | str) -> str:
        return self._settings.queue_url(priority)

    def dlq_url(self, priority: Priority | str) -> str:
        return self._settings.dlq_url(priority)

    def priority_of_source(self, queue_arn: str) -> Priority | None:
        """The priority whose job queue has this ARN (an event record's `eventSourceARN`),
        or None for a queue this deployment does not know."""
        if queue_arn not in self._sources:
            name = queue_arn.rsplit(":", 1)[-1]
            self._sources[queue_arn] = next(
                (
                    priority
                    for priority in Priority
                    if self.queue_url(priority).rstrip("/").rsplit("/", 1)[-1] == name
                ),
                None,
            )
        return self._sources[queue_arn]

    # ---- job messages -------------------------------------------------------------------

    def send(
        self,
        jobs: Sequence[Job],
        *,
        deadline: float | None = None,
        delays: Mapping[UUID, int] | None = None,
    ) -> SendResult:
        """Send one message per job, ten per call. Never raises for SQS trouble: what could
        not be sent is in `failed`, for the recovery sweep.

        After a call fails outright the rest are not tried, on any priority's queue: the
        queues share one endpoint, so SQS is in trouble for all of them, and each try could
        cost the full client timeout. With a `deadline` (a `clock()` value), a call
        starts only if it can end before it even when every attempt times out: an API
        request answers in time and leaves the rest to the sweep. `delays`: seconds to hold
        some jobs' messages instead of the time until their `run_at`."""
        result = SendResult()
        by_queue: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_queue[self.queue_url(job.priority)].append(job)
        trouble: str | None = None
        for url, queued in by_queue.items():
            for start in range(0, len(queued), SQS_BATCH_LIMIT):
                chunk = queued[start : start + SQS_BATCH_LIMIT]
                out_of_time = deadline is not None and self._clock() + WORST_CALL_SECONDS > deadline
                if trouble is None and out_of_time:
                    trouble = "no time left before the request's deadline"
                if trouble is not None:
                    result.failed.update({job.id: trouble for job in chunk})
                    continue
                trouble = self._send_batch(url, chunk, result, delays or {})
        return result

    def _send_batch(
        self, url: str, jobs: Sequence[Job], result: SendResult, delays: Mapping[UUID, int]
    ) -> str | None:
        entries = [
            {
                "Id": str(index),
                "MessageBody": message_body(job.id),
                "MessageAttributes": message_attributes(job),
                "DelaySeconds": min(SQS_MAX_DELAY_SECONDS, delays[job.id])
                if job.id in delays
                else delay_seconds(job),
            }
            for index, job in enumerate(jobs)
        ]
        try:
            response = self._sqs().send_message_batch(QueueUrl=url, Entries=entries)
        except aws_errors() as exc:
            reason = type(exc).__name__
            result.failed.update({job.id: reason for job in jobs})
            return reason
        for entry in response.get("Successful", []):
            result.sent.append(jobs[int(entry["Id"])].id)
        for entry in response.get("Failed", []):
            result.failed[jobs[int(entry["Id"])].id] = str(entry.get("Code", "failed"))
        return None

    def dead_letter(self, job: Job, reason: str, *, error: str | None = None) -> None:
        """Put a failed job's message in its priority's DLQ, the reason as attributes."""
        with _translated("dead-lettering a job"):
            self._sqs().send_message(
                QueueUrl=self.dlq_url(job.priority),
                MessageBody=message_body(job.id),
                MessageAttributes=_dead_letter_attributes(job, reason, error),
            )

    def dead_letter_many(self, jobs: Sequence[Job], reason: str) -> None:
        """Put failed jobs' messages in their DLQs, in batches, each with its last error.
        The API of SQS accepts a batch whole or entry by entry: a refused entry is one
        `QueueUnavailable`, like a refused call."""
        by_queue: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_queue[self.dlq_url(job.priority)].append(job)
        for url, failed in by_queue.items():
            for start in range(0, len(failed), SQS_BATCH_LIMIT):
                entries = [
                    {
                        "Id": str(index),
                        "MessageBody": message_body(job.id),
                        "MessageAttributes": _dead_letter_attributes(job, reason, job.last_error),
                    }
                    for index, job in enumerate(failed[start : start + SQS_BATCH_LIMIT])
                ]
                with _translated("dead-lettering failed jobs"):
                    response = self._sqs().send_message_batch(QueueUrl=url, Entries=entries)
                if response.get("Failed"):
                    raise QueueUnavailable("SQS refused to dead-letter some failed jobs")

    def dead_letter_raw(self, priority: Priority, body: str, reason: str) -> None:
        """Put a message that is not a job message in the DLQ as it came, with the reason."""
        with _translated("dead-lettering a malformed message"):
            self._sqs().send_message(
                QueueUrl=self.dlq_url(priority),
                MessageBody=body or "(empty)",
                MessageAttributes={
                    "failure_reason": {"DataType": "String", "StringValue": reason[:256]}
                },
            )

    def delay_redelivery(self, priority: Priority, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after `seconds` (a retry through SQS)."""
        with _translated("changing a message's visibility"):
            self._sqs().change_message_visibility(
                QueueUrl=self.queue_url(priority),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(seconds, SQS_MAX_DELAY_SECONDS)),
            )

    # ---- dead-letter queues -------------------------------------------------------------

    def receive_dead_letters(
        self,
        priority: Priority,
        *,
        visibility_seconds: int,
        max_messages: int = SQS_BATCH_LIMIT,
    ) -> list[ReceivedMessage]:
        """Up to `max_messages` (ten at most) DLQ messages, hidden for `visibility_seconds`.
        A long poll (`DEAD_LETTER_WAIT_SECONDS`): SQS asks all its servers and answers empty
        only when no message is visible (after waiting that long). A short poll samples some
        of them: its empty answer does not mean an empty queue, so it cannot end a scan."""
        with _translated("reading a DLQ"):
            messages = (
                self._sqs()
                .receive_message(
                    QueueUrl=self.dlq_url(priority),
                    VisibilityTimeout=visibility_seconds,
                    WaitTimeSeconds=self._dead_letter_wait,
                    MaxNumberOfMessages=max(1, min(max_messages, SQS_BATCH_LIMIT)),
                    MessageAttributeNames=["All"],
                    AttributeNames=["SentTimestamp"],
                )
                .get("Messages", [])
            )
        return [_received(message) for message in messages]

    def dead_letter_count(self, priority: Priority) -> int:
        """The messages in a DLQ, visible or not (SQS's approximate counts)."""
        counts = self._depth_attributes(self.dlq_url(priority))
        return sum(counts.values())

    def delete_dead_letter(self, priority: Priority, receipt_handle: str) -> None:
        with _translated("deleting a DLQ message"):
            self._sqs().delete_message(
                QueueUrl=self.dlq_url(priority), ReceiptHandle=receipt_handle
            )

    def hide_dead_letters(
        self, priority: Priority, receipt_handles: Sequence[str], seconds: int
    ) -> None:
        """Keep DLQ messages read for a redrive hidden for `seconds` from now (0: visible
        again, they were not redriven), ten per call. An entry SQS refuses (a handle that
        expired: the message was received again since) stays as it is."""
        handles = list(receipt_handles)
        for start in range(0, len(handles), SQS_BATCH_LIMIT):
            chunk = handles[start : start + SQS_BATCH_LIMIT]
            with _translated("changing the visibility of DLQ messages"):
                self._sqs().change_message_visibility_batch(
                    QueueUrl=self.dlq_url(priority),
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                        for i, handle in enumerate(chunk)
                    ],
                )

    # ---- operations ---------------------------------------------------------------------

    def depths(self) -> dict[Priority, dict[str, int]]:
        """Per priority: visible, in flight, delayed, and the DLQ's depth."""
        depths: dict[Priority, dict[str, int]] = {}
        for priority in Priority:
            main = self._depth_attributes(self.queue_url(priority))
            dead = self._depth_attributes(self.dlq_url(priority))
            depths[priority] = {
                "visible": main["ApproximateNumberOfMessages"],
                "in_flight": main["ApproximateNumberOfMessagesNotVisible"],
                "delayed": main["ApproximateNumberOfMessagesDelayed"],
                "dlq_depth": dead["ApproximateNumberOfMessages"]
                + dead["ApproximateNumberOfMessagesNotVisible"],
            }
        return depths

    def _depth_attributes(self, url: str) -> dict[str, int]:
        with _translated("reading queue depths"):
            response = self._sqs().get_queue_attributes(
                QueueUrl=url, AttributeNames=_DEPTH_ATTRIBUTES
            )
        return {name: int(response["Attributes"].get(name, 0)) for name in _DEPTH_ATTRIBUTES}

    def ping(self) -> None:
        """Raise `QueueUnavailable` unless SQS answers for the high-priority queue."""
        with _translated("health check"):
            self._sqs().get_queue_attributes(
                QueueUrl=self.queue_url(Priority.HIGH), AttributeNames=["QueueArn"]
            )


def _received(message: dict[str, Any]) -> ReceivedMessage:
    attributes: dict[str, str] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        text = value.get("StringValue")
        if isinstance(text, str):
            attributes[name] = text
    sent = message.get("Attributes", {}).get("SentTimestamp")
    return ReceivedMessage(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message.get("Body", ""),
        attributes=attributes,
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
    )
