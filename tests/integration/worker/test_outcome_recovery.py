"""Completion webhooks and batch outcomes: what a crash or a bad row must not lose."""

from __future__ import annotations

from typing import Any

import pytest
from taskmill.errors import DependencyUnavailable
from taskmill.jobs.model import JobStatus
from taskmill.jobs.retry import RetryDecision
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.lifecycle.outcomes import Outcomes, Success
from taskmill.recovery.sweep import Sweeper, SweepLimits

from tests.integration.worker.conftest import failures


def _hooks(store: JobStore) -> list[Any]:
    return [j for j in store.list_jobs(JobFilter(), limit=200).items if j.type == "webhook.deliver"]


def test_one_unusable_webhook_url_does_not_drop_the_owners_other_webhooks(
    enqueue, deliver, store
) -> None:
    """`POST /v1/jobs` accepts any `HttpUrl` (up to 2083 chars); `WebhookPayload.url` takes
    2048. Two jobs of one owner finishing in one batch: the webhooks are submitted as one
    group per owner, so the one InvalidInput drops both, and both marks are cleared."""
    from pydantic import HttpUrl, TypeAdapter

    long_url = "https://example.com/" + "a" * 2040  # 2060 characters
    TypeAdapter(HttpUrl).validate_python(long_url)  # the API's JobCreate accepts it
    good = enqueue("noop", webhook_url="https://example.com/hook")
    enqueue("noop", webhook_url=long_url)
    assert failures(deliver()) == []
    assert str(good.id) in [h.payload["event"]["job"]["id"] for h in _hooks(store)]


def test_a_sibling_failure_that_cannot_be_recorded_does_not_lose_the_batch_successes(
    enqueue, deliver, store, db, monkeypatch
) -> None:
    """Before the refactor `_record` recorded every success first (one statement), then the
    failures/releases (a statement plus an SQS call each). Now the exceptions go first, so a
    Postgres error on a sibling (or the Lambda timing out in a release's SQS call, which is
    exactly when releases happen: at the 5 s deadline margin) loses the batch's successes:
    their bodies ran, the jobs stay `running`, and the sweep later retries or fails them."""
    done = enqueue("noop")  # noop: max_attempts 1
    enqueue("fail", {"message": "boom"}, max_attempts=3)

    def broken_fail(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        raise DependencyUnavailable("statement timeout")

    monkeypatch.setattr(JobStore, "fail", broken_fail)
    with pytest.raises(DependencyUnavailable):
        deliver()
    monkeypatch.undo()
    assert store.get(done.id).status is JobStatus.SUCCEEDED


def test_a_job_retried_before_its_webhook_was_created_still_gets_its_failure_webhook(
    enqueue, deliver, store, db, job_queue, registry
) -> None:
    """Crash right after the final statement (mark set, no webhook job), then the owner
    retries the job: `retry`/`redrive_many` keep `webhook_pending` but `pending_webhooks`
    only looks at succeeded/failed rows, so the failure's webhook is never created (before
    the refactor it was created in the final statement itself)."""
    job = enqueue("noop", webhook_url="https://example.com/hook")
    [claimed] = store.claim_many([job.id])
    assert claimed.lease_token is not None
    failed = store.fail(
        job.id, claimed.lease_token, "boom", RetryDecision(False, 0.0, "gave up"), resend=False
    )
    assert failed is not None
    assert failed.webhook_pending  # ...and the process dies here
    assert store.retry(job.id, actor="owner") is None  # never straight past a pending webhook
    outcomes = Outcomes(store, job_queue, registry)
    retried = outcomes.retry(failed, actor="owner")  # what POST /v1/jobs/{id}/retry does
    assert retried is not None
    assert retried.status is JobStatus.QUEUED
    db.execute("UPDATE jobs SET updated_at = now() - interval '1 hour'")
    Sweeper(store, job_queue, registry, SweepLimits(send_grace_seconds=0)).run()
    events = [h.payload["event"]["type"] for h in _hooks(store)]
    assert events == ["job.failed"]


def test_the_sweep_creates_the_webhook_of_a_job_finished_just_before_a_crash(
    enqueue, store, db, job_queue, registry
) -> None:
    """Guard for the recovery path that replaced the atomic webhook insert (no existing test
    fails when `pending_webhooks` returns nothing)."""
    job = enqueue("noop", webhook_url="https://example.com/hook")
    [claimed] = store.claim_many([job.id])
    assert store.succeed(job.id, claimed.lease_token, None) is not None  # ...crash here
    sweeper = Sweeper(store, job_queue, registry, SweepLimits(send_grace_seconds=30))
    assert sweeper.run()[0].webhooks_created == 0  # within the grace period: left alone
    db.execute("UPDATE jobs SET updated_at = now() - interval '1 minute'")
    assert sweeper.run()[0].webhooks_created == 1
    assert sweeper.run()[0].webhooks_created == 0
    [hook] = _hooks(store)
    assert hook.payload["event"]["type"] == "job.succeeded"
    assert not store.get(job.id).webhook_pending


def test_a_job_deleted_right_after_its_batch_success_still_gets_its_webhook(
    enqueue, store, job_queue, registry
) -> None:
    """The owner deletes a job between the batch's success statement and its follow-ups (it
    is finished, so `DELETE /v1/jobs/{id}` is allowed): the success was committed with the
    webhook due, so the webhook goes out, as it did when the statement returned whole rows
    (the sweep, reading rows, can no longer create it)."""
    hooked = enqueue("noop", webhook_url="https://example.com/hook")
    plain = enqueue("noop")
    claimed = store.claim_many([hooked.id, plain.id])
    outcomes = Outcomes(store, job_queue, registry)
    finished = outcomes.succeeded_in_batch(
        [Success(j.id, j.lease_token, {"n": 1}) for j in claimed if j.lease_token], actor="w"
    )
    assert {f.id for f in finished} == {hooked.id, plain.id}
    assert store.delete(hooked.id)  # the owner, on another request, meanwhile
    outcomes.follow_up(finished)
    [hook] = _hooks(store)
    event = hook.payload["event"]
    assert (event["type"], event["job"]["id"]) == ("job.succeeded", str(hooked.id))
    assert event["job"]["result"] == {"n": 1}
