"""Completion webhooks created once when the worker's follow-up and
the sweep (or two sweeps) race on two real connections."""

from __future__ import annotations

import logging
from typing import Any

from taskmill.jobs.retry import RetryDecision
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.lifecycle.webhooks import create_completion_webhooks
from taskmill.queue.sqs import JobQueue

from tests.integration.test_job_races import race
from tests.support.factories import create_job, make_user


class NoSqs:
    """SQS refusing every send: the webhook jobs stay marked "to be sent"."""

    def send_message_batch(self, **kwargs: Any) -> Any:
        return {"Failed": [{"Id": e["Id"], "Code": "off"} for e in kwargs["Entries"]]}


def _finish(store: JobStore, owner: Any, n: int) -> list[Any]:
    done = []
    for _ in range(n):
        job = create_job(store, owner, webhook_url="https://example.com/hook")
        [claimed] = store.claim_many([job.id])
        assert claimed.lease_token is not None
        done.append(
            store.fail(
                job.id, claimed.lease_token, "x", RetryDecision(False, 0.0, "r"), resend=False
            )
        )
    return done


def _hook_count(store: JobStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in store.list_jobs(JobFilter(), limit=500).items:
        if job.type == "webhook.deliver":
            key = job.payload["event"]["job"]["id"]
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_worker_and_sweep_create_each_webhook_once(
    db, database_url, job_registry, queue_settings
) -> None:
    no_sqs = JobQueue(queue_settings, client_factory=NoSqs)
    store = JobStore(db)
    owner = make_user(db)
    for _ in range(10):
        finished = _finish(store, owner, 5)

        def follow_up(s: JobStore, finished: list[Any] = finished) -> Any:
            return create_completion_webhooks(
                s, no_sqs, job_registry, finished, logger=logging.getLogger("t")
            )

        race(database_url, follow_up)
    counts = _hook_count(store)
    assert len(counts) == 50
    assert set(counts.values()) == {1}


def test_two_sweeps_take_each_pending_webhook_once(db, database_url, job_registry) -> None:
    store = JobStore(db)
    owner = make_user(db)
    _finish(store, owner, 40)
    db.execute("UPDATE jobs SET updated_at = now() - interval '1 minute'")
    taken = race(database_url, lambda s: s.pending_webhooks(older_than_seconds=5, limit=100))
    ids = [job.id for batch in taken for job in batch]
    assert len(ids) == 40
    assert len(set(ids)) == 40
