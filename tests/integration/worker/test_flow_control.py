"""The SQS worker and flow control (SPEC §6): held jobs wait without spending attempts."""

from __future__ import annotations

import json
from typing import Any

from taskmill.db import Database
from taskmill.flow.holds import PAUSE_HOLD_SECONDS
from taskmill.flow.limits import LimitSpec, LimitStore
from taskmill.flow.pauses import PauseKind, PauseStore
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobStore
from taskmill.queue.sqs import JobQueue
from taskmill.worker.runner import Worker

from tests.integration.worker.conftest import queue_messages
from tests.support.lambda_events import receive_event


def delayed(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_a_job_over_its_limit_waits_with_a_new_delayed_message(
    enqueue: Any, worker: Worker, store: JobStore, db: Database, sqs: Any, job_queue: JobQueue
) -> None:
    LimitStore(db).put("tenant:a", LimitSpec(concurrency=1), actor="test")
    first, second = (
        enqueue("noop", limit_keys=["tenant:a"]),
        enqueue("noop", limit_keys=["tenant:a"]),
    )
    url = job_queue.queue_url("normal")
    event = receive_event(sqs, url)
    assert len(event["Records"]) == 2

    report = worker.process(event["Records"], 300)

    by_job = {json.loads(r["body"])["job_id"]: r["messageId"] for r in event["Records"]}
    assert report.failed_message_ids == []  # both deliveries are acknowledged...
    assert report.held == [by_job[str(second.id)]]
    assert store.get(first.id).status is JobStatus.SUCCEEDED
    waiting = store.get(second.id)
    assert waiting.status is JobStatus.QUEUED
    assert waiting.attempts == 0  # ...and the held job spent no attempt
    assert delayed(sqs, url) == 1  # its new message, held back by the hold's delay
    assert report.metrics.value("JobsHeldBack", reason="concurrency", key="tenant") == 1


def test_a_paused_type_is_held_for_the_pause_delay(
    enqueue: Any, worker: Worker, store: JobStore, db: Database, sqs: Any, job_queue: JobQueue
) -> None:
    PauseStore(db).pause(PauseKind.TYPE, "noop", actor="test")
    job = enqueue("noop")
    url = job_queue.queue_url("normal")
    report = worker.process(receive_event(sqs, url)["Records"], 300)
    assert len(report.held) == 1
    assert store.get(job.id).attempts == 0
    assert delayed(sqs, url) == 1
    assert queue_messages(sqs, url) == []  # nothing visible: it comes back in PAUSE_HOLD_SECONDS
    assert PAUSE_HOLD_SECONDS >= 60
    assert report.metrics.value("JobsHeldBack", reason="paused", key="none") == 1


def test_a_held_job_whose_new_message_is_refused_comes_back_with_its_old_one(
    enqueue: Any, worker: Worker, store: JobStore, db: Database, sqs: Any, job_queue: JobQueue
) -> None:
    PauseStore(db).pause(PauseKind.QUEUE, "normal", actor="test")
    job = enqueue("noop")
    event = receive_event(sqs, job_queue.queue_url("normal"))
    sqs.delete_queue(QueueUrl=job_queue.queue_url("normal"))  # SQS refuses the new message
    report = worker.process(event["Records"], 300)
    assert report.failed_message_ids == [event["Records"][0]["messageId"]]
    assert report.held == []
    assert store.get(job.id).status is JobStatus.QUEUED
