"""Worker pollers that behave like Lambda's SQS event source mapping: long polling, batches
up to the queue's batch size, a number of concurrent pollers per queue, the real worker
handler invoked with a real-shaped event, successful messages deleted and the
`batchItemFailures` left on the queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from taskmill.topology import WORKER_TIMEOUT_SECONDS, QueueDefinition

from taskmill_local.lambda_runtime import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
log = logging.getLogger("taskmill.local.pollers")
RETRY_SECONDS = 1.0


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
    ) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.definition = definition
        self.handler = handler
        self.stop = stop
        self.wait_seconds = wait_seconds
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.region = self.arn.split(":")[3]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll()
            except (BotoCoreError, ClientError):
                # SQS unreachable or refusing (an outage, a restarted endpoint): like the
                # event source mapping, keep polling. What was received stays on the queue
                # and comes back after its visibility timeout, or the recovery sweep sends
                # its job again.
                log.warning("polling %s failed; retrying in a second", self.url, exc_info=True)
                self.stop.wait(RETRY_SECONDS)

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
