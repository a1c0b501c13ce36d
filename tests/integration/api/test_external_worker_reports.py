"""What an external worker's reports may do: a heartbeat cannot stretch an attempt past the
job's `timeout_seconds`, and a result that is not JSON is refused with the job unchanged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from taskmill.db import Database
from taskmill.jobs.store import LEASE_SLACK_SECONDS, JobStore
from taskmill.recovery.sweep import Sweeper, SweepLimits


def _claim_render(as_user: Any, as_worker: Any, **options: Any) -> tuple[str, str]:
    job = as_user.post("/v1/jobs", {"type": "render", **options}).body
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    assert claimed["id"] == job["id"]
    return job["id"], claimed["lease_token"]


def _age(db: Database, job_id: str, seconds: float) -> None:
    """As if the attempt had been claimed `seconds` ago (the claim's lease moves with it)."""
    db.execute(
        "UPDATE jobs SET started_at = started_at - make_interval(secs => %(s)s), "
        "lease_until = lease_until - make_interval(secs => %(s)s) WHERE id = %(id)s",
        {"s": seconds, "id": job_id},
    )


def test_a_heartbeat_never_extends_the_lease_past_the_jobs_timeout(as_user, as_worker, db) -> None:
    job_id, token = _claim_render(as_user, as_worker, timeout_seconds=60)
    _age(db, job_id, 50)  # ten seconds left
    beat = as_worker.post(f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token})
    assert beat.status == 200
    row = JobStore(db).get(UUID(job_id))
    assert row.started_at is not None
    assert row.lease_until is not None
    bound = row.started_at + timedelta(seconds=60 + LEASE_SLACK_SECONDS)
    assert row.lease_until <= bound


def test_a_heartbeat_after_the_timeout_says_the_attempts_time_is_up(as_user, as_worker, db) -> None:
    job_id, token = _claim_render(as_user, as_worker, timeout_seconds=60)
    _age(db, job_id, 61)
    before = JobStore(db).get(UUID(job_id))
    late = as_worker.post(f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token})
    assert (late.status, late.error_code) == (409, "attempt_timed_out")
    assert "60" in late.body["error"]["message"]
    after = JobStore(db).get(UUID(job_id))
    assert (after.status, after.lease_until) == (before.status, before.lease_until)
    # Within the slack its last report is still taken.
    done = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
    assert (done.status, done.body["status"]) == (200, "succeeded")


def test_an_attempt_past_its_timeout_ends_as_a_timeout_through_the_retry_policy(
    as_user, as_worker, db, services, job_queue
) -> None:
    job_id, token = _claim_render(
        as_user, as_worker, timeout_seconds=60, max_attempts=2, backoff_base_seconds=0
    )
    _age(db, job_id, 60 + LEASE_SLACK_SECONDS + 1)  # the worker kept heartbeating: no matter
    assert as_worker.post(f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token}).status == 409
    sweeper = Sweeper(JobStore(db), job_queue, services.registry, SweepLimits())
    assert sweeper.run()[0].recovered_retried == 1
    retried = as_user.get(f"/v1/jobs/{job_id}").body
    assert (retried["status"], retried["attempts"]) == ("queued", 1)  # the attempt counts
    assert "timed out after 60 s" in retried["last_error"]
    # The second attempt runs out of time too: its retries are spent.
    [again] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    _age(db, job_id, 60 + LEASE_SLACK_SECONDS + 1)
    assert sweeper.run()[0].recovered_failed == 1
    failed = as_user.get(f"/v1/jobs/{job_id}").body
    assert (failed["status"], failed["attempts"]) == ("failed", 2)
    late = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": again["lease_token"]})
    assert late.status == 409


def test_a_result_holding_nan_or_infinity_is_refused_naming_the_field(as_user, as_worker) -> None:
    job_id, token = _claim_render(as_user, as_worker)
    for bad in (float("nan"), float("inf"), float("-inf")):
        # Python's json.dumps writes these as NaN / Infinity, which JSON does not have.
        refused = as_worker.post(
            f"/v1/jobs/{job_id}/complete",
            {"lease_token": token, "result": {"frames": [1.0, bad]}},
        )
        assert (refused.status, refused.error_code) == (400, "invalid_input")
        assert refused.body["error"]["details"][0]["loc"] == ["body", "result", "frames", "1"]
        job = as_user.get(f"/v1/jobs/{job_id}").body
        assert (job["status"], job["result"]) == ("running", None)
    done = as_worker.post(
        f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": {"frames": [1.0, 2.0]}}
    )
    assert (done.status, done.body["result"]) == (200, {"frames": [1.0, 2.0]})


def test_progress_after_the_timeout_says_the_attempts_time_is_up(as_user, as_worker, db) -> None:
    """A worker that reports progress as its sign of life (the answer carries
    `cancel_requested`, as a heartbeat's does) learns that its attempt is over as a
    heartbeating one does, instead of being told all is well until the lease is gone."""
    job_id, token = _claim_render(as_user, as_worker, timeout_seconds=60)
    report = {"lease_token": token, "percent": 40, "message": "frames"}
    assert as_worker.post(f"/v1/jobs/{job_id}/progress", report).status == 200
    _age(db, job_id, 61)
    before = JobStore(db).get(UUID(job_id))
    late = as_worker.post(f"/v1/jobs/{job_id}/progress", {**report, "percent": 90})
    assert (late.status, late.error_code) == (409, "attempt_timed_out")
    assert late.body["error"]["details"]["timeout_seconds"] == 60
    after = JobStore(db).get(UUID(job_id))
    assert (after.progress, after.progress_message, after.updated_at) == (
        before.progress,
        before.progress_message,
        before.updated_at,
    )
    # Within the slack its last report is still taken.
    done = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
    assert (done.status, done.body["status"]) == (200, "succeeded")


def test_a_job_cancelled_on_its_last_attempt_ends_cancelled_when_its_worker_stops(
    as_user, as_worker
) -> None:
    """The README tells an external worker that sees `cancel_requested` to stop and report
    `/fail`: on the job's last attempt that report must not turn the user's cancel into a
    failure, whether the worker calls it retryable or not."""
    for retryable in (True, False):
        job_id, token = _claim_render(as_user, as_worker, max_attempts=1)
        assert as_user.post(f"/v1/jobs/{job_id}/cancel").status == 200
        beat = as_worker.post(f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token})
        assert (beat.status, beat.body["cancel_requested"]) == (200, True)
        stopped = as_worker.post(
            f"/v1/jobs/{job_id}/fail",
            {"lease_token": token, "error": "stopped: cancel requested", "retryable": retryable},
        )
        assert (stopped.status, stopped.body["status"]) == (200, "cancelled")
        job = as_user.get(f"/v1/jobs/{job_id}").body
        assert (job["status"], job["last_error"]) == ("cancelled", "stopped: cancel requested")
        assert job["finished_at"] is not None
        # The worker's later report cannot undo the cancel either.
        late = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
        assert late.status == 409
        assert as_user.get(f"/v1/jobs/{job_id}").body["status"] == "cancelled"


def test_a_job_cancelled_on_its_last_attempt_whose_worker_just_stops_ends_cancelled(
    as_user, as_worker, db, services, job_queue
) -> None:
    """A worker that stops on `cancel_requested` without reporting leaves the lease to run
    out: the sweep ends the attempt, and the job the user cancelled ends `cancelled`."""
    job_id, _token = _claim_render(as_user, as_worker, max_attempts=1, timeout_seconds=60)
    assert as_user.post(f"/v1/jobs/{job_id}/cancel").status == 200
    _age(db, job_id, 60 + LEASE_SLACK_SECONDS + 1)
    Sweeper(JobStore(db), job_queue, services.registry, SweepLimits()).run()
    job = as_user.get(f"/v1/jobs/{job_id}").body
    assert (job["status"], job["attempts"]) == ("cancelled", 1)
