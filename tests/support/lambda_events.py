"""Real-shaped Lambda inputs: SQS event records built from what SQS really returned."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from taskmill_local.pollers import lambda_record


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and the handlers read from Lambda's context object."""

    remaining_seconds: float = 300.0
    function_name: str = "taskmill-test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:taskmill-test"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.remaining_seconds - (time.monotonic() - self._started)) * 1000)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """Turn a ReceiveMessage result into the record Lambda's event source mapping sends
    (the local stack's pollers build them the same way)."""
    return lambda_record(message, queue_arn, queue_arn.split(":")[3])


def receive_event(sqs: Any, queue_url: str, *, max_messages: int = 10) -> dict[str, Any]:
    """Receive like the event source mapping does and return the Lambda event."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    messages = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
        WaitTimeSeconds=0,
    ).get("Messages", [])
    return {"Records": [sqs_record(message, arn) for message in messages]}
