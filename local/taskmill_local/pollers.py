"""Worker pollers that behave like Lambda's SQS event source mapping: long polling, batches
up to the queue's batch size, a number of concurrent pollers per queue, the real worker
handler invoked with a real-shaped event, successful messages deleted and the
`batchItemFailures` left on the queue. A paused queue's pollers stop receiving, as its
disabled mapping does in AWS (SPEC §6): its messages wait in SQS until it is resumed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from taskmill.errors import DependencyUnavailable
from taskmill.topology import WORKER_TIMEOUT_SECONDS, QueueDefinition

from taskmill_local.lambda_runtime import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
log = logging.getLogger("taskmill.local.pollers")
RETRY_SECONDS = 1.0
# How often the pauses are read (once for all pollers), and how long a paused poller waits
# before it looks again: a resume is seen within about a second.
PAUSES_TTL_SECONDS = 1.0
PAUSED_WAIT_SECONDS = 0.2


class QueuePauses:
    """Which priority queues are paused, read with `read` (the names of the paused queues)
    at most once per `ttl` seconds however many pollers ask. When the read fails (Postgres
    restarting) the last answer stands: a blip neither pauses nor resumes a queue."""

    def __init__(
        self,
        read: Callable[[], set[str]],
        *,
        ttl: float = PAUSES_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._paused: set[str] = set()
        self._read_at: float | None = None
        self._failed_reads = 0  # in a row: an outage is one warning, not one a second

    def is_paused(self, priority: str) -> bool:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._ttl:
                self._read_at = now
                try:
                    self._paused = self._read()
                except DependencyUnavailable:
                    if not self._failed_reads:
                        log.warning(
                            "could not read the paused queues; keeping the last answer until it can"
                        )
                    self._failed_reads += 1
                else:
                    if self._failed_reads:
                        # At the warning's level, as the sweep's: shown where the warning was.
                        failed, self._failed_reads = self._failed_reads, 0
                        log.warning(
                            "the paused queues are read again after %d failed read%s",
                            failed,
                            "" if failed == 1 else "s",
                        )
            return priority in self._paused


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        definition: QueueDefinition,
        handler: Handler,
        stop: threading.Event,
        *,
        wait_seconds: int = 1,
        pauses: QueuePauses | None = None,
    ) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.definition = definition
        self.handler = handler
        self.stop = stop
        self.wait_seconds = wait_seconds
        self.pauses = pauses
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.region = self.arn.split(":")[3]

    def run(self) -> None:
        while not self.stop.is_set():
            if self.paused():
                self.stop.wait(PAUSED_WAIT_SECONDS)
                continue
            try:
                self.poll()
            except (BotoCoreError, ClientError):
                # SQS unreachable or refusing (an outage, a restarted endpoint): like the
                # event source mapping, keep polling. What was received stays on the queue
                # and comes back after its visibility timeout, or the recovery sweep sends
                # its job again.
                log.warning("polling %s failed; retrying in a second", self.url, exc_info=True)
                self.stop.wait(RETRY_SECONDS)

    def paused(self) -> bool:
        return self.pauses is not None and self.pauses.is_paused(self.definition.priority.value)

    def poll(self) -> None:
        """One receive, one invocation, the successes deleted."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.definition.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            self._invoke(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(m, self.arn, self.region) for m in messages]}
        try:
            response = self.handler(event, LocalContext("taskmill-worker", WORKER_TIMEOUT_SECONDS))
        except Exception:
            # As with Lambda: a crashed invocation leaves the whole batch on the queue.
            log.exception("worker invocation failed; the batch returns to the queue")
            return
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
