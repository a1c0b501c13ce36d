"""Races between two real connections: the conditional statements decide the winner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from taskmill.db import Database
from taskmill.jobs.store import JobFilter, JobStore

from tests.support.factories import create_job, make_user, new_job

T = TypeVar("T")


def race(database_url: str, action: Callable[[JobStore], T], runners: int = 2) -> list[T]:
    """Run `action` at the same moment on separate connections; return every result."""
    databases = [Database(database_url) for _ in range(runners)]
    for database in databases:
        database.connection()  # connect first so the barrier releases real statements
    barrier = threading.Barrier(runners)
    results: list[Any] = [None] * runners
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action(JobStore(databases[index]))
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in databases:
        database.close()
    if errors:
        raise errors[0]
    return results


def test_two_claimers_of_one_job_exactly_one_wins(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    for _ in range(20):  # many rounds: a lucky interleaving must not hide a lost update
        job = create_job(store, owner)

        def claim(s: JobStore, job_id: Any = job.id) -> Any:
            return s.claim(job_id)

        results = race(database_url, claim)
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert store.get(job.id).attempts == 1
        assert [e["to_status"] for e in store.events(job.id)] == ["queued", "running"]


def test_idempotent_create_under_concurrency(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    for round_no in range(10):
        key = f"key-{round_no}"

        def create(s: JobStore, key: str = key) -> Any:
            return s.create(owner, new_job(idempotency_key=key), actor="t")

        results = race(database_url, create)
        assert results[0].job.id == results[1].job.id
        assert sorted(r.created for r in results) == [False, True]
    assert len(store.list_jobs(JobFilter(owner_id=owner), limit=100).items) == 10


def test_two_sweeps_release_each_scheduled_job_once(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    jobs = [
        create_job(store, owner, run_at=datetime.now(UTC) + timedelta(hours=1)) for _ in range(30)
    ]
    db.execute("UPDATE jobs SET run_at = now() WHERE status = 'scheduled'")
    results = race(database_url, lambda s: s.release_due_scheduled(limit=20))
    released = [job.id for batch in results for job in batch]
    assert len(released) == len(set(released)) == 30
    assert {j.id for j in jobs} == set(released)


def test_two_external_claimers_never_share_a_job(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    for _ in range(12):
        create_job(store, owner, type="ext", external=True)
    results = race(database_url, lambda s: s.claim_external(types=None, limit=8, actor="w"))
    claimed = [job.id for batch in results for job in batch]
    assert len(claimed) == len(set(claimed)) == 12
