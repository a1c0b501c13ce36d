"""A job stored with a `run_at` outside the years 1 to 9999 in UTC (before the API refused
one) cannot be loaded by Python: migration 0015 fails it, and the sweep recovers the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from taskmill.db import Database
from taskmill.db.migrate import migrate
from taskmill.errors import InvalidInput, TaskmillError
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobStore
from taskmill.recovery.sweep import Sweeper, SweepLimits

from taskmill_local.postgres import create_database, drop_database
from tests.integration.worker.conftest import queue_messages
from tests.support.factories import create_job, make_user
from tests.support.old_schema import migrate_below

BEFORE = 15  # the migration that repairs them
# 0001-01-01T00:00+14:00, what the API used to accept: 1 BC in UTC.
ONE_BC = "0001-01-01 00:00:00+14"
YEAR_10K = "10000-06-01 00:00:00+00"


@pytest.fixture
def old_database(postgres_server_url: str) -> Iterator[str]:
    """A database migrated up to the one before 0015."""
    name = f"taskmill_run_at_{uuid4().hex[:8]}"
    url = create_database(postgres_server_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate_below(conn, BEFORE)
    try:
        yield url
    finally:
        drop_database(postgres_server_url, name)


def insert_raw(url: str, owner: UUID, *, status: str, run_at: str, webhook: bool = False) -> UUID:
    """A job row written straight into Postgres, as an older API version stored it."""
    job_id = uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO jobs (id, owner_id, type, priority, status, max_attempts, "
            "timeout_seconds, backoff_base_seconds, backoff_max_seconds, run_at, webhook_url, "
            "finished_at) VALUES (%s, %s, 'noop', 'normal', %s, 3, 30, 1, 60, %s, %s, "
            "CASE WHEN %s IN ('succeeded', 'failed', 'cancelled') THEN now() END)",
            (
                job_id,
                owner,
                status,
                run_at,
                "https://hooks.example.com/x" if webhook else None,
                status,
            ),
        )
    return job_id


def test_the_migration_fails_unloadable_jobs_and_the_sweep_recovers_the_rest(
    old_database: str, job_queue: Any, job_registry: Any, sqs: Any
) -> None:
    db = Database(old_database)
    try:
        store = JobStore(db)
        owner = make_user(db)
        scheduled = insert_raw(old_database, owner, status="scheduled", run_at=ONE_BC)
        queued = insert_raw(old_database, owner, status="queued", run_at=ONE_BC, webhook=True)
        far = insert_raw(old_database, owner, status="scheduled", run_at=YEAR_10K)
        done = insert_raw(old_database, owner, status="succeeded", run_at=ONE_BC)
        # A healthy job the sweep must send: committed, never sent.
        healthy = create_job(store, owner)
        sweeper = Sweeper(store, job_queue, job_registry, SweepLimits(send_grace_seconds=0))

        # What operators saw: the sweep stops at the bad row, every run, for every job.
        with pytest.raises(TaskmillError):
            sweeper.run()
        assert store.get(healthy.id).send_pending

        assert migrate(old_database)[0] == BEFORE
        # Checked on every write, and proven of every row written before (0017).
        [check] = db.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'jobs_run_at_range_check'"
        )
        assert check["convalidated"] is True

        report, _ = sweeper.run()
        assert report.resent == 1
        url = job_queue.queue_url("normal")
        sent = [json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, url)]
        assert str(healthy.id) in sent
        assert report.webhooks_created == 1  # the failed job's webhook: its owner hears of it
        assert not store.get(healthy.id).send_pending
        for job_id in (scheduled, queued, far):
            job = store.get(job_id)
            assert job.status is JobStatus.FAILED
            assert job.last_error is not None
            assert "outside the years 1 to 9999" in job.last_error
            assert job.finished_at is not None
            events = store.events(job_id)
            assert events[-1]["to_status"] == "failed"
            assert events[-1]["actor"] == "migration"
        assert "0001-12-31" in (store.get(scheduled).last_error or "")  # the value it had
        kept = store.get(done)  # finished already: only its run_at is made loadable
        assert (kept.status, kept.last_error) == (JobStatus.SUCCEEDED, None)
        assert kept.run_at == kept.created_at
    finally:
        db.close()


def test_no_writer_can_store_an_unloadable_run_at(db: Database) -> None:
    store = JobStore(db)
    job = create_job(store, make_user(db))
    for value in (ONE_BC, YEAR_10K):
        with pytest.raises(InvalidInput):
            db.execute("UPDATE jobs SET run_at = %s::timestamptz WHERE id = %s", (value, job.id))
    assert store.get(job.id).run_at == job.run_at
