from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from taskmill.db import Database
from taskmill.jobs.store import JobStore
from taskmill.jobs.submit import JobRequest, submit
from taskmill.jobtypes.defaults import build_registry
from taskmill.queue.sender import JobQueue
from taskmill.settings import JobTypeSettings


def _user(db: Database) -> Any:
    user_id = uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'x')",
        (user_id, f"{user_id}@example.com"),
    )
    return user_id


def test_submitted_job_is_sent_to_its_priority_queue(
    db: Database, job_queue: JobQueue, sqs
) -> None:
    store = JobStore(db)
    owner = _user(db)
    registry = build_registry(JobTypeSettings())
    [result] = submit(
        store,
        job_queue,
        registry,
        owner,
        [JobRequest(type="noop", payload={}, priority="high")],
        actor="test",
    )
    assert result.created
    assert not store.get(result.job.id).send_pending
    messages = sqs.receive_message(
        QueueUrl=job_queue.queue_url("high"), MessageAttributeNames=["All"]
    )["Messages"]
    assert json.loads(messages[0]["Body"]) == {"job_id": str(result.job.id), "v": 1}
    assert messages[0]["MessageAttributes"]["job_type"]["StringValue"] == "noop"


def test_job_stays_marked_for_the_sweep_when_sqs_fails(db: Database, queue_settings) -> None:
    from botocore.exceptions import EndpointConnectionError

    class BrokenSqs:
        def send_message_batch(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://sqs.invalid")

    store = JobStore(db)
    owner = _user(db)
    queue = JobQueue(queue_settings, client_factory=BrokenSqs)
    [result] = submit(
        store,
        queue,
        build_registry(JobTypeSettings()),
        owner,
        [JobRequest(type="noop", payload={})],
        actor="test",
    )
    stored = store.get(result.job.id)
    assert stored.status == "queued"
    assert stored.send_pending
