"""The worker handler on real SQS event shapes, real Postgres and moto."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobStore
from taskmill.lifecycle.outcomes import LOST_LEASE_CAP
from taskmill.queue.messages import message_body

from tests.integration.worker.conftest import failures, queue_messages
from tests.support.backends import terminate_backend
from tests.support.lambda_events import receive_event


def test_noop_job_succeeds(enqueue, deliver, store: JobStore) -> None:
    job = enqueue("noop")
    response = deliver()
    assert failures(response) == []
    done = store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1
    assert done.finished_at is not None


def test_batch_of_ten_succeeds_in_two_statements(enqueue, deliver, store: JobStore, db) -> None:
    jobs = [enqueue("noop") for _ in range(10)]
    before = db.round_trips
    assert failures(deliver()) == []
    assert db.round_trips - before == 2  # claim, record: nothing waits on these jobs
    assert {store.get(j.id).status for j in jobs} == {JobStatus.SUCCEEDED}


def test_a_batch_after_the_database_ended_the_connection_runs(
    enqueue, deliver, store: JobStore, db, database_url: str
) -> None:
    """A restart or failover between two batches: the container's connection is found ended
    before the next claim is sent, so that batch runs instead of failing back to SQS."""
    enqueue("noop")
    assert failures(deliver()) == []
    job = enqueue("noop")
    terminate_backend(database_url, db.execute("SELECT pg_backend_pid() AS pid")[0]["pid"])
    assert failures(deliver()) == []
    assert store.get(job.id).status is JobStatus.SUCCEEDED


def test_a_batch_with_a_parent_releases_its_dependents_in_one_more(
    enqueue, deliver, store: JobStore, db, sqs, job_queue
) -> None:
    jobs = [enqueue("noop") for _ in range(9)]
    parent = enqueue("noop")
    child = enqueue("noop", depends_on=[parent.id])
    before = db.round_trips
    assert failures(deliver()) == []
    assert db.round_trips - before == 4  # claim, record, release dependents, clear the mark
    assert {store.get(j.id).status for j in [*jobs, parent]} == {JobStatus.SUCCEEDED}
    assert store.get(child.id).status is JobStatus.QUEUED
    assert any(
        json.loads(m["Body"])["job_id"] == str(child.id)
        for m in queue_messages(sqs, job_queue.queue_url("normal"))
    )


def test_retry_then_success(enqueue, deliver, store: JobStore, calls) -> None:
    job = enqueue("flaky")
    first = deliver()
    assert len(failures(first)) == 1  # the message comes back (visibility set to the delay)
    retried = store.get(job.id)
    assert retried.status is JobStatus.QUEUED
    assert retried.last_error == "first attempt always fails"
    assert failures(deliver()) == []
    done = store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 2
    assert calls.count == 2


def test_retry_exhaustion_lands_in_the_dlq(enqueue, deliver, store, sqs, job_queue) -> None:
    job = enqueue("fail", {"message": "broken"}, max_attempts=2, backoff_base_seconds=0)
    assert len(failures(deliver())) == 1
    assert failures(deliver()) == []  # final failure: acknowledged, moved to the DLQ
    failed = store.get(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error == "broken"
    [dead] = queue_messages(sqs, job_queue.dlq_url("normal"))
    assert json.loads(dead["Body"]) == {"job_id": str(job.id), "v": 1}
    attributes = dead["MessageAttributes"]
    assert attributes["failure_reason"]["StringValue"] == "all 2 attempts failed"
    assert attributes["last_error"]["StringValue"] == "broken"
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []


def test_malformed_message_goes_to_the_dlq_without_failing_siblings(
    enqueue, deliver, store, sqs, job_queue
) -> None:
    sqs.send_message(QueueUrl=job_queue.queue_url("normal"), MessageBody="{not json")
    job = enqueue("noop")
    event = receive_event(sqs, job_queue.queue_url("normal"))
    assert len(event["Records"]) == 2
    assert failures(deliver(event=event)) == []
    assert store.get(job.id).status is JobStatus.SUCCEEDED
    [dead] = queue_messages(sqs, job_queue.dlq_url("normal"))
    assert dead["Body"] == "{not json"
    assert dead["MessageAttributes"]["failure_reason"]["StringValue"].startswith("malformed")


def test_duplicate_delivery_of_a_finished_job_runs_once(
    enqueue, deliver, sqs, job_queue, calls, store
) -> None:
    job = enqueue("counted")
    event = receive_event(sqs, job_queue.queue_url("normal"))
    assert failures(deliver(event=event)) == []
    assert failures(deliver(event=event)) == []  # the same message delivered again
    assert calls.count == 1
    assert store.get(job.id).attempts == 1


def test_duplicate_delivery_of_a_running_job_is_skipped(enqueue, deliver, store, calls) -> None:
    job = enqueue("counted")
    assert store.claim(job.id) is not None  # another worker holds it
    assert failures(deliver()) == []
    assert calls.count == 0
    assert store.get(job.id).status is JobStatus.RUNNING


def test_timeout_fails_the_attempt_and_retries(enqueue, deliver, store) -> None:
    job = enqueue("sleep", {"seconds": 30}, timeout_seconds=1, backoff_base_seconds=0)
    started = time.monotonic()
    response = deliver()
    assert time.monotonic() - started < 10
    assert len(failures(response)) == 1
    retried = store.get(job.id)
    assert retried.status is JobStatus.QUEUED
    assert retried.last_error == "timed out after 1 s"
    assert retried.attempts == 1


def test_work_that_cannot_finish_before_the_lambda_deadline_is_released(
    enqueue, deliver, store
) -> None:
    job = enqueue("sleep", {"seconds": 30}, timeout_seconds=600)
    response = deliver(remaining=2.0)  # 1 s margin: the body gets about one second
    assert len(failures(response)) == 1
    released = store.get(job.id)
    assert released.status is JobStatus.QUEUED
    assert released.attempts == 0  # not the job's fault: the attempt is not counted
    assert released.lease_token is None


def test_work_released_at_every_deadline_ends_after_the_refunds(enqueue, deliver, store) -> None:
    """A body that needs longer than a worker invocation (its `timeout_seconds` is longer
    than the Lambda's 300 s) was released at every deadline with its attempt refunded, so
    it ran again and again, for ever, never failing: a job stuck in a loop that spent a
    whole invocation each time. Releases are refunded as lost leases are, `LOST_LEASE_CAP`
    times; then the deadline ends the attempt like a timeout, counted."""
    job = enqueue("sleep", {"seconds": 5}, timeout_seconds=600, max_attempts=1)
    for refunded in range(1, LOST_LEASE_CAP + 1):
        assert len(failures(deliver(remaining=2.0))) == 1
        released = store.get(job.id)
        assert (released.status, released.attempts, released.lost_leases) == (
            JobStatus.QUEUED,
            0,
            refunded,
        )
    assert failures(deliver(remaining=2.0)) == []  # the last attempt: failed, acknowledged
    failed = store.get(job.id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)
    assert failed.last_error is not None
    assert "longer than a worker invocation" in failed.last_error


def test_the_bodies_of_a_batch_run_side_by_side(enqueue, deliver, store, registry) -> None:
    """Quick bodies are run in turn by one thread; one that takes longer must not hold the
    rest back. Each of these bodies waits for the other two: run one after another they
    would never meet (the barrier breaks after 10 s and every body fails)."""
    meeting = threading.Barrier(3, timeout=10)

    @registry.register("meets", max_attempts=1)
    def meets(context: Any, payload: Any) -> None:
        meeting.wait()

    jobs = [enqueue("meets") for _ in range(3)]
    assert failures(deliver()) == []
    assert {store.get(j.id).status for j in jobs} == {JobStatus.SUCCEEDED}


def test_a_body_past_its_timeout_holds_no_body_behind_it(
    enqueue, deliver, store, registry, sqs, job_queue
) -> None:
    """The first body of the batch never returns; the quick ones delivered after it still
    run and succeed in the same invocation, and it fails on its timeout."""
    release = threading.Event()

    @registry.register("hangs", max_attempts=1, timeout_seconds=1)
    def hangs(context: Any, payload: Any) -> None:
        release.wait(30)

    stuck = enqueue("hangs")
    quick = [enqueue("counted") for _ in range(3)]
    event = receive_event(sqs, job_queue.queue_url("normal"))
    event["Records"].sort(key=lambda r: json.loads(r["body"])["job_id"] != str(stuck.id))
    try:
        assert failures(deliver(event=event, remaining=4.0)) == []  # a 3 s deadline
    finally:
        release.set()
    assert {store.get(j.id).status for j in quick} == {JobStatus.SUCCEEDED}
    timed_out = store.get(stuck.id)
    assert timed_out.status is JobStatus.FAILED
    assert timed_out.last_error == "timed out after 1 s"


@pytest.mark.parametrize("kind", ["def", "async def"])
def test_a_full_batch_of_bodies_that_wait_for_each_other_all_succeed(
    kind: str, enqueue, deliver, store, registry, sqs, job_queue
) -> None:
    """Ten bodies, as many as a batch and the pool hold, each waiting for the other nine:
    every one of them needs a thread at once, the one that took them in turn included."""
    meeting = threading.Barrier(10, timeout=10)

    if kind == "def":

        @registry.register("meets", max_attempts=1)
        def meets(context: Any, payload: Any) -> None:
            meeting.wait()

    else:

        @registry.register("meets", max_attempts=1)
        async def meets_async(context: Any, payload: Any) -> None:
            await asyncio.to_thread(meeting.wait)

    jobs = [enqueue("meets") for _ in range(10)]
    event = receive_event(sqs, job_queue.queue_url("normal"))
    assert len(event["Records"]) == 10
    assert failures(deliver(event=event)) == []
    assert {store.get(j.id).status for j in jobs} == {JobStatus.SUCCEEDED}


def test_bodies_that_never_got_a_thread_never_start_on_the_abandoned_pool(
    enqueue, deliver, store, registry, sqs, job_queue, worker, calls
) -> None:
    """One thread, held by a body that never returns: the bodies delivered behind it are
    released uncounted at the deadline. When the stuck body does return, its abandoned
    pool must not start them (their jobs are queued again, maybe running elsewhere); the
    next batch, on a fresh pool, runs each once."""
    worker.max_parallel_bodies = 1
    release = threading.Event()
    stuck_threads: list[threading.Thread] = []

    @registry.register("hangs", max_attempts=1, timeout_seconds=1)
    def hangs(context: Any, payload: Any) -> None:
        stuck_threads.append(threading.current_thread())
        release.wait(30)

    stuck = enqueue("hangs")
    behind = [enqueue("counted") for _ in range(2)]
    event = receive_event(sqs, job_queue.queue_url("normal"))
    event["Records"].sort(key=lambda r: json.loads(r["body"])["job_id"] != str(stuck.id))
    try:
        assert len(failures(deliver(event=event, remaining=4.0))) == 2  # a 3 s deadline
    finally:
        release.set()
    [abandoned] = stuck_threads
    abandoned.join(30)  # past the stuck body and whatever its pool still held, then gone
    assert not abandoned.is_alive()
    assert calls.count == 0
    timed_out = store.get(stuck.id)
    assert (timed_out.status, timed_out.last_error) == (JobStatus.FAILED, "timed out after 1 s")
    for job in behind:
        waited = store.get(job.id)
        assert (waited.status, waited.attempts, waited.lost_leases) == (JobStatus.QUEUED, 0, 0)
        assert "before a thread was free" in json.dumps(store.events(job.id)[-1]["detail"])
    assert failures(deliver()) == []
    assert calls.count == 2
    assert {(store.get(j.id).status, store.get(j.id).attempts) for j in behind} == {
        (JobStatus.SUCCEEDED, 1)
    }


def test_a_body_that_never_got_a_thread_is_released_uncounted(
    enqueue, deliver, store, worker, db
) -> None:
    """At the deadline a body still waiting for a free thread (the batch's other bodies held
    them all) had used none of its time. It was released like one that ran out of time, its
    release counted in `lost_leases`, and past the refunds it failed, its error saying its
    timeout was longer than an invocation, which was not why. Now it is given back uncounted
    and never starts late; the body that held the thread is the one counted."""
    worker.max_parallel_bodies = 1
    jobs = [enqueue("sleep", {"seconds": 5}, timeout_seconds=600, max_attempts=1) for _ in range(2)]
    db.execute(
        "UPDATE jobs SET lost_leases = %(cap)s WHERE id = ANY(%(ids)s)",
        {"cap": LOST_LEASE_CAP, "ids": [j.id for j in jobs]},
    )
    response = deliver(remaining=2.0)
    assert len(failures(response)) == 1  # the one given back; the failed one is acknowledged
    after = {j.id: store.get(j.id) for j in jobs}
    [ran] = [j for j in after.values() if j.status is JobStatus.FAILED]
    [waited] = [j for j in after.values() if j.status is not JobStatus.FAILED]
    assert ran.last_error is not None
    assert "longer than a worker invocation" in ran.last_error
    assert (waited.status, waited.attempts, waited.lost_leases) == (
        JobStatus.QUEUED,
        0,
        LOST_LEASE_CAP,
    )
    assert waited.last_error is None
    released = store.events(waited.id)[-1]
    assert released["to_status"] == "queued"
    assert "before a thread was free" in json.dumps(released["detail"])


def test_job_cancelled_before_delivery_is_skipped(enqueue, deliver, store, calls) -> None:
    job = enqueue("counted")
    store.cancel(job.id, actor="user")
    assert failures(deliver()) == []
    assert calls.count == 0
    assert store.get(job.id).status is JobStatus.CANCELLED


def test_running_job_stops_when_cancelled(enqueue, deliver, store) -> None:
    job = enqueue("sleep", {"seconds": 20})

    def cancel_once_progressing() -> None:
        # Cancel only once the body has reported progress: on a loaded machine the claim can
        # come after any fixed delay, and a job cancelled while queued never starts.
        watcher = JobStore(store._db)
        deadline = time.monotonic() + 10
        while watcher.get(job.id).progress == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.cancel(job.id, actor="user")

    threading.Thread(target=cancel_once_progressing).start()
    started = time.monotonic()
    assert failures(deliver()) == []
    assert time.monotonic() - started < 15  # the body sleeps 20 s unless it stops
    stopped = store.get(job.id)
    assert stopped.status is JobStatus.CANCELLED
    assert stopped.started_at is not None
    assert 0 < stopped.progress < 100


def test_finished_dependencies_release_dependents(enqueue, deliver, store, sqs, job_queue) -> None:
    parent = enqueue("noop")
    child = enqueue("noop", depends_on=[parent.id], priority="high")
    assert store.get(child.id).status is JobStatus.WAITING
    assert failures(deliver()) == []
    released = store.get(child.id)
    assert released.status is JobStatus.QUEUED
    assert not released.send_pending
    assert failures(deliver("high")) == []
    assert store.get(child.id).status is JobStatus.SUCCEEDED


def test_console_redrive_runs_the_job_again_once(
    enqueue, deliver, store, sqs, job_queue, calls
) -> None:
    job = enqueue("fail", max_attempts=1)
    deliver()
    assert store.get(job.id).status is JobStatus.FAILED
    # What the console's "Start DLQ redrive" does: move the message, touch no database.
    [dead] = sqs.receive_message(
        QueueUrl=job_queue.dlq_url("normal"), MessageAttributeNames=["All"]
    )["Messages"]
    sqs.send_message(
        QueueUrl=job_queue.queue_url("normal"),
        MessageBody=dead["Body"],
        MessageAttributes=dead["MessageAttributes"],
    )
    sqs.delete_message(QueueUrl=job_queue.dlq_url("normal"), ReceiptHandle=dead["ReceiptHandle"])
    event = receive_event(sqs, job_queue.queue_url("normal"))
    deliver(event=event)
    again = store.get(job.id)
    assert again.redrive_count == 1
    assert again.attempts == 1  # a fresh budget, one attempt used by this run
    assert again.status is JobStatus.FAILED  # `fail` fails again, as it should
    # A duplicate of the moved message must not redrive a second time.
    deliver(event=event)
    assert store.get(job.id).redrive_count == 1


def test_console_redrive_to_another_prioritys_queue_still_runs_the_job(
    enqueue, deliver, store, sqs, job_queue
) -> None:
    """An operator who picks another priority's queue as the redrive's destination: the job
    is redriven, and the claim refuses a message off its own priority's queue, so the job
    needs a message on that queue."""
    job = enqueue("fail", max_attempts=1)
    deliver()
    [dead] = sqs.receive_message(
        QueueUrl=job_queue.dlq_url("normal"), MessageAttributeNames=["All"]
    )["Messages"]
    sqs.send_message(
        QueueUrl=job_queue.queue_url("high"),
        MessageBody=dead["Body"],
        MessageAttributes=dead["MessageAttributes"],
    )
    assert failures(deliver("high")) == []
    redriven = store.get(job.id)
    assert (redriven.status, redriven.redrive_count) == (JobStatus.QUEUED, 1)
    assert failures(deliver("normal")) == []
    again = store.get(job.id)
    assert (again.status, again.attempts) == (JobStatus.FAILED, 1)  # it ran again


def test_api_redrive_message_runs_with_a_fresh_budget(enqueue, deliver, store, job_queue) -> None:
    job = enqueue("fail", max_attempts=1)
    deliver()
    [redriven] = store.redrive_many([job.id], actor="admin", resend=True)
    job_queue.send([redriven])
    deliver()
    assert store.get(job.id).attempts == 1
    assert store.get(job.id).redrive_count == 1


def test_completion_webhook_is_signed_and_verifiable(
    enqueue, deliver, store, http_receiver, owner
) -> None:
    from taskmill.jobtypes.webhook_deliver import (
        SIGNATURE_HEADER,
        owner_webhook_secret,
        verify_webhook_signature,
    )

    url, received = http_receiver
    job = enqueue("noop", webhook_url=url)
    assert failures(deliver()) == []
    hooks = [j for j in store.list_jobs(_all_filter()).items if j.type == "webhook.deliver"]
    assert len(hooks) == 1
    assert hooks[0].payload["url"] == url
    assert failures(deliver()) == []  # the webhook job itself
    [request] = received
    # Signed with the owner's key, derived from the platform's ("w" * 40 in these tests).
    key = owner_webhook_secret("w" * 40, owner)
    assert verify_webhook_signature(key, request["headers"][SIGNATURE_HEADER], request["body"])
    assert not verify_webhook_signature(
        "x" * 40, request["headers"][SIGNATURE_HEADER], request["body"]
    )
    event = json.loads(request["body"])
    assert event["type"] == "job.succeeded"
    assert event["job"]["id"] == str(job.id)
    assert store.get(hooks[0].id).status is JobStatus.SUCCEEDED


def test_in_a_batch_each_job_with_a_webhook_url_gets_one_describing_its_own_success(
    enqueue, deliver, store, http_receiver, db
) -> None:
    # The batch's success statement returns only what follow-ups need, and the jobs with a
    # webhook whole (from the same statement) so each webhook carries its own job.
    url, received = http_receiver
    plain = [enqueue("noop") for _ in range(3)]
    hooked = [enqueue("sleep", {"seconds": 0}, webhook_url=f"{url}?n={n}") for n in range(2)]
    before = db.round_trips
    assert failures(deliver()) == []
    # claim, success, their webhook jobs created, marked sent, marks cleared
    assert db.round_trips - before == 5
    for job in plain + hooked:
        assert store.get(job.id).status is JobStatus.SUCCEEDED
    hooks = [j for j in store.list_jobs(_all_filter()).items if j.type == "webhook.deliver"]
    assert sorted(h.payload["url"] for h in hooks) == [f"{url}?n=0", f"{url}?n=1"]
    assert failures(deliver()) == []  # the two webhook jobs
    events = sorted((json.loads(r["body"]) for r in received), key=lambda e: e["job"]["id"])
    assert [e["job"]["id"] for e in events] == sorted(str(j.id) for j in hooked)
    for event in events:
        assert event["type"] == "job.succeeded"
        assert event["job"]["status"] == "succeeded"
        assert event["job"]["result"] == {"slept": 0}
    assert all(not store.get(j.id).webhook_pending for j in hooked)


def test_a_completion_webhook_carries_a_result_larger_than_an_http_request_body(
    enqueue, deliver, store, http_receiver, registry
) -> None:
    # http.request bodies are capped (256 KiB) as a user's payload; a completion event is the
    # platform's and carries the whole result (an external worker's may be near 1 MiB).
    @registry.register("large.result", max_attempts=1)
    def large(context: Any, payload: Any) -> dict[str, str]:
        return {"blob": "x" * 300_000}

    url, received = http_receiver
    job = enqueue("large.result", webhook_url=url)
    assert failures(deliver()) == []
    assert failures(deliver()) == []  # the webhook job
    [request] = received
    event = json.loads(request["body"])
    assert (event["job"]["id"], event["job"]["result"]) == (str(job.id), {"blob": "x" * 300_000})
    [hook] = [j for j in store.list_jobs(_all_filter()).items if j.type == "webhook.deliver"]
    assert store.get(hook.id).status is JobStatus.SUCCEEDED


def test_a_result_too_large_to_read_back_fails_the_job_for_good(
    enqueue, deliver, store, registry
) -> None:
    # Stored, a 7 MB result would make the job unreadable: GET /v1/jobs/{id} answers it in one
    # Lambda response, which holds at most 6 MB.
    from taskmill.jobs.model import MAX_RESULT_BYTES

    @registry.register("huge.result", max_attempts=3)
    def huge(context: Any, payload: Any) -> dict[str, str]:
        return {"blob": "x" * 7_000_000}

    job = enqueue("huge.result")
    deliver()
    failed = store.get(job.id)
    assert (failed.status, failed.attempts, failed.result) == (JobStatus.FAILED, 1, None)
    assert f"the limit is {MAX_RESULT_BYTES}" in str(failed.last_error)


def test_failed_job_also_gets_its_webhook(enqueue, deliver, store, http_receiver) -> None:
    url, received = http_receiver
    enqueue("fail", max_attempts=1, webhook_url=url)
    deliver()
    deliver()
    assert json.loads(received[0]["body"])["type"] == "job.failed"


def test_message_for_a_deleted_job_is_acknowledged(enqueue, deliver, store) -> None:
    job = enqueue("noop")
    store.delete(job.id)
    assert failures(deliver()) == []


def test_unknown_job_in_message_is_acknowledged(deliver, sqs, job_queue) -> None:
    from uuid import uuid4

    sqs.send_message(QueueUrl=job_queue.queue_url("low"), MessageBody=message_body(uuid4()))
    assert failures(deliver("low")) == []


def _all_filter() -> Any:
    from taskmill.jobs.store import JobFilter

    return JobFilter()


def test_job_logs_carry_the_job_and_correlation_ids(
    enqueue, deliver, store, registry, worker
) -> None:
    lines: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def info(self, message: str, *, extra: dict[str, Any], **options: Any) -> None:
            lines.append((message, extra))

        warning = info

    @registry.register("chatty", max_attempts=1)
    def chatty(context: Any, payload: Any) -> None:
        context.logger.info("working", extra={"step": 1})

    worker.logger = Recorder()
    job = enqueue("chatty", correlation_id="req-123")
    deliver()
    [(message, extra)] = lines
    assert message == "working"
    assert extra == {
        "job_id": str(job.id),
        "job_type": "chatty",
        "correlation_id": "req-123",
        "attempt": 1,
        "step": 1,
    }


def test_malformed_message_goes_to_the_dlq_of_the_queue_it_came_from(
    deliver, sqs, job_queue
) -> None:
    sqs.send_message(QueueUrl=job_queue.queue_url("high"), MessageBody="not a job")
    assert failures(deliver("high")) == []
    [dead] = queue_messages(sqs, job_queue.dlq_url("high"))
    assert dead["Body"] == "not a job"
    assert queue_messages(sqs, job_queue.dlq_url("normal")) == []


def test_a_message_from_a_queue_this_deployment_does_not_know_is_left_alone(
    enqueue, store, sqs, job_queue, worker
) -> None:
    from functions.worker.handler import process_event
    from tests.support.lambda_events import FakeLambdaContext

    job = enqueue("noop")
    event = receive_event(sqs, job_queue.queue_url("normal"))
    stranger = "arn:aws:sqs:us-east-1:123456789012:someone-elses-queue"
    for record in event["Records"]:
        record["eventSourceARN"] = stranger
    response = process_event(event, FakeLambdaContext(), worker)
    assert failures(response) == [event["Records"][0]["messageId"]]
    assert store.get(job.id).status is JobStatus.QUEUED  # not claimed, not run
