"""Each part of the recovery sweep on real Postgres and moto SQS, and two sweeps racing."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from taskmill.db import Database
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobStore
from taskmill.lifecycle.outcomes import LEASE_EXPIRED, LOST_LEASE_CAP
from taskmill.queue.sqs import JobQueue
from taskmill.recovery.sweep import Sweeper, SweepLimits
from taskmill.users.store import RefreshTokenStore, UserStore

from functions.retry.sweep import handler as sweep_handler
from tests.integration.worker.conftest import queue_messages
from tests.support.factories import create_job, make_user
from tests.support.lambda_events import FakeLambdaContext

NOW_LIMITS = SweepLimits(batch=100, send_grace_seconds=0, retention_days=30)


@pytest.fixture
def store(db: Database) -> JobStore:
    return JobStore(db)


@pytest.fixture
def owner(db: Database) -> Any:
    return make_user(db)


@pytest.fixture
def sweeper(store: JobStore, job_queue: JobQueue, job_registry: Any) -> Sweeper:
    return Sweeper(store, job_queue, job_registry, NOW_LIMITS)


def message_ids(sqs: Any, url: str) -> list[str]:
    return [json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, url)]


def drain(sqs: Any, url: str) -> list[str]:
    """Every job id waiting on a queue (received messages stay invisible meanwhile)."""
    found: list[str] = []
    while batch := message_ids(sqs, url):
        found.extend(batch)
    return found


def test_unsent_jobs_are_sent_after_the_grace_period(
    store, owner, sqs, job_queue, db, job_registry
) -> None:
    job = create_job(store, owner)  # committed, never sent: the crash-between case
    careful = Sweeper(store, job_queue, job_registry, SweepLimits(send_grace_seconds=60))
    assert careful.run()[0].resent == 0  # an API request may still be sending it
    db.execute("UPDATE jobs SET updated_at = now() - interval '2 minutes'")
    report, _ = careful.run()
    assert report.resent == 1
    assert message_ids(sqs, job_queue.queue_url("normal")) == [str(job.id)]
    assert not store.get(job.id).send_pending
    assert careful.run()[0].resent == 0


def test_due_scheduled_jobs_are_released_with_the_remaining_delay(
    store, owner, sweeper, sqs, job_queue, db
) -> None:
    job = create_job(store, owner, run_at=datetime.now(UTC) + timedelta(hours=3))
    assert sweeper.run()[0].released_scheduled == 0
    db.execute("UPDATE jobs SET run_at = now() + interval '10 minutes' WHERE id = %s", (job.id,))
    assert sweeper.run()[0].released_scheduled == 1
    assert store.get(job.id).status is JobStatus.QUEUED
    # Sent with the time left as DelaySeconds: not visible yet.
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []
    attributes = sqs.get_queue_attributes(
        QueueUrl=job_queue.queue_url("normal"),
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


@pytest.mark.parametrize("lost_leases", [0, LOST_LEASE_CAP])
def test_an_expired_lease_of_a_job_asked_to_cancel_ends_it_cancelled(
    store, owner, sweeper, sqs, job_queue, db, lost_leases: int
) -> None:
    # Refunded (the first lost leases) or counted, the attempt is not retried: claims skip a
    # job whose cancellation was asked for, so queued again it would wait for ever.
    job = create_job(store, owner, max_attempts=3, backoff_base_seconds=0)
    store.claim_many([job.id])
    store.mark_enqueued([job])
    store.cancel(job.id, actor="user:x")
    db.execute(
        "UPDATE jobs SET lease_until = now() - interval '1 second', lost_leases = %s",
        (lost_leases,),
    )
    report, _ = sweeper.run()
    assert (report.recovered_retried, report.recovered_failed, report.sent) == (0, 0, 0)
    assert store.get(job.id).status is JobStatus.CANCELLED
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []


def test_expired_leases_are_retried_or_failed_to_the_dlq(
    store, owner, sweeper, sqs, job_queue, db
) -> None:
    retry = create_job(store, owner, max_attempts=3, backoff_base_seconds=0)
    final = create_job(store, owner, max_attempts=1, priority="high")
    store.claim_many([retry.id, final.id])
    store.mark_enqueued([retry, final])
    # Leases lost before this one were refunded; from now on they count as attempts.
    db.execute(
        "UPDATE jobs SET lease_until = now() - interval '1 second', lost_leases = %s",
        (LOST_LEASE_CAP,),
    )
    report, _ = sweeper.run()
    assert (report.recovered_retried, report.recovered_failed) == (1, 1)
    again = store.get(retry.id)
    assert again.status is JobStatus.QUEUED
    assert again.last_error == LEASE_EXPIRED
    assert str(retry.id) in message_ids(sqs, job_queue.queue_url("normal"))
    failed = store.get(final.id)
    assert failed.status is JobStatus.FAILED
    [dead] = queue_messages(sqs, job_queue.dlq_url("high"))
    assert json.loads(dead["Body"])["job_id"] == str(final.id)
    assert dead["MessageAttributes"]["failure_reason"]["StringValue"] == "all 1 attempts failed"


def test_waiting_jobs_are_released_or_cancelled(store, owner, sweeper, db) -> None:
    ok_parent = create_job(store, owner)
    bad_parent = create_job(store, owner)
    released_child = create_job(store, owner, depends_on=[ok_parent.id])
    cancelled_child = create_job(store, owner, depends_on=[bad_parent.id])
    db.execute(
        "UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = %s", (ok_parent.id,)
    )
    store.cancel(bad_parent.id, actor="t")
    report, _ = sweeper.run()
    assert (report.released_waiting, report.cancelled_waiting) == (1, 1)
    assert store.get(released_child.id).status is JobStatus.QUEUED
    cancelled = store.get(cancelled_child.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert "dependency" in (cancelled.last_error or "")


def test_retention_deletes_old_finished_jobs_in_batches(
    store, owner, job_queue, db, job_registry
) -> None:
    old = [create_job(store, owner) for _ in range(5)]
    recent = create_job(store, owner)
    unfinished_old = create_job(store, owner)
    db.execute(
        "UPDATE jobs SET status = 'succeeded', finished_at = now() - interval '40 days' "
        "WHERE id = ANY (%s)",
        ([j.id for j in old],),
    )
    db.execute(
        "UPDATE jobs SET status = 'failed', finished_at = now() - interval '1 day' WHERE id = %s",
        (recent.id,),
    )
    db.execute(
        "UPDATE jobs SET created_at = now() - interval '90 days' WHERE id = %s",
        (unfinished_old.id,),
    )
    small = Sweeper(store, job_queue, job_registry, SweepLimits(batch=3, retention_days=30))
    assert small.run()[0].deleted_finished == 3
    assert small.run()[0].deleted_finished == 2
    assert small.run()[0].deleted_finished == 0
    remaining = {row["id"] for row in db.execute("SELECT id FROM jobs")}
    assert remaining == {recent.id, unfinished_old.id}
    assert (
        db.execute(
            "SELECT count(*) AS n FROM job_events WHERE job_id = ANY (%s)", ([j.id for j in old],)
        )[0]["n"]
        == 0
    )


def test_retention_keeps_a_finished_job_that_a_waiting_job_still_depends_on(
    store, owner, job_queue, db, job_registry
) -> None:
    """A job waiting on an old success and on a job not done yet (say, scheduled in six
    weeks) must not lose the first to retention: a deleted dependency cancels it."""
    done = create_job(store, owner)
    later = create_job(store, owner, run_at=datetime.now(UTC) + timedelta(days=42))
    waiting = create_job(store, owner, depends_on=[done.id, later.id])
    db.execute(
        "UPDATE jobs SET status = 'succeeded', finished_at = now() - interval '40 days' "
        "WHERE id = %s",
        (done.id,),
    )
    sweeper = Sweeper(store, job_queue, job_registry, SweepLimits(retention_days=30))
    report = sweeper.run()[0]
    assert (report.deleted_finished, report.cancelled_waiting) == (0, 0)
    assert store.get(waiting.id).status is JobStatus.WAITING

    store.cancel(waiting.id, actor="t")  # nothing waits on it any more: retention takes it
    assert sweeper.run()[0].deleted_finished == 1
    assert {row["id"] for row in db.execute("SELECT id FROM jobs")} == {later.id, waiting.id}


def test_two_sweeps_racing_act_once_per_job(
    store, owner, job_queue, sqs, database_url, db, job_registry
) -> None:
    for _ in range(20):
        create_job(store, owner)
    expired = [create_job(store, owner, max_attempts=1) for _ in range(10)]
    store.claim_many([j.id for j in expired])
    db.execute(
        "UPDATE jobs SET lease_until = now() - interval '1 second', "
        "updated_at = now() - interval '1 minute', lost_leases = %s",
        (LOST_LEASE_CAP,),
    )
    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        own = Database(database_url)
        barrier.wait()
        # A real grace period: taking a job to resend touches it, which is what keeps the
        # other sweep away from it (with no grace at all both may resend: duplicates only).
        limits = SweepLimits(batch=100, send_grace_seconds=5)
        reports.append(Sweeper(JobStore(own), job_queue, job_registry, limits).run()[0])
        own.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.resent for r in reports) == 20
    assert sum(r.recovered_failed for r in reports) == 10
    sent = drain(sqs, job_queue.queue_url("normal"))
    dead = drain(sqs, job_queue.dlq_url("normal"))
    assert len(set(sent)) == len(sent) == 20
    assert len(set(dead)) == len(dead) == 10


def test_sweep_handler_runs_and_emits_metrics(
    store, owner, queue_env, database_url, monkeypatch, capsys, db
) -> None:
    import functions.retry.sweep as module

    monkeypatch.setattr(module, "_sweeper", None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TASKMILL_SEND_GRACE_SECONDS", "0")
    for name, value in queue_env.items():
        monkeypatch.setenv(name, value)
    create_job(store, owner)
    context: Any = FakeLambdaContext()
    result = sweep_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    assert result["resent"] == 1
    output = capsys.readouterr().out
    assert '"Sweep_resent":[1.0]' in output.replace(" ", "")


def test_an_idle_sweep_publishes_no_metric(queue_env, database_url, monkeypatch, capsys) -> None:
    """A custom metric costs for each hour it is published: an idle environment's sweep, every
    minute, publishes none (its log line still carries the zero counts)."""
    import functions.retry.sweep as module

    monkeypatch.setattr(module, "_sweeper", None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name, value in queue_env.items():
        monkeypatch.setenv(name, value)
    context: Any = FakeLambdaContext()
    result = sweep_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    assert set(result.values()) == {0}
    assert "CloudWatchMetrics" not in capsys.readouterr().out


def test_each_run_logs_one_structured_line(store, owner, job_queue, job_registry) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.lines: list[tuple[str, dict[str, Any]]] = []

        def info(self, message: str, *, extra: dict[str, Any]) -> None:
            self.lines.append((message, extra))

    recorder = Recorder()
    create_job(store, owner)
    Sweeper(store, job_queue, job_registry, NOW_LIMITS, logger=recorder).run()
    [(message, extra)] = recorder.lines
    assert message == "recovery sweep"
    assert extra["sweep"]["resent"] == 1


def test_refresh_tokens_long_expired_are_deleted_without_reviving_an_ended_session(
    store, owner, job_queue, db, job_registry
) -> None:
    """One row per refresh was kept for ever. The sweep deletes tokens a day past their
    expiry: a rotated one alone, the rest only with their whole session once all of it has
    expired, so a revoked token still ends a session a racing refresh left a live token in."""
    tokens = RefreshTokenStore(db)
    sessions = {name: uuid.uuid4() for name in ("open", "gone", "ended", "revoked", "recent")}
    rows = [  # session, expired this many days ago (negative: still valid), used, revoked
        ("open", 40, True, False),  # a rotation of an open session: deleted
        ("open", -29, False, False),  # its current token: kept
        ("gone", 10, True, False),
        ("gone", 5, False, False),  # a session not refreshed for a month: all deleted
        ("ended", 3, True, True),  # the revocation's mark, kept while...
        ("ended", -20, False, False),  # ...the token a racing refresh added lives
        ("revoked", 2, True, True),  # a logged-out session, all expired: deleted
        ("recent", 0.01, True, False),  # expired a quarter of an hour ago: kept for now
    ]
    for session, days_ago, used, revoked in rows:
        db.execute(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, "
            "used_at, revoked_at) VALUES (gen_random_uuid(), %(user)s, %(family)s, "
            "%(hash)s, now() - make_interval(secs => %(ago)s), "
            "CASE WHEN %(used)s THEN now() END, CASE WHEN %(revoked)s THEN now() END)",
            {"user": owner, "family": sessions[session], "hash": uuid.uuid4().bytes,
             "ago": days_ago * 86400, "used": used, "revoked": revoked},
        )  # fmt: skip
    sweeper = Sweeper(store, job_queue, job_registry, SweepLimits(batch=100), tokens=tokens)
    assert sweeper.run()[0].deleted_refresh_tokens == 4
    assert sweeper.run()[0].deleted_refresh_tokens == 0
    left = db.execute("SELECT family_id, count(*) AS n FROM refresh_tokens GROUP BY family_id")
    kept = {name: 0 for name in sessions} | {
        name: row["n"] for row in left for name, f in sessions.items() if f == row["family_id"]
    }
    assert kept == {"open": 1, "gone": 0, "ended": 2, "revoked": 0, "recent": 1}
    live = {
        name: getattr(UserStore(db).session_account(owner, sessions[name]), "session_live", None)
        for name in ("open", "ended")
    }
    assert live == {"open": True, "ended": False}
