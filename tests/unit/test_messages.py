from __future__ import annotations

from uuid import uuid4

import pytest
from taskmill.queue.messages import MalformedMessage, message_body, parse_message


def test_body_round_trip_with_lambda_event_attributes() -> None:
    job_id = uuid4()
    message = parse_message(
        message_body(job_id),
        {
            "redrive_count": {"stringValue": "2", "dataType": "String"},
            "failure_reason": {"stringValue": "all 3 attempts failed", "dataType": "String"},
        },
    )
    assert message.job_id == job_id
    assert message.redrive_count == 2
    assert message.dead_lettered


def test_sqs_api_attribute_shape_is_understood() -> None:
    message = parse_message(
        message_body(uuid4()), {"redrive_count": {"StringValue": "0", "DataType": "String"}}
    )
    assert message.redrive_count == 0
    assert not message.dead_lettered


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[]",
        '{"job_id": "x", "v": 1}',
        '{"v": 1}',
        # A fixed id: parallel (xdist) workers must collect the same test ids.
        '{"job_id": "0b7c3a52-2f0e-4c4e-9a61-3f1c2d4e5a6b", "v": 2}',
    ],
)
def test_malformed_bodies_are_refused(body: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(body)
