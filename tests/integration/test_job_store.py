"""Every transition of the job state machine, on real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from taskmill.db import Database
from taskmill.errors import Conflict, DependencyFailed, InvalidInput, NotFound, QuotaExceeded
from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.retry import RetryDecision
from taskmill.jobs.store import JobFilter, JobStore

from tests.support.factories import create_job, make_user, new_job

RETRY_SOON = RetryDecision(True, 5.0, "attempt 1 of 3 failed")
RETRY_LATER = RetryDecision(True, 3600.0, "attempt 1 of 3 failed")
GIVE_UP = RetryDecision(False, 0.0, "all 3 attempts failed")


@pytest.fixture
def store(db: Database) -> JobStore:
    return JobStore(db)


@pytest.fixture
def owner(db: Database):
    return make_user(db)


def statuses(store: JobStore, job_id) -> list[tuple[str | None, str, str]]:
    return [(e["from_status"], e["to_status"], e["actor"]) for e in store.events(job_id)]


def running(store: JobStore, owner, **overrides):
    job = create_job(store, owner, **overrides)
    claimed = store.claim(job.id)
    assert claimed is not None
    return claimed


# ---- create -------------------------------------------------------------------------


def test_create_queues_a_job_marked_to_be_sent(store: JobStore, owner) -> None:
    result = store.create(owner, new_job(name="n", tags=["a", "b"]), actor="user:1")
    job = result.job
    assert result.created
    assert job.status is JobStatus.QUEUED
    assert job.send_pending
    assert job.queued_at
    assert job.tags == ["a", "b"]
    assert job.attempts == 0
    assert statuses(store, job.id) == [(None, "queued", "user:1")]


def test_run_at_within_sqs_delay_is_queued_and_later_is_scheduled(store: JobStore, owner) -> None:
    soon = create_job(store, owner, run_at=datetime.now(UTC) + timedelta(minutes=5))
    later = create_job(store, owner, run_at=datetime.now(UTC) + timedelta(hours=2))
    assert soon.status is JobStatus.QUEUED
    assert soon.send_pending
    assert later.status is JobStatus.SCHEDULED
    assert not later.send_pending


def test_unfinished_dependency_makes_a_job_wait(store: JobStore, owner) -> None:
    dep = create_job(store, owner)
    child = create_job(store, owner, depends_on=[dep.id])
    assert child.status is JobStatus.WAITING
    assert not child.send_pending


def test_dependency_of_another_owner_or_missing_is_refused(store: JobStore, owner, db) -> None:
    other = make_user(db)
    theirs = create_job(store, other)
    for deps in ([theirs.id], [uuid4()]):
        with pytest.raises(InvalidInput, match="depends_on"):
            store.create_many(owner, [new_job(), new_job(depends_on=deps)], actor="t")
    assert store.list_jobs(JobFilter(owner_id=owner)).items == []


def test_external_jobs_are_never_marked_to_be_sent(store: JobStore, owner) -> None:
    job = create_job(store, owner, type="render", external=True)
    assert job.status is JobStatus.QUEUED
    assert not job.send_pending


def test_a_retried_external_job_is_not_marked_to_be_sent(store: JobStore, owner) -> None:
    """External jobs are claimed over the API: a retry must not put them on an SQS queue,
    whoever records the failure (an external worker, the sweep after a lost lease)."""
    create_job(store, owner, type="render", external=True)
    [claimed] = store.claim_external(types=None, limit=1, actor="worker:x")
    assert claimed.lease_token is not None
    retried = store.fail(
        claimed.id, claimed.lease_token, "x", RetryDecision(True, 0.0, "again"), resend=True
    )
    assert retried is not None
    assert retried.status is JobStatus.QUEUED
    assert not retried.send_pending


def test_idempotency_key_returns_the_original(store: JobStore, owner, db) -> None:
    first = store.create(owner, new_job(idempotency_key="k1"), actor="t")
    again = store.create(owner, new_job(idempotency_key="k1", name="other"), actor="t")
    assert first.created
    assert not again.created
    assert again.job.id == first.job.id
    assert again.job.name is None
    # Keys are per owner: another user may use the same key.
    other = store.create(make_user(db), new_job(idempotency_key="k1"), actor="t")
    assert other.created
    assert other.job.id != first.job.id


def test_quota_counts_unfinished_jobs(store: JobStore, owner) -> None:
    store.create_many(owner, [new_job(), new_job()], actor="t", unfinished_limit=3)
    with pytest.raises(QuotaExceeded) as caught:
        store.create_many(owner, [new_job(), new_job()], actor="t", unfinished_limit=3)
    assert caught.value.details == {"unfinished": 2, "limit": 3}
    assert len(store.list_jobs(JobFilter(owner_id=owner)).items) == 2
    # An idempotent repeat is answered even at the limit.
    store.create(owner, new_job(idempotency_key="k"), actor="t", unfinished_limit=3)
    repeat = store.create(owner, new_job(idempotency_key="k"), actor="t", unfinished_limit=3)
    assert not repeat.created


def test_mark_enqueued_clears_the_mark_once(store: JobStore, owner) -> None:
    job = create_job(store, owner)
    assert store.mark_enqueued([job]) == 1
    assert store.mark_enqueued([job]) == 0
    assert not store.get(job.id).send_pending


# ---- claim and run --------------------------------------------------------------------


def test_claim_starts_an_attempt_with_a_lease(store: JobStore, owner) -> None:
    job = create_job(store, owner, timeout_seconds=60)
    claimed = store.claim(job.id)
    assert claimed is not None
    assert claimed.status is JobStatus.RUNNING
    assert claimed.attempts == 1
    assert claimed.lease_token is not None
    assert claimed.started_at is not None
    assert claimed.lease_until is not None
    assert claimed.lease_until - claimed.started_at >= timedelta(seconds=60)
    assert statuses(store, job.id)[-1] == ("queued", "running", "worker")


def test_claim_skips_running_finished_and_cancelled_jobs(store: JobStore, owner) -> None:
    active = running(store, owner)
    assert store.claim(active.id) is None
    assert active.lease_token
    store.succeed(active.id, active.lease_token, {"ok": True})
    assert store.claim(active.id) is None  # a late duplicate of a finished job
    cancelled = create_job(store, owner)
    store.cancel(cancelled.id, actor="t")
    assert store.claim(cancelled.id) is None
    assert store.get(active.id).attempts == 1


def test_claim_many_claims_only_what_is_queued(store: JobStore, owner) -> None:
    jobs = [create_job(store, owner) for _ in range(3)]
    store.claim(jobs[0].id)
    claimed = store.claim_many([j.id for j in jobs] + [uuid4()])
    assert {j.id for j in claimed} == {jobs[1].id, jobs[2].id}


def test_claim_external_takes_highest_priority_first(store: JobStore, owner) -> None:
    low = create_job(store, owner, type="ext", external=True, priority="low")
    high = create_job(store, owner, type="ext", external=True, priority="high")
    create_job(store, owner, type="other", external=True)
    create_job(store, owner)  # not external: never claimed over the API
    first = store.claim_external(types=["ext"], limit=1, actor="worker:w")
    assert [j.id for j in first] == [high.id]
    rest = store.claim_external(types=None, limit=10, actor="worker:w")
    assert low.id in {j.id for j in rest}
    assert len(rest) == 2


def test_heartbeat_and_progress_need_the_lease(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    assert job.lease_until
    assert store.heartbeat(job.id, uuid4()) is None
    beat = store.heartbeat(job.id, job.lease_token)
    assert beat is not None
    assert beat.lease_until
    assert beat.lease_until >= job.lease_until
    assert store.set_progress(job.id, uuid4(), 50, "half") is None
    updated = store.set_progress(job.id, job.lease_token, 50, "half")
    assert updated is not None
    assert (updated.progress, updated.progress_message) == (50, "half")


def test_succeed_records_the_result(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    done = store.succeed(job.id, job.lease_token, {"answer": 42})
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == {"answer": 42}
    assert done.finished_at
    assert done.lease_token is None
    assert done.progress == 100
    assert store.succeed(job.id, job.lease_token, {"again": True}) is None


def test_succeed_many_applies_only_held_leases(store: JobStore, owner) -> None:
    a, b = running(store, owner), running(store, owner)
    assert a.lease_token
    assert b.lease_token
    done = store.succeed_many([(a.id, a.lease_token, 1), (b.id, uuid4(), 2)])
    assert [j.id for j in done] == [a.id]
    assert store.get(b.id).status is JobStatus.RUNNING


def test_fail_with_a_short_retry_requeues(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    again = store.fail(job.id, job.lease_token, "boom", RETRY_SOON, resend=False)
    assert again is not None
    assert again.status is JobStatus.QUEUED
    assert again.last_error == "boom"
    assert not again.send_pending
    assert again.lease_token is None
    assert again.run_at > datetime.now(UTC)
    resent = running(store, owner)
    assert resent.lease_token
    marked = store.fail(resent.id, resent.lease_token, "boom", RETRY_SOON, resend=True)
    assert marked is not None
    assert marked.send_pending
    events = store.events(job.id)
    assert events[-1]["detail"]["error"] == "boom"
    assert events[-1]["detail"]["attempt"] == 1


def test_fail_with_a_long_retry_schedules(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    later = store.fail(job.id, job.lease_token, "rate limited", RETRY_LATER, resend=True)
    assert later is not None
    assert later.status is JobStatus.SCHEDULED
    assert not later.send_pending


def test_fail_without_retry_is_final(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    failed = store.fail(job.id, job.lease_token, "bad", GIVE_UP, resend=True)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.finished_at
    assert not failed.send_pending
    assert store.fail(job.id, job.lease_token, "bad", GIVE_UP, resend=True) is None


# ---- owner and operator actions -------------------------------------------------------


@pytest.mark.parametrize("state", ["queued", "scheduled", "waiting"])
def test_cancel_before_running(store: JobStore, owner, state: str) -> None:
    overrides: dict = {}
    if state == "scheduled":
        overrides["run_at"] = datetime.now(UTC) + timedelta(days=1)
    if state == "waiting":
        overrides["depends_on"] = [create_job(store, owner).id]
    job = create_job(store, owner, **overrides)
    assert job.status == state
    cancelled = store.cancel(job.id, actor="user:x", reason="not needed")
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.finished_at
    assert not cancelled.send_pending
    assert statuses(store, job.id)[-1] == (state, "cancelled", "user:x")


def test_cancel_running_asks_the_worker(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    asked = store.cancel(job.id, actor="t")
    assert asked is not None
    assert asked.status is JobStatus.RUNNING
    assert asked.cancel_requested
    assert store.cancel(job.id, actor="t") is None  # already asked
    stopped = store.acknowledge_cancel(job.id, job.lease_token)
    assert stopped is not None
    assert stopped.status is JobStatus.CANCELLED


@pytest.mark.parametrize("end", ["retry soon", "retry later", "lease lost", "released"])
def test_a_job_asked_to_cancel_is_cancelled_where_it_would_run_again(
    store: JobStore, owner, db: Database, end: str
) -> None:
    # Claims skip a job whose cancellation was asked for, so putting it back in the queue
    # would leave it `queued` (or `scheduled`) for ever, counted as unfinished.
    job = running(store, owner)
    assert job.lease_token
    store.cancel(job.id, actor="user:x")
    if end == "retry soon":
        store.fail(job.id, job.lease_token, "boom", RETRY_SOON, resend=True)
    elif end == "retry later":
        store.fail(job.id, job.lease_token, "boom", RETRY_LATER, resend=True)
    elif end == "lease lost":
        db.execute("UPDATE jobs SET lease_until = now() - interval '1 second'")
        store.refund_lost_lease(store.get(job.id), "the lease expired", cap=3)
    else:
        store.release(job.id, job.lease_token, "the worker reached its deadline")
    stopped = store.get(job.id)
    assert stopped.status is JobStatus.CANCELLED
    assert stopped.finished_at is not None
    assert not stopped.send_pending
    assert stopped.lease_token is None
    assert statuses(store, job.id)[-1][:2] == ("running", "cancelled")
    assert store.count_unfinished(owner) == 0


def test_a_job_asked_to_cancel_that_fails_for_good_is_failed(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    store.cancel(job.id, actor="user:x")
    store.fail(job.id, job.lease_token, "boom", GIVE_UP, resend=True)
    assert store.get(job.id).status is JobStatus.FAILED


def test_cancel_finished_job_does_nothing(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    store.succeed(job.id, job.lease_token, None)
    assert store.cancel(job.id, actor="t") is None
    assert store.get(job.id).status is JobStatus.SUCCEEDED


def test_retry_gives_failed_and_cancelled_jobs_a_fresh_budget(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    store.fail(job.id, job.lease_token, "bad", GIVE_UP, resend=True)
    again = store.retry(job.id, actor="user:x")
    assert again is not None
    assert again.status is JobStatus.QUEUED
    assert again.attempts == 0
    assert again.send_pending
    assert again.finished_at is None
    assert store.retry(job.id, actor="user:x") is None  # queued: nothing to retry
    cancelled = create_job(store, owner)
    store.cancel(cancelled.id, actor="t")
    revived = store.retry(cancelled.id, actor="t")
    assert revived is not None
    assert not revived.cancel_requested


def test_redrive_counts_and_duplicates_are_no_ops(store: JobStore, owner) -> None:
    job = running(store, owner)
    assert job.lease_token
    store.fail(job.id, job.lease_token, "bad", GIVE_UP, resend=True)
    [redriven] = store.redrive_many(
        [job.id], actor="console", resend=False, expected_redrive_count=0
    )
    assert redriven.status is JobStatus.QUEUED
    assert redriven.redrive_count == 1
    assert redriven.attempts == 0
    assert not redriven.send_pending
    # The same DLQ message delivered twice must not redrive twice.
    again = running(store, owner)
    assert again.lease_token
    assert (
        store.redrive_many([job.id], actor="console", resend=False, expected_redrive_count=0) == []
    )
    assert store.redrive_many([again.id], actor="api", resend=True) == []  # not failed


def test_a_redriven_job_starts_afresh_like_a_retried_one(store: JobStore, owner) -> None:
    """A redrive gives a fresh attempt budget, as a retry does; the failed attempt's progress
    stayed, so /status of a job that had not run again said queued, 0 attempts, 80 %."""
    for again in ("redrive", "retry"):
        job = running(store, owner)
        assert job.lease_token
        store.set_progress(job.id, job.lease_token, 80, "step 4 of 5")
        store.fail(job.id, job.lease_token, "bad", GIVE_UP, resend=False)
        back: Job | None
        if again == "redrive":
            [back] = store.redrive_many([job.id], actor="api", resend=False)
        else:
            back = store.retry(job.id, actor="api")
        assert back is not None
        assert (back.status, back.attempts, back.progress, back.progress_message) == (
            JobStatus.QUEUED,
            0,
            0,
            None,
        ), again


def test_update_details_and_pre_run_fields(store: JobStore, owner) -> None:
    job = create_job(store, owner)
    edited = store.update_details(job.id, name="nightly", tags=["x"], priority="high")
    assert (edited.name, edited.tags, edited.priority) == ("nightly", ["x"], "high")
    assert edited.send_pending  # a new message goes to the new priority's queue
    later = store.update_details(job.id, run_at=datetime.now(UTC) + timedelta(days=1))
    assert later.status is JobStatus.SCHEDULED
    active = running(store, owner)
    assert store.update_details(active.id, description="still editable").description
    with pytest.raises(Conflict):
        store.update_details(active.id, priority="low")
    with pytest.raises(NotFound):
        store.update_details(uuid4(), priority="low")


def test_delete_refuses_running_jobs(store: JobStore, owner) -> None:
    active = running(store, owner)
    idle = create_job(store, owner)
    assert not store.delete(active.id)
    assert store.delete(idle.id)
    with pytest.raises(NotFound):
        store.get(idle.id)


# ---- recovery -------------------------------------------------------------------------


def expire(db: Database, job_id) -> None:
    db.execute("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = %s", (job_id,))


def test_expired_leases_are_recovered_once(store: JobStore, owner, db: Database) -> None:
    job = running(store, owner)
    fresh = running(store, owner)
    expire(db, job.id)
    [expired] = store.expired_leases(limit=10)
    assert expired.id == job.id
    assert fresh.id != job.id
    recovered = store.recover_expired(expired, "lease expired", RETRY_SOON)
    assert recovered is not None
    assert recovered.status is JobStatus.QUEUED
    assert recovered.send_pending
    assert store.recover_expired(expired, "lease expired", RETRY_SOON) is None
    assert statuses(store, job.id)[-1] == ("running", "queued", "recovery")


def test_expired_lease_with_no_attempts_left_fails(store: JobStore, owner, db: Database) -> None:
    job = running(store, owner, max_attempts=1)
    expire(db, job.id)
    [expired] = store.expired_leases(limit=10)
    failed = store.recover_expired(expired, "lease expired", GIVE_UP)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.last_error == "lease expired"


def test_due_scheduled_jobs_are_released(store: JobStore, owner, db: Database) -> None:
    due = create_job(store, owner, run_at=datetime.now(UTC) + timedelta(hours=1))
    far = create_job(store, owner, run_at=datetime.now(UTC) + timedelta(days=1))
    db.execute("UPDATE jobs SET run_at = now() + interval '2 minutes' WHERE id = %s", (due.id,))
    released = store.release_due_scheduled(limit=10)
    assert [j.id for j in released] == [due.id]
    assert released[0].status is JobStatus.QUEUED
    assert released[0].send_pending
    assert store.get(far.id).status is JobStatus.SCHEDULED
    assert store.release_due_scheduled(limit=10) == []


def test_waiting_jobs_follow_their_dependencies(store: JobStore, owner) -> None:
    dep_a, dep_b = running(store, owner), running(store, owner)
    child = create_job(store, owner, depends_on=[dep_a.id, dep_b.id])
    assert dep_a.lease_token
    assert dep_b.lease_token
    store.succeed(dep_a.id, dep_a.lease_token, None)
    assert store.release_waiting(limit=10, job_ids=[dep_a.id]) == []
    store.succeed(dep_b.id, dep_b.lease_token, None)
    [released] = store.release_waiting(limit=10, job_ids=[dep_b.id])
    assert released.id == child.id
    assert released.status is JobStatus.QUEUED
    assert released.send_pending


def test_waiting_on_a_failed_dependency_is_cancelled(store: JobStore, owner) -> None:
    dep = running(store, owner)
    child = create_job(store, owner, depends_on=[dep.id])
    assert dep.lease_token
    store.fail(dep.id, dep.lease_token, "bad", GIVE_UP, resend=True)
    assert store.release_waiting(limit=10) == []
    [cancelled] = store.cancel_waiting_on_failed(limit=10)
    assert cancelled.id == child.id
    assert cancelled.status is JobStatus.CANCELLED
    assert "dependency" in (cancelled.last_error or "")


def test_waiting_on_a_deleted_dependency_is_cancelled(store: JobStore, owner) -> None:
    dep = create_job(store, owner)
    child = create_job(store, owner, depends_on=[dep.id])
    store.delete(dep.id)
    assert [j.id for j in store.cancel_waiting_on_failed(limit=10)] == [child.id]


def cancelled_with_failed_dependency(store: JobStore, owner):
    """A dependency that failed for good and its dependent, cancelled by the sweep."""
    dep = running(store, owner)
    child = create_job(store, owner, depends_on=[dep.id])
    assert dep.lease_token
    store.fail(dep.id, dep.lease_token, "bad", GIVE_UP, resend=True)
    [cancelled] = store.cancel_waiting_on_failed(limit=10)
    assert cancelled.id == child.id
    return dep, child


def test_retry_is_refused_while_a_dependency_is_failed(store: JobStore, owner) -> None:
    dep, child = cancelled_with_failed_dependency(store, owner)
    before = statuses(store, child.id)
    with pytest.raises(DependencyFailed) as refused:
        store.retry(child.id, actor="user:x")
    assert refused.value.details == {"dependencies": [{"id": str(dep.id), "status": "failed"}]}
    assert str(dep.id) in refused.value.message
    after = store.get(child.id)
    assert after.status is JobStatus.CANCELLED
    assert not after.send_pending
    assert statuses(store, child.id) == before  # nothing was written


def test_retry_waits_for_a_dependency_that_was_retried(store: JobStore, owner) -> None:
    dep, child = cancelled_with_failed_dependency(store, owner)
    assert store.retry(dep.id, actor="user:x") is not None  # the dependency runs again
    waiting = store.retry(child.id, actor="user:x")
    assert waiting is not None
    assert waiting.status is JobStatus.WAITING
    assert not waiting.send_pending  # no message before its dependency succeeds
    assert waiting.attempts == 0
    assert waiting.finished_at is None
    assert statuses(store, child.id)[-1] == ("cancelled", "waiting", "user:x")
    assert store.release_waiting(limit=10) == []  # still unfinished
    again = store.claim(dep.id)
    assert again is not None
    assert again.lease_token
    store.succeed(dep.id, again.lease_token, {"ok": 1})
    [released] = store.release_waiting(limit=10, job_ids=[dep.id])
    assert released.id == child.id
    assert released.status is JobStatus.QUEUED
    assert released.send_pending


def test_a_retried_dependent_is_cancelled_again_if_its_dependency_fails_again(
    store: JobStore, owner
) -> None:
    dep, child = cancelled_with_failed_dependency(store, owner)
    store.retry(dep.id, actor="user:x")
    store.retry(child.id, actor="user:x")
    again = store.claim(dep.id)
    assert again is not None
    assert again.lease_token
    store.fail(dep.id, again.lease_token, "bad again", GIVE_UP, resend=True)
    assert [j.id for j in store.cancel_waiting_on_failed(limit=10)] == [child.id]


def test_retry_queues_a_job_whose_dependencies_succeeded(store: JobStore, owner) -> None:
    dep = running(store, owner)
    assert dep.lease_token
    store.succeed(dep.id, dep.lease_token, None)
    child = create_job(store, owner, depends_on=[dep.id])
    assert child.status is JobStatus.QUEUED
    claimed = store.claim(child.id)
    assert claimed is not None
    assert claimed.lease_token
    store.fail(child.id, claimed.lease_token, "its own failure", GIVE_UP, resend=True)
    again = store.retry(child.id, actor="user:x")
    assert again is not None
    assert again.status is JobStatus.QUEUED
    assert again.send_pending


def test_retry_is_refused_when_a_dependency_was_deleted_or_cancelled(
    store: JobStore, owner
) -> None:
    gone, stopped = create_job(store, owner), create_job(store, owner)
    child = create_job(store, owner, depends_on=[gone.id, stopped.id])
    store.delete(gone.id)
    store.cancel(stopped.id, actor="t")
    store.cancel_waiting_on_failed(limit=10)
    with pytest.raises(DependencyFailed) as refused:
        store.retry(child.id, actor="user:x")
    assert sorted(refused.value.details["dependencies"], key=lambda d: d["status"]) == [
        {"id": str(stopped.id), "status": "cancelled"},
        {"id": str(gone.id), "status": "deleted"},
    ]
    assert store.get(child.id).status is JobStatus.CANCELLED


def test_retry_of_a_job_in_another_state_is_none_whatever_its_dependencies(
    store: JobStore, owner
) -> None:
    dep = running(store, owner)
    child = create_job(store, owner, depends_on=[dep.id])
    assert dep.lease_token
    store.fail(dep.id, dep.lease_token, "bad", GIVE_UP, resend=True)
    assert store.retry(child.id, actor="user:x") is None  # waiting: not a retry
    assert store.retry(uuid4(), actor="user:x") is None


def test_retry_counts_against_the_owners_quota_like_a_create(
    store: JobStore, owner, db: Database
) -> None:
    failed = running(store, owner)
    assert failed.lease_token
    store.fail(failed.id, failed.lease_token, "bad", GIVE_UP, resend=True)
    cancelled = create_job(store, owner)
    store.cancel(cancelled.id, actor="t")
    # Two unfinished jobs, one of them waiting and one running, and someone else's.
    create_job(store, owner, run_at=datetime.now(UTC) + timedelta(days=1))
    assert running(store, owner).status is JobStatus.RUNNING
    create_job(store, make_user(db))
    before = statuses(store, failed.id), statuses(store, cancelled.id)
    for job_id in (failed.id, cancelled.id):
        with pytest.raises(QuotaExceeded) as refused:
            store.retry(job_id, actor="user:x", unfinished_limit=2)
        # The same error, code and figures as a create over the limit.
        assert refused.value.details == {"unfinished": 2, "limit": 2}
        assert refused.value.message == "at most 2 unfinished jobs are allowed per user"
        with pytest.raises(QuotaExceeded) as created:
            store.create(owner, new_job(), actor="t", unfinished_limit=2)
        assert (created.value.code, created.value.details) == (
            refused.value.code,
            refused.value.details,
        )
    assert store.get(failed.id).status is JobStatus.FAILED
    assert not store.get(failed.id).send_pending
    assert store.get(cancelled.id).status is JobStatus.CANCELLED
    assert (statuses(store, failed.id), statuses(store, cancelled.id)) == before
    # Room for one more: the first retry takes it, the second is refused.
    retried = store.retry(failed.id, actor="user:x", unfinished_limit=3)
    assert retried is not None
    assert retried.status is JobStatus.QUEUED
    with pytest.raises(QuotaExceeded) as refused:
        store.retry(cancelled.id, actor="user:x", unfinished_limit=3)
    assert refused.value.details == {"unfinished": 3, "limit": 3}
    assert store.count_unfinished(owner) == 3


def test_retry_over_quota_still_refuses_what_it_always_refused(store: JobStore, owner) -> None:
    dep, child = cancelled_with_failed_dependency(store, owner)
    queued = create_job(store, owner)
    assert store.count_unfinished(owner) == 1
    # A job that cannot be retried anyway says why, not that the owner is at the limit.
    assert store.retry(queued.id, actor="user:x", unfinished_limit=1) is None
    with pytest.raises(DependencyFailed):
        store.retry(child.id, actor="user:x", unfinished_limit=1)
    with pytest.raises(QuotaExceeded):
        store.retry(dep.id, actor="user:x", unfinished_limit=1)
    # Without a limit (the platform's own callers) nothing counts.
    assert store.retry(dep.id, actor="user:x") is not None


def test_pending_sends_waits_for_the_grace_period(store: JobStore, owner, db: Database) -> None:
    job = create_job(store, owner)
    assert store.pending_sends(older_than_seconds=30, limit=10) == []
    db.execute("UPDATE jobs SET updated_at = now() - interval '1 minute' WHERE id = %s", (job.id,))
    assert [j.id for j in store.pending_sends(older_than_seconds=30, limit=10)] == [job.id]
    store.mark_enqueued([job])
    assert store.pending_sends(older_than_seconds=30, limit=10) == []


# ---- listing --------------------------------------------------------------------------


def test_list_filters(store: JobStore, owner, db: Database) -> None:
    other = make_user(db)
    a = create_job(store, owner, priority="high", tags=["red"])
    b = create_job(store, owner, type="sleep", payload={"seconds": 1})
    create_job(store, other)
    store.cancel(b.id, actor="t")
    assert {j.id for j in store.list_jobs(JobFilter(owner_id=owner)).items} == {a.id, b.id}
    assert len(store.list_jobs(JobFilter()).items) == 3
    assert [j.id for j in store.list_jobs(JobFilter(owner_id=owner, tag="red")).items] == [a.id]
    assert [j.id for j in store.list_jobs(JobFilter(priority="high")).items] == [a.id]
    assert [j.id for j in store.list_jobs(JobFilter(type="sleep")).items] == [b.id]
    cancelled = store.list_jobs(JobFilter(status=JobStatus.CANCELLED)).items
    assert [j.id for j in cancelled] == [b.id]
    future = datetime.now(UTC) + timedelta(minutes=1)
    assert store.list_jobs(JobFilter(created_after=future)).items == []
    assert len(store.list_jobs(JobFilter(created_before=future)).items) == 3


def test_cursor_pagination_visits_every_job_once(store: JobStore, owner) -> None:
    # One statement gives every row the same created_at: the id breaks the tie.
    created = [r.job.id for r in store.create_many(owner, [new_job() for _ in range(7)], actor="t")]
    seen: list = []
    cursor = None
    while True:
        page = store.list_jobs(JobFilter(owner_id=owner), limit=3, cursor=cursor)
        seen.extend(j.id for j in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(created)
    assert len(seen) == 7


def test_bad_cursor_is_invalid_input(store: JobStore) -> None:
    with pytest.raises(InvalidInput):
        store.list_jobs(JobFilter(), cursor="not-a-cursor")


def test_deleting_jobs_deletes_their_history(store: JobStore, owner, db: Database) -> None:
    job = create_job(store, owner)
    kept = create_job(store, owner)
    assert store.delete(job.id)
    assert store.events(job.id) == []
    assert len(store.events(kept.id)) == 1
    db.execute("DELETE FROM users WHERE id = %s", (owner,))  # cascades to the jobs
    assert db.execute("SELECT count(*) AS n FROM job_events")[0]["n"] == 0


def test_listings_include_running_jobs_in_their_place(store: JobStore, owner, db) -> None:
    """Running jobs live in another index than the rest; a listing merges both."""
    jobs = [create_job(store, owner, name=f"j{i}") for i in range(5)]
    for i, job in enumerate(jobs):  # distinct creation times, oldest first
        db.execute(
            "UPDATE jobs SET created_at = now() - make_interval(secs => %s) WHERE id = %s",
            (100 - i, job.id),
        )
    store.claim_many([jobs[1].id, jobs[3].id])
    newest_first = [j.id for j in reversed(jobs)]
    assert [j.id for j in store.list_jobs(JobFilter(owner_id=owner)).items] == newest_first
    pages: list[Any] = []
    cursor: str | None = None
    while True:
        page = store.list_jobs(JobFilter(owner_id=owner), limit=2, cursor=cursor)
        pages.extend(j.id for j in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == newest_first
    running = store.list_jobs(JobFilter(owner_id=owner, status=JobStatus.RUNNING)).items
    assert [j.id for j in running] == [jobs[3].id, jobs[1].id]
    queued = store.list_jobs(JobFilter(status=JobStatus.QUEUED)).items
    assert [j.id for j in queued] == [jobs[4].id, jobs[2].id, jobs[0].id]


def test_an_error_is_recorded_by_the_transition_that_had_it(store: JobStore, owner) -> None:
    job = create_job(store, owner, max_attempts=3)
    [first] = store.claim_many([job.id])
    assert first.lease_token is not None
    store.fail(job.id, first.lease_token, "boom", RetryDecision(True, 0.0, "again"), resend=False)
    [second] = store.claim_many([job.id])
    assert second.lease_token is not None
    store.succeed(job.id, second.lease_token, None)
    events = store.events(job.id)
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    assert [e["detail"].get("error") for e in events] == [None, None, "boom", None, None]
    assert [e["detail"].get("attempt") for e in events] == [None, 1, 1, 2, 2]
