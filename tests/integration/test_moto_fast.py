"""The local stack's moto fix keeps SQS semantics: visibility, delays, redrive, retention."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from local import moto_fast


@pytest.fixture
def fast_sqs(sqs: Any) -> Any:
    moto_fast.apply()
    return sqs


def test_visibility_and_delay_are_respected(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    fast_sqs.send_message(QueueUrl=url, MessageBody="now")
    fast_sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    [first] = fast_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert first["Body"] == "now"
    assert fast_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    time.sleep(1.1)
    bodies = sorted(
        m["Body"]
        for m in fast_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    )
    assert bodies == ["later", "now"]  # the delay passed and "now" became visible again


def test_redrive_to_the_dlq_after_max_receives(fast_sqs: Any) -> None:
    dlq = fast_sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = fast_sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = fast_sqs.create_queue(
        QueueName="src",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    fast_sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert fast_sqs.receive_message(QueueUrl=url)["Messages"]
    assert fast_sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert fast_sqs.receive_message(QueueUrl=dlq)["Messages"][0]["Body"] == "poison"


def test_expired_messages_are_not_returned(fast_sqs: Any) -> None:
    from moto.sqs.models import sqs_backends

    url = fast_sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"
    ]
    fast_sqs.send_message(QueueUrl=url, MessageBody="old")
    queue = sqs_backends["123456789012"]["us-east-1"].get_queue("short")
    message: Any = queue._messages[0]
    message.sent_timestamp -= 120_000  # sent two minutes ago
    assert fast_sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_counts_still_reported(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="counted")["QueueUrl"]
    for body in ("a", "b", "c"):
        fast_sqs.send_message(QueueUrl=url, MessageBody=body)
    fast_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    attributes = fast_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto_fast, "_applied", False)
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match=r"patches moto 5\.2\.5"):
        moto_fast.apply()
