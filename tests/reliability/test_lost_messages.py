"""No job is left `queued` without a message: the sweep re-sends jobs untouched for too long,
and a retry whose message vanished gets a new one."""

from __future__ import annotations

import json
import threading
from typing import Any

from taskmill.jobs.model import JobStatus
from taskmill.jobs.retry import JobFailure
from taskmill.recovery.sweep import Sweeper, SweepLimits

from functions.worker.handler import process_event
from tests.integration.worker.conftest import failures, queue_messages
from tests.support.lambda_events import FakeLambdaContext, receive_event


def test_a_queued_job_whose_message_is_gone_is_sent_again(
    enqueue, deliver, store, job_queue, sqs, registry
) -> None:
    job = enqueue("noop")
    sqs.purge_queue(QueueUrl=job_queue.queue_url("normal"))  # a purge, or past retention
    patient = Sweeper(store, job_queue, registry, SweepLimits(requeue_after_seconds=3600))
    assert patient.run()[0].requeued == 0  # not yet: it may simply be waiting in a backlog
    report, _ = Sweeper(store, job_queue, registry, SweepLimits(requeue_after_seconds=0)).run()
    assert report.requeued == 1
    assert failures(deliver()) == []
    assert store.get(job.id).status is JobStatus.SUCCEEDED


def test_a_duplicate_acknowledged_while_the_first_delivery_retries(
    enqueue, store, job_queue, sqs, worker, registry
) -> None:
    """SQS delivers one message twice. The second copy arrives while the job runs, is
    acknowledged (the event source mapping deletes it); then the first attempt fails and its
    retry cannot make the (deleted) message come back. The job must still run again."""
    started, finish = threading.Event(), threading.Event()

    @registry.register("gated", max_attempts=2, backoff_base_seconds=0, backoff_max_seconds=0)
    def gated(context: Any, payload: Any) -> None:
        started.set()
        finish.wait(10)
        raise JobFailure("first attempt fails")

    job = enqueue("gated")
    url = job_queue.queue_url("normal")
    first = receive_event(sqs, url)
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["Records"][0]["receiptHandle"], VisibilityTimeout=0
    )
    second = receive_event(sqs, url)  # the same message, delivered again
    assert first["Records"][0]["messageId"] == second["Records"][0]["messageId"]
    answers: list[dict[str, Any]] = []
    running = threading.Thread(
        target=lambda: answers.append(process_event(first, FakeLambdaContext(), worker))
    )
    running.start()
    assert started.wait(10)
    assert failures(process_event(second, FakeLambdaContext(), worker)) == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["Records"][0]["receiptHandle"])
    finish.set()
    running.join(10)
    assert store.get(job.id).status is JobStatus.QUEUED
    [message] = queue_messages(sqs, url)  # a new message stands in for the deleted one
    assert json.loads(message["Body"])["job_id"] == str(job.id)
    assert not store.get(job.id).send_pending
