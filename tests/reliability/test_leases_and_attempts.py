"""A crash is recovered within about a minute or two whatever the job's timeout, and
platform trouble does not spend a job's attempts (up to a cap)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from taskmill.errors import DependencyUnavailable
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobStore
from taskmill.lifecycle.outcomes import LOST_LEASE_CAP
from taskmill.recovery.sweep import Sweeper, SweepLimits
from taskmill.worker.runner import Worker

from functions.worker.handler import process_event
from tests.integration.worker.conftest import failures
from tests.support.lambda_events import FakeLambdaContext, receive_event


def _run_in_background(event: dict[str, Any], worker: Worker) -> threading.Thread:
    thread = threading.Thread(
        target=process_event, args=(event, FakeLambdaContext(), worker), daemon=True
    )
    thread.start()
    return thread


def test_a_long_jobs_lease_is_short_and_kept_alive_while_it_runs(
    enqueue, store, sqs, job_queue, registry, worker
) -> None:
    started, finish = threading.Event(), threading.Event()

    @registry.register("long", timeout_seconds=3600)
    def long(context: Any, payload: Any) -> str:
        started.set()
        finish.wait(20)
        return "done"

    worker.lease_seconds, worker.heartbeat_seconds = 3.0, 0.5
    job = enqueue("long")
    thread = _run_in_background(receive_event(sqs, job_queue.queue_url("normal")), worker)
    assert started.wait(10)
    first = store.get(job.id).lease_until
    assert first is not None
    # A crash now would be noticed within the lease, not after the job's hour.
    assert first <= datetime.now(UTC) + timedelta(seconds=5)
    time.sleep(4)  # longer than the lease: the worker must have extended it
    second = store.get(job.id).lease_until
    assert second is not None
    assert second > first
    assert second > datetime.now(UTC)
    finish.set()
    thread.join(10)
    assert store.get(job.id).status is JobStatus.SUCCEEDED


def test_the_default_lease_is_about_a_minute(
    enqueue, store, sqs, job_queue, registry, worker
) -> None:
    started, finish = threading.Event(), threading.Event()

    @registry.register("long2", timeout_seconds=3600)
    def long2(context: Any, payload: Any) -> None:
        started.set()
        finish.wait(20)

    job = enqueue("long2")
    thread = _run_in_background(receive_event(sqs, job_queue.queue_url("normal")), worker)
    assert started.wait(10)
    lease_until = store.get(job.id).lease_until
    assert lease_until is not None
    assert lease_until <= datetime.now(UTC) + timedelta(seconds=95)
    finish.set()
    thread.join(10)


def _expire(store: JobStore, db: Any, job_id: Any) -> None:
    db.execute("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = %s", (job_id,))


def test_a_lost_lease_does_not_spend_the_jobs_attempt_until_the_cap(
    enqueue, store, db, job_queue, registry
) -> None:
    job = enqueue("noop", max_attempts=1)
    sweeper = Sweeper(store, job_queue, registry, SweepLimits(send_grace_seconds=0))
    for lost in range(1, LOST_LEASE_CAP + 1):
        assert store.claim(job.id) is not None  # a worker takes it, then its process dies
        _expire(store, db, job.id)
        assert sweeper.run()[0].recovered_retried == 1
        again = store.get(job.id)
        assert (again.status, again.attempts, again.lost_leases) == (JobStatus.QUEUED, 0, lost)
    assert store.claim(job.id) is not None
    _expire(store, db, job.id)
    assert sweeper.run()[0].recovered_failed == 1  # a job that keeps killing its worker
    assert store.get(job.id).status is JobStatus.FAILED


def test_a_body_waiting_for_a_free_thread_is_not_timed_out(
    enqueue, store, sqs, job_queue, registry, worker
) -> None:
    """Its timeout counts from when it starts: a batch slowed by the platform (here: one
    thread for two bodies) must not fail a job that has not run yet."""

    @registry.register("slowish", timeout_seconds=10)
    def slowish(context: Any, payload: Any) -> None:
        time.sleep(2)

    @registry.register("quick", timeout_seconds=1, max_attempts=1)
    def quick(context: Any, payload: Any) -> None:
        time.sleep(0.5)  # well within its second, once it gets to run

    worker.max_parallel_bodies = 1
    slow_job, quick_job = enqueue("slowish"), enqueue("quick")
    event = receive_event(sqs, job_queue.queue_url("normal"))
    assert len(event["Records"]) == 2
    event["Records"].sort(key=lambda r: r["body"] != f'{{"job_id":"{slow_job.id}","v":1}}')
    assert failures(process_event(event, FakeLambdaContext(), worker)) == []
    assert store.get(quick_job.id).status is JobStatus.SUCCEEDED


class FrozenProgressStore(JobStore):
    """Postgres stops answering progress reports (frozen, failing over)."""

    def set_progress(self, *args: Any, **kwargs: Any) -> Any:
        raise DependencyUnavailable("the database did not answer in time")


def test_a_progress_report_lost_to_the_database_does_not_fail_the_job(
    enqueue, db, sqs, job_queue, registry, platform_services
) -> None:
    @registry.register("reporting", max_attempts=1)
    def reporting(context: Any, payload: Any) -> str:
        context.progress(50, "half way")
        return "finished"

    store = FrozenProgressStore(db)
    worker = Worker(store, job_queue, registry, platform_services)
    job = enqueue("reporting")
    assert (
        failures(
            process_event(
                receive_event(sqs, job_queue.queue_url("normal")), FakeLambdaContext(), worker
            )
        )
        == []
    )
    done = store.get(job.id)
    assert (done.status, done.result) == (JobStatus.SUCCEEDED, "finished")


def test_two_sweeps_refund_each_lost_lease_once(
    store, owner, job_queue, database_url, db, registry
) -> None:
    from taskmill.db import Database

    from tests.support.factories import create_job

    jobs = [create_job(store, owner, max_attempts=1) for _ in range(20)]
    store.claim_many([j.id for j in jobs])
    db.execute("UPDATE jobs SET lease_until = now() - interval '1 second'")
    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        own = Database(database_url)
        barrier.wait()
        sweeper = Sweeper(JobStore(own), job_queue, registry, SweepLimits(batch=100))
        reports.append(sweeper.run()[0])
        own.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.recovered_retried for r in reports) == 20
    again = [store.get(j.id) for j in jobs]
    assert {(j.status, j.attempts, j.lost_leases) for j in again} == {(JobStatus.QUEUED, 0, 1)}
