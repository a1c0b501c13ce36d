"""Creates the queues of `taskmill.topology` on any SQS endpoint (moto locally and in tests)."""

from __future__ import annotations

import json
from typing import Any

from taskmill.topology import (
    DLQ_RETENTION_SECONDS,
    MAX_RECEIVE_COUNT,
    QUEUE_RETENTION_SECONDS,
    QUEUES,
    VISIBILITY_TIMEOUT_SECONDS,
)


def create_queues(sqs: Any, prefix: str) -> dict[str, str]:
    """Create (or find) every queue and DLQ with the cloud's settings.

    Returns the environment variables the functions read (`TASKMILL_QUEUE_URL_HIGH`, ...).
    """
    env: dict[str, str] = {}
    for definition in QUEUES:
        dlq_url = sqs.create_queue(
            QueueName=definition.dlq_name(prefix),
            Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=definition.queue_name(prefix),
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
                "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
                ),
            },
        )["QueueUrl"]
        priority = definition.priority.value
        env[f"TASKMILL_QUEUE_URL_{priority.upper()}"] = queue_url
        env[f"TASKMILL_DLQ_URL_{priority.upper()}"] = dlq_url
    return env
