"""A repeat of the report that ended an external job's attempt (its answer was lost on the
network, the worker sends it again with the same lease token and body) is answered as the
first was, 200 with the job, and changes nothing; any other report after the end is a 409."""

from __future__ import annotations

from typing import Any

from taskmill.db import Database
from taskmill.jobs.store import LEASE_SLACK_SECONDS, JobStore
from taskmill.recovery.sweep import Sweeper, SweepLimits

from tests.integration.api.test_external_worker_reports import _age, _claim_render


def _history(db: Database, job_id: str) -> list[Any]:
    rows = db.execute(
        "SELECT to_status, attempt, detail FROM job_events WHERE job_id = %s ORDER BY id",
        (job_id,),
    )
    return [(r["to_status"], r["attempt"], r["detail"]) for r in rows]


def _unchanged(
    as_user: Any, db: Database, job_id: str, before: dict[str, Any], events: Any
) -> None:
    after = as_user.get(f"/v1/jobs/{job_id}").body
    assert after == before
    assert _history(db, job_id) == events


def test_a_repeated_complete_answers_the_job_and_changes_nothing(as_user, as_worker, db) -> None:
    job_id, token = _claim_render(as_user, as_worker)
    report = {"lease_token": token, "result": {"frames": 24, "url": "s3://out/a.mp4"}}
    first = as_worker.post(f"/v1/jobs/{job_id}/complete", report)
    assert (first.status, first.body["status"]) == (200, "succeeded")
    before, events = as_user.get(f"/v1/jobs/{job_id}").body, _history(db, job_id)
    again = as_worker.post(f"/v1/jobs/{job_id}/complete", report)
    assert (again.status, again.body) == (200, first.body)
    _unchanged(as_user, db, job_id, before, events)
    # Anything else after the end is still a conflict, and changes nothing either.
    other_result = as_worker.post(f"/v1/jobs/{job_id}/complete", {**report, "result": 2})
    no_result = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token})
    fail = as_worker.post(f"/v1/jobs/{job_id}/fail", {"lease_token": token, "error": "x"})
    beat = as_worker.post(f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token})
    progress = as_worker.post(f"/v1/jobs/{job_id}/progress", {"lease_token": token, "percent": 100})
    for late in (other_result, no_result, fail, beat, progress):
        assert (late.status, late.error_code) == (409, "conflict")
    _unchanged(as_user, db, job_id, before, events)


def test_a_repeated_fail_answers_the_job_and_changes_nothing(as_user, as_worker, db) -> None:
    job_id, token = _claim_render(as_user, as_worker, max_attempts=3)
    report = {"lease_token": token, "error": "GPU out of memory"}
    first = as_worker.post(f"/v1/jobs/{job_id}/fail", report)
    assert (first.status, first.body["status"], first.body["attempts"]) == (200, "queued", 1)
    before, events = as_user.get(f"/v1/jobs/{job_id}").body, _history(db, job_id)
    again = as_worker.post(f"/v1/jobs/{job_id}/fail", report)
    assert (again.status, again.body) == (200, first.body)
    _unchanged(as_user, db, job_id, before, events)  # no second failed attempt, no retry
    for other in (
        {**report, "error": "GPU on fire"},
        {**report, "retryable": False},
    ):
        late = as_worker.post(f"/v1/jobs/{job_id}/fail", other)
        assert (late.status, late.error_code) == (409, "conflict")
    late = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
    assert late.status == 409
    _unchanged(as_user, db, job_id, before, events)


def test_a_repeated_final_fail_answers_the_failed_job(as_user, as_worker, db) -> None:
    job_id, token = _claim_render(as_user, as_worker)
    report = {"lease_token": token, "error": "corrupt input", "retryable": False}
    first = as_worker.post(f"/v1/jobs/{job_id}/fail", report)
    assert (first.status, first.body["status"]) == (200, "failed")
    again = as_worker.post(f"/v1/jobs/{job_id}/fail", report)
    assert (again.status, again.body) == (200, first.body)
    as_retryable = as_worker.post(f"/v1/jobs/{job_id}/fail", {**report, "retryable": True})
    assert as_retryable.status == 409


def test_an_attempt_started_again_takes_no_report_of_the_old_lease(as_user, as_worker, db) -> None:
    """Once the job is set going again (claimed by a worker, retried by its owner) the old
    lease is spent for good: its repeat is a 409 like any other stale report, and the new
    attempt takes nothing from it."""
    job_id, token = _claim_render(as_user, as_worker, max_attempts=2, backoff_base_seconds=0)
    report = {"lease_token": token, "error": "flaky"}
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", report).status == 200
    [again] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    assert again["id"] == job_id
    assert again["lease_token"] != token
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", report).status == 409
    for path, body in (
        ("heartbeat", {"lease_token": token}),
        ("progress", {"lease_token": token, "percent": 5}),
        ("complete", {"lease_token": token, "result": 1}),
    ):
        assert as_worker.post(f"/v1/jobs/{job_id}/{path}", body).status == 409
    job = as_user.get(f"/v1/jobs/{job_id}").body
    assert (job["status"], job["attempts"], job["progress"]) == ("running", 2, 0)
    # The second attempt fails for good; its owner retries the job.
    final = {"lease_token": again["lease_token"], "error": "flaky again"}
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", final).body["status"] == "failed"
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", final).status == 200
    assert as_user.post(f"/v1/jobs/{job_id}/retry").status == 200
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", final).status == 409
    assert as_user.get(f"/v1/jobs/{job_id}").body["status"] == "queued"


def test_a_report_after_the_sweep_ended_the_attempt_is_no_repeat(
    as_user, as_worker, db, services, job_queue
) -> None:
    """The sweep, not the worker, ended the attempt: the worker's report is a 409, even one
    that says what the sweep wrote."""
    job_id, token = _claim_render(as_user, as_worker, max_attempts=1, timeout_seconds=60)
    _age(db, job_id, 60 + LEASE_SLACK_SECONDS + 1)
    Sweeper(JobStore(db), job_queue, services.registry, SweepLimits()).run()
    ended = as_user.get(f"/v1/jobs/{job_id}").body
    assert ended["status"] == "failed"
    for path, body in (
        ("fail", {"lease_token": token, "error": ended["last_error"]}),
        ("complete", {"lease_token": token, "result": None}),
    ):
        assert as_worker.post(f"/v1/jobs/{job_id}/{path}", body).status == 409
    assert as_user.get(f"/v1/jobs/{job_id}").body == ended


def test_a_repeated_fail_of_a_cancelled_job_answers_it_cancelled(as_user, as_worker) -> None:
    job_id, token = _claim_render(as_user, as_worker, max_attempts=2)
    assert as_user.post(f"/v1/jobs/{job_id}/cancel").status == 200
    report = {"lease_token": token, "error": "stopped"}
    first = as_worker.post(f"/v1/jobs/{job_id}/fail", report)
    assert first.body["status"] == "cancelled"
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", report).body == first.body


def test_no_answer_shows_the_lease_token_or_the_reports_digest(as_user, as_worker, db) -> None:
    """The token is the worker's secret: only the claim's answer carries it."""
    job_id, token = _claim_render(as_user, as_worker)
    done = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
    repeat = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
    shown = [
        done.body,
        repeat.body,
        as_user.get(f"/v1/jobs/{job_id}").body,
        as_user.get("/v1/jobs").body,
        as_user.get(f"/v1/jobs/{job_id}/events").body,
    ]
    [digest] = db.execute("SELECT report_digest FROM jobs WHERE id = %s", (job_id,))
    assert digest["report_digest"] is not None
    for body in shown:
        text = str(body)
        assert token not in text
        assert str(digest["report_digest"]) not in text
        assert "lease_token" not in text
        assert "report_digest" not in text


def test_a_repeat_stays_refused_once_the_new_attempt_ended_by_the_sweep(
    as_user, as_worker, db, services, job_queue
) -> None:
    """The first attempt's `/fail` was recorded and the job claimed again: however the new
    attempt ends, here by its lease running out, the first attempt's repeat does not become
    a 200 again."""
    job_id, token = _claim_render(
        as_user, as_worker, max_attempts=2, backoff_base_seconds=0, timeout_seconds=60
    )
    report = {"lease_token": token, "error": "flaky"}
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", report).status == 200
    [_again] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    _age(db, job_id, 60 + LEASE_SLACK_SECONDS + 1)
    Sweeper(JobStore(db), job_queue, services.registry, SweepLimits()).run()
    assert as_user.get(f"/v1/jobs/{job_id}").body["status"] == "failed"
    assert as_worker.post(f"/v1/jobs/{job_id}/fail", report).status == 409
