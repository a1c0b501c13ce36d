"""Background DLQ redrives (`run_task`) over a DLQ larger than one scan, on real Postgres and
moto SQS (with the local stack's moto fix: the same semantics, receives that do not slow
down with the backlog)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

import pytest
from taskmill.db import Database
from taskmill.errors import QueueUnavailable
from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.retry import RetryDecision
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.queue.sqs import JobQueue, SendResult
from taskmill.recovery.dlq import PEEK_SCAN_LIMIT
from taskmill.recovery.redrive_tasks import ABANDONED, RedriveTask, RedriveTaskStore, run_task
from taskmill.topology import Priority

from taskmill_local import moto_fast
from tests.support.factories import make_user, new_job

GIVE_UP = RetryDecision(False, 0.0, "all attempts failed")


@pytest.fixture
def store(db: Database) -> JobStore:
    return JobStore(db)


@pytest.fixture
def dlq_url(sqs: Any, job_queue: JobQueue) -> str:
    moto_fast.apply()
    return job_queue.dlq_url(Priority.NORMAL)


def failed_jobs(db: Database, count: int, job_type: str = "noop") -> list[Job]:
    """Jobs that ran and failed for good, through the store's own transitions."""
    store, owner = JobStore(db), make_user(db)
    created = store.create_many(owner, [new_job(type=job_type) for _ in range(count)], actor="t")
    claimed = store.claim_many([c.job.id for c in created])
    failed = []
    for job in claimed:
        assert job.lease_token is not None
        done = store.fail(job.id, job.lease_token, "boom", GIVE_UP, resend=False)
        assert done is not None
        failed.append(done)
    return failed


def dead_letter(queue: JobQueue, jobs: Sequence[Job]) -> None:
    for job in jobs:
        queue.dead_letter(job, "attempts_exhausted", error="boom")


def start(db: Database, criteria: dict[str, Any]) -> UUID:
    return RedriveTaskStore(db).create(Priority.NORMAL, criteria, make_user(db)).id


def dlq_contents(sqs: Any, url: str) -> tuple[list[str], int]:
    """The job ids of the DLQ's visible messages (read, then shown again), and how many
    messages are hidden."""
    hidden = int(
        sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
    )
    ids: list[str] = []
    handles: list[str] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60
    ).get("Messages", []):
        ids.extend(json.loads(m["Body"])["job_id"] for m in batch)
        handles.extend(m["ReceiptHandle"] for m in batch)
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return ids, hidden


class FailAgainWhenSent:
    """The job queue, with every job a redrive sends back failing again at once: its new
    dead letter lands at the end of the DLQ while the task still works."""

    def __init__(self, queue: JobQueue, store: JobStore) -> None:
        self.queue = queue
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def send(self, jobs: Sequence[Job], **kwargs: Any) -> SendResult:
        result = self.queue.send(jobs, **kwargs)
        failed = failed_again(self.store, [job.id for job in jobs])
        dead_letter(self.queue, failed)
        return result


def failed_again(store: JobStore, job_ids: Sequence[UUID]) -> list[Job]:
    failed = []
    for job in store.claim_many(job_ids):
        assert job.lease_token is not None
        done = store.fail(job.id, job.lease_token, "boom again", GIVE_UP, resend=False)
        assert done is not None
        failed.append(done)
    return failed


class BreaksOnDelete:
    """The job queue, with SQS failing from the `after`-th DLQ delete on."""

    def __init__(self, queue: JobQueue, after: int) -> None:
        self.queue = queue
        self.left = after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def delete_dead_letter(self, priority: Priority, receipt_handle: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise QueueUnavailable("SQS failed while deleting a DLQ message")
        self.queue.delete_dead_letter(priority, receipt_handle)


def redrive_counts(store: JobStore, jobs: Sequence[Job]) -> set[int]:
    return {job.redrive_count for job in store.get_many([job.id for job in jobs])}


def test_a_task_reads_past_a_first_scan_of_jobs_it_already_redrove(
    db: Database,
    store: JobStore,
    job_queue: JobQueue,
    job_registry: JobTypeRegistry,
    sqs: Any,
    dlq_url: str,
) -> None:
    # The DLQ's head: a message for each of 100 jobs, then five more for each of them (a job
    # dead-lettered again and again, its earlier messages never redriven) — more than a
    # scan reads. Behind them, the only messages of 50 other jobs.
    first = failed_jobs(db, 100)
    dead_letter(job_queue, first)
    for _ in range(5):
        dead_letter(job_queue, first)
    behind = failed_jobs(db, 50)
    dead_letter(job_queue, behind)
    assert 5 * len(first) >= PEEK_SCAN_LIMIT  # a scan after the first sees only those
    task_id = start(db, {"limit": 10_000})

    # Every job it redrives fails again at once: the DLQ never empties.
    task = run_task(db, cast(JobQueue, FailAgainWhenSent(job_queue, store)), job_registry, task_id)

    assert (task.status, task.redriven, task.error) == ("done", 150, None)
    # Each job once, although each failed again and came back to the DLQ meanwhile.
    assert redrive_counts(store, first + behind) == {1}
    assert {job.status for job in store.get_many([j.id for j in first + behind])} == {
        JobStatus.FAILED
    }
    # What it left (the repeated messages and the new dead letters) is shown again.
    left, hidden = dlq_contents(sqs, dlq_url)
    assert hidden == 0
    assert sorted(left) == sorted(
        [str(j.id) for j in first] * 5 + [str(j.id) for j in first + behind]
    )


def test_a_task_for_one_type_reads_past_a_scan_of_other_types(
    db: Database,
    store: JobStore,
    job_queue: JobQueue,
    job_registry: JobTypeRegistry,
    sqs: Any,
    dlq_url: str,
) -> None:
    others = failed_jobs(db, PEEK_SCAN_LIMIT + 5, "noop")
    dead_letter(job_queue, others)
    wanted = failed_jobs(db, 3, "sleep")
    dead_letter(job_queue, wanted)
    task_id = start(db, {"limit": 10_000, "type": "sleep"})

    task = run_task(db, job_queue, job_registry, task_id)

    assert (task.status, task.redriven) == ("done", 3)
    assert redrive_counts(store, wanted) == {1}
    assert redrive_counts(store, others) == {0}
    left, hidden = dlq_contents(sqs, dlq_url)
    assert hidden == 0
    assert sorted(left) == sorted(str(j.id) for j in others)


def test_a_task_leaves_what_failed_after_it_was_asked_for(
    db: Database,
    store: JobStore,
    job_queue: JobQueue,
    job_registry: JobTypeRegistry,
    sqs: Any,
    dlq_url: str,
) -> None:
    # SQS's own redrive moves what the DLQ held when it started; so does a task, so a
    # stream of new failures cannot keep it going.
    before = failed_jobs(db, 2)
    dead_letter(job_queue, before)
    task_id = start(db, {"limit": 10_000})
    since = failed_jobs(db, 2)
    dead_letter(job_queue, since)

    task = run_task(db, job_queue, job_registry, task_id)

    assert (task.status, task.redriven) == ("done", 2)
    assert redrive_counts(store, before) == {1}
    assert redrive_counts(store, since) == {0}
    left, hidden = dlq_contents(sqs, dlq_url)
    assert (sorted(left), hidden) == (sorted(str(j.id) for j in since), 0)


def test_a_task_that_fails_shows_what_it_passed_over_again(
    db: Database,
    store: JobStore,
    job_queue: JobQueue,
    job_registry: JobTypeRegistry,
    sqs: Any,
    dlq_url: str,
) -> None:
    others = failed_jobs(db, PEEK_SCAN_LIMIT + 10, "noop")
    dead_letter(job_queue, others)
    wanted = failed_jobs(db, 3, "sleep")
    dead_letter(job_queue, wanted)
    task_id = start(db, {"limit": 10_000, "type": "sleep"})

    # The first scan passes over 500 messages; SQS fails during the second.
    with pytest.raises(QueueUnavailable):
        run_task(db, cast(JobQueue, BreaksOnDelete(job_queue, after=0)), job_registry, task_id)

    task: RedriveTask = RedriveTaskStore(db).get(task_id)
    assert task.status == "failed"
    assert task.error == "QueueUnavailable: SQS failed while deleting a DLQ message"
    # What it passed over is shown again at once, not left hidden for its 15-minute hold,
    # and so are the failed scan's own 13 messages, not held for their 60 seconds.
    left, hidden = dlq_contents(sqs, dlq_url)
    assert sorted(left) == sorted(str(j.id) for j in others + wanted)
    assert hidden == 0


def test_of_requests_for_a_task_at_once_on_one_dlq_one_creates_it(
    db: Database, database_url: str
) -> None:
    """Each request on its own connection, released together: they take turns, and all but
    the first see its task and are refused (a task hides what it passes over)."""
    from taskmill.errors import Conflict

    from tests.integration.test_job_races import race

    admin = make_user(db)
    created: list[UUID] = []
    refused: list[str] = []

    def ask(tasks: RedriveTaskStore) -> None:
        try:
            created.append(tasks.create(Priority.NORMAL, {}, admin).id)
        except Conflict as exc:
            refused.append(str((exc.details or {})["task_id"]))

    race(database_url, ask, runners=4, store=RedriveTaskStore)
    assert len(created) == 1
    assert refused == [str(created[0])] * 3


class AbandonedAfterFirstChunk:
    """The job queue, with the sweep failing the task as abandoned while its first chunk
    sends the redriven jobs: what happens locally when a chunk outlasts the hold (SQS or
    Postgres stalled for 15 minutes under a task running on a thread)."""

    def __init__(self, queue: JobQueue, db: Database, task_id: UUID) -> None:
        self.queue = queue
        self.db = db
        self.task_id = task_id
        self.abandoned: list[UUID] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def send(self, jobs: Sequence[Job], **kwargs: Any) -> SendResult:
        if not self.abandoned:
            self.db.execute(
                "UPDATE redrive_tasks SET updated_at = now() - interval '16 minutes' WHERE id = %s",
                (self.task_id,),
            )
            self.abandoned = RedriveTaskStore(self.db).fail_abandoned()
        return self.queue.send(jobs, **kwargs)


def test_a_task_failed_as_abandoned_while_it_runs_stops_and_stays_failed(
    db: Database,
    store: JobStore,
    job_queue: JobQueue,
    job_registry: JobTypeRegistry,
    sqs: Any,
    dlq_url: str,
) -> None:
    """Once the sweep has failed a task, a new one may start on the same DLQ: the old one
    must not go on beside it, nor later record itself `done`."""
    jobs = failed_jobs(db, 150)
    dead_letter(job_queue, jobs)
    task_id = start(db, {"limit": 10_000})
    queue = AbandonedAfterFirstChunk(job_queue, db, task_id)

    task = run_task(db, cast(JobQueue, queue), job_registry, task_id)

    assert queue.abandoned == [task_id]
    assert task.status == "failed"
    assert task.error == ABANDONED
    assert task.redriven == 100  # the chunk it had done is counted
    assert redrive_counts(store, jobs[:100]) == {1}
    assert redrive_counts(store, jobs[100:]) == {0}
    left, hidden = dlq_contents(sqs, dlq_url)
    assert sorted(left) == sorted(str(j.id) for j in jobs[100:])
    assert hidden == 0
