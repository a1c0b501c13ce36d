"""Jobs, job types, external workers and operations over the API handler."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from taskmill.api.pages import PAGE_BUDGET_BYTES
from taskmill.jobs.retry import RetryDecision
from taskmill.jobs.store import JobStore
from taskmill.lifecycle.submit import JobRequest, resolve
from taskmill.queue.sqs import JobQueue
from taskmill.recovery.sweep import Sweeper, SweepLimits

from tests.integration.api.conftest import PASSWORD
from tests.integration.worker.conftest import queue_messages

ROOT = Path(__file__).resolve().parents[3]


def test_create_sends_one_message_and_answers_201(as_user, sqs, job_queue, db) -> None:
    before = db.round_trips
    r = as_user.post(
        "/v1/jobs",
        {
            "type": "sleep",
            "payload": {"seconds": 1},
            "priority": "high",
            "tags": ["nightly"],
            "name": "n1",
        },
    )
    assert r.status == 201, r.body
    assert db.round_trips - before <= 2 + 0  # create + clear the "to be sent" mark
    assert r.body["status"] == "queued"
    assert r.body["max_attempts"] == 3  # the type's default
    assert r.headers["X-Correlation-Id"]
    [message] = queue_messages(sqs, job_queue.queue_url("high"))
    assert json.loads(message["Body"]) == {"job_id": r.body["id"], "v": 1}


def test_idempotency_key_returns_the_original(as_user, sqs, job_queue) -> None:
    first = as_user.post("/v1/jobs", {"type": "noop"}, headers={"Idempotency-Key": "abc"})
    again = as_user.post("/v1/jobs", {"type": "noop"}, headers={"Idempotency-Key": "abc"})
    assert (first.status, again.status) == (201, 200)
    assert first.body["id"] == again.body["id"]
    assert len(queue_messages(sqs, job_queue.queue_url("normal"))) == 1


def test_invalid_jobs_are_refused_with_the_envelope(as_user) -> None:
    unknown_type = as_user.post("/v1/jobs", {"type": "nope"})
    assert unknown_type.status == 400
    assert unknown_type.error_code == "invalid_input"
    bad_payload = as_user.post("/v1/jobs", {"type": "sleep", "payload": {"seconds": "x"}})
    assert bad_payload.status == 400
    assert bad_payload.body["error"]["details"][0]["loc"] == ["seconds"]
    unknown_field = as_user.post("/v1/jobs", {"type": "noop", "colour": "red"})
    assert unknown_field.status == 400
    bad_json = as_user.post("/v1/jobs", raw_body="{not json")
    assert bad_json.status == 400
    naive_time = as_user.post("/v1/jobs", {"type": "noop", "run_at": "2030-01-01T00:00:00"})
    assert naive_time.status == 400
    bad_hook = as_user.post("/v1/jobs", {"type": "noop", "webhook_url": "file:///etc/passwd"})
    assert bad_hook.status == 400
    [hook_error] = bad_hook.body["error"]["details"]
    assert hook_error["loc"] == ["body", "webhook_url"]
    assert not hook_error["msg"].startswith("Value error"), hook_error
    for response in (unknown_type, bad_payload, unknown_field, bad_json):
        assert "Traceback" not in json.dumps(response.body)


def test_an_http_request_url_that_can_never_be_requested_is_refused_at_creation(
    as_user,
) -> None:
    for url in ("ftp://example.com/x", "not a url", "http://user:secret@example.com/"):
        refused = as_user.post("/v1/jobs", {"type": "http.request", "payload": {"url": url}})
        assert refused.status == 400, (url, refused.body)
        assert refused.body["error"]["code"] == "invalid_input"
        assert refused.body["error"]["details"][0]["loc"] == ["url"]
        # The validator's own sentence, not pydantic's "Value error, " before it.
        assert not refused.body["error"]["details"][0]["msg"].startswith("Value error")
        assert "secret" not in json.dumps(refused.body)
    # An address is the worker's to check when the job runs (DNS; TASKMILL_HTTP_ALLOW_PRIVATE).
    private = as_user.post(
        "/v1/jobs", {"type": "http.request", "payload": {"url": "http://127.0.0.1:9/"}}
    )
    assert private.status == 201, private.body


def test_size_limits_answer_413(as_user) -> None:
    big_payload = as_user.post(
        "/v1/jobs", {"type": "fail", "payload": {"message": "x" * 900}} | {"description": "d"}
    )
    assert big_payload.status == 201  # under the 8 KiB payload limit of these tests
    too_big = as_user.post("/v1/jobs", {"type": "render", "payload": {"blob": "x" * 9000}})
    assert too_big.status == 413
    assert too_big.error_code == "payload_too_large"
    huge_body = as_user.post("/v1/jobs", raw_body=json.dumps({"type": "noop", "name": "y" * 70000}))
    assert huge_body.status == 413


def test_quota_of_unfinished_jobs(as_user, services) -> None:
    services.settings = services.settings.model_copy(update={"max_unfinished_jobs": 2})
    assert as_user.post("/v1/jobs", {"type": "noop"}).status == 201
    assert as_user.post("/v1/jobs", {"type": "noop"}).status == 201
    third = as_user.post("/v1/jobs", {"type": "noop"})
    assert third.status == 429
    assert third.error_code == "quota_exceeded"


def test_retry_past_the_quota_answers_429_like_a_create(as_user, as_admin, services) -> None:
    services.settings = services.settings.model_copy(update={"max_unfinished_jobs": 2})
    stopped = as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body["id"]
    assert as_user.post(f"/v1/jobs/{stopped}/cancel").status == 200
    kept = [as_user.post("/v1/jobs", {"type": "noop"}).body["id"] for _ in range(2)]
    created = as_user.post("/v1/jobs", {"type": "noop"})
    for caller in (as_user, as_admin):  # the owner's quota, whoever asks
        refused = caller.post(f"/v1/jobs/{stopped}/retry")
        assert refused.status == 429, refused.body
        assert refused.body["error"] == {
            **created.body["error"],
            "correlation_id": refused.body["error"]["correlation_id"],
        }
        assert refused.body["error"]["code"] == "quota_exceeded"
        assert refused.body["error"]["details"] == {"unfinished": 2, "limit": 2}
    job = as_user.get(f"/v1/jobs/{stopped}").body
    assert (job["status"], job["attempts"]) == ("cancelled", 0)
    events = as_user.get(f"/v1/jobs/{stopped}/events").body["items"]
    assert [e["to_status"] for e in events] == ["scheduled", "cancelled"]
    # A finished job makes room, as it would for a create.
    assert as_user.post(f"/v1/jobs/{kept[0]}/cancel").status == 200
    retried = as_user.post(f"/v1/jobs/{stopped}/retry")
    assert retried.status == 200, retried.body
    assert retried.body["status"] == "queued"


def test_batch_create(as_user, sqs, job_queue) -> None:
    r = as_user.post("/v1/jobs/batch", {"jobs": [{"type": "noop"} for _ in range(12)]})
    assert r.status == 201
    assert len(r.body["items"]) == 12
    assert as_user.post("/v1/jobs/batch", {"jobs": []}).status == 400
    too_many = as_user.post("/v1/jobs/batch", {"jobs": [{"type": "noop"}] * 101})
    assert too_many.status == 400
    # One invalid job refuses the whole batch: nothing is half-created.
    mixed = as_user.post("/v1/jobs/batch", {"jobs": [{"type": "noop"}, {"type": "nope"}]})
    assert mixed.status == 400
    assert len(as_user.get("/v1/jobs?limit=200").body["items"]) == 12
    # The 400 says which job (in a batch of 100 the bare message would not); details as a
    # single create's.
    assert mixed.body["error"]["message"] == "jobs[1]: unknown job type 'nope'"
    bad_payload = {"type": "sleep", "payload": {"seconds": "x"}}
    refused = as_user.post("/v1/jobs/batch", {"jobs": [{"type": "noop"}] * 2 + [bad_payload]})
    single = as_user.post("/v1/jobs", bad_payload)
    assert (refused.status, single.status) == (400, 400)
    assert refused.body["error"]["message"] == f"jobs[2]: {single.body['error']['message']}"
    assert refused.body["error"]["details"] == single.body["error"]["details"]
    internal = as_user.post("/v1/jobs/batch", {"jobs": [{"type": "webhook.deliver"}]})
    assert internal.body["error"]["message"].startswith("jobs[0]: job type 'webhook.deliver'")


def test_sqs_outage_leaves_the_job_for_the_sweep(
    as_user, services, api_settings, job_queue, db, sqs
) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Down:
        def send_message_batch(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://sqs")

    services.queue = JobQueue(api_settings, client_factory=Down)
    r = as_user.post("/v1/jobs", {"type": "noop"})
    assert r.status == 201  # accepted: the recovery sweep will send it
    store = JobStore(db)
    job = store.get(r.body["id"])
    assert job.send_pending
    services.queue = job_queue
    report, _ = Sweeper(
        store, job_queue, services.registry, SweepLimits(send_grace_seconds=0)
    ).run()
    assert report.resent == 1
    assert not store.get(job.id).send_pending
    [message] = queue_messages(sqs, job_queue.queue_url("normal"))
    assert json.loads(message["Body"])["job_id"] == str(job.id)


def test_ownership_isolation(as_user, as_other, as_admin) -> None:
    mine = as_user.post("/v1/jobs", {"type": "noop"}).body["id"]
    assert as_other.get(f"/v1/jobs/{mine}").status == 404
    assert as_other.get(f"/v1/jobs/{mine}/status").status == 404
    assert as_other.post(f"/v1/jobs/{mine}/cancel").status == 404
    assert as_other.patch(f"/v1/jobs/{mine}", {"name": "x"}).status == 404
    assert as_other.delete(f"/v1/jobs/{mine}").status == 404
    assert as_other.get("/v1/jobs").body["items"] == []
    assert as_admin.get(f"/v1/jobs/{mine}").status == 200
    assert len(as_admin.get("/v1/jobs").body["items"]) == 1


def test_list_filters_and_pagination(as_user) -> None:
    for index in range(5):
        as_user.post(
            "/v1/jobs",
            {
                "type": "noop",
                "priority": "low" if index % 2 else "high",
                "tags": ["even"] if index % 2 == 0 else [],
            },
        )
    high = as_user.get("/v1/jobs?priority=high")
    assert len(high.body["items"]) == 3
    assert len(as_user.get("/v1/jobs?tag=even").body["items"]) == 3
    assert len(as_user.get("/v1/jobs?status=queued&type=noop").body["items"]) == 5
    first = as_user.get("/v1/jobs?limit=2")
    second = as_user.get(f"/v1/jobs?limit=2&cursor={first.body['next_cursor']}")
    assert {j["id"] for j in first.body["items"]}.isdisjoint(
        {j["id"] for j in second.body["items"]}
    )
    assert as_user.get("/v1/jobs?status=bogus").status == 400
    assert as_user.get("/v1/jobs?cursor=bogus").status == 400
    assert as_user.get("/v1/jobs?limit=0").status == 400


def test_children_are_listed_by_parent_for_their_owner_and_admins(
    as_user, as_other, as_admin, services, db
) -> None:
    store = JobStore(db)
    parent = store.claim(as_user.post("/v1/jobs", {"type": "noop"}).body["id"])
    assert parent is not None
    assert parent.lease_token is not None
    noop = resolve(JobRequest(type="noop", payload={}), services.registry)
    store.succeed_with_children(
        parent.id,
        parent.lease_token,
        None,
        [noop.model_copy(update={"parent_id": parent.id, "name": f"c{i}"}) for i in range(3)],
        owner_id=parent.owner_id,
    )
    as_user.post("/v1/jobs", {"type": "noop"})  # not a child
    mine = as_user.get(f"/v1/jobs?parent_id={parent.id}")
    assert mine.status == 200
    assert sorted(j["name"] for j in mine.body["items"]) == ["c0", "c1", "c2"]
    assert {j["parent_id"] for j in mine.body["items"]} == {str(parent.id)}
    first = as_user.get(f"/v1/jobs?parent_id={parent.id}&limit=2")
    rest = as_user.get(f"/v1/jobs?parent_id={parent.id}&cursor={first.body['next_cursor']}")
    assert len(first.body["items"]) + len(rest.body["items"]) == 3
    assert as_user.get(f"/v1/jobs/{parent.id}").body["parent_id"] is None
    assert as_other.get(f"/v1/jobs?parent_id={parent.id}").body["items"] == []
    assert len(as_admin.get(f"/v1/jobs?parent_id={parent.id}").body["items"]) == 3
    bad = as_user.get("/v1/jobs?parent_id=not-a-uuid")
    assert bad.status == 400
    assert bad.error_code == "invalid_input"


def test_get_status_events_edit_cancel_retry_delete(as_user, db) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body
    assert job["status"] == "scheduled"
    status = as_user.get(f"/v1/jobs/{job['id']}/status")
    assert set(status.body) == {
        "id",
        "status",
        "progress",
        "progress_message",
        "attempts",
        "cancel_requested",
        "updated_at",
    }
    assert status.body["cancel_requested"] is False
    edited = as_user.patch(f"/v1/jobs/{job['id']}", {"name": "renamed", "priority": "high"})
    assert edited.status == 200
    assert (edited.body["name"], edited.body["priority"]) == ("renamed", "high")
    cancelled = as_user.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.body["status"] == "cancelled"
    assert as_user.post(f"/v1/jobs/{job['id']}/cancel").status == 409
    assert as_user.patch(f"/v1/jobs/{job['id']}", {"priority": "low"}).status == 409
    retried = as_user.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.body["status"] == "queued"
    assert as_user.post(f"/v1/jobs/{job['id']}/retry").status == 409
    events = as_user.get(f"/v1/jobs/{job['id']}/events").body["items"]
    assert [e["to_status"] for e in events] == ["scheduled", "cancelled", "queued"]
    JobStore(db).claim(job["id"])
    refused = as_user.delete(f"/v1/jobs/{job['id']}")
    assert refused.status == 409
    assert refused.body["error"]["message"].endswith("cancel it first")
    assert as_user.post(f"/v1/jobs/{job['id']}/cancel").body["cancel_requested"] is True
    # A poller of the light status sees the cancel is under way, not a plain `running`.
    polled = as_user.get(f"/v1/jobs/{job['id']}/status").body
    assert (polled["status"], polled["cancel_requested"]) == ("running", True)
    refused = as_user.delete(f"/v1/jobs/{job['id']}")  # cancelling it again would not help
    assert refused.status == 409
    assert refused.body["error"]["message"].endswith("delete it once it has stopped")
    other = as_user.post("/v1/jobs", {"type": "noop"}).body
    assert as_user.delete(f"/v1/jobs/{other['id']}").status == 204
    assert as_user.get(f"/v1/jobs/{other['id']}").status == 404
    assert as_user.get("/v1/jobs/not-a-uuid").status == 400


def test_depends_on_waits_and_must_be_own(as_user, as_other) -> None:
    parent = as_user.post("/v1/jobs", {"type": "noop"}).body
    child = as_user.post("/v1/jobs", {"type": "noop", "depends_on": [parent["id"]]})
    assert child.body["status"] == "waiting"
    theirs = as_other.post("/v1/jobs", {"type": "noop", "depends_on": [parent["id"]]})
    assert theirs.status == 400


def test_depending_on_a_failed_or_cancelled_job_is_refused_at_create(
    as_user, as_worker, db
) -> None:
    """Such a job could never run: it used to be created (201), then cancelled."""
    failed = as_user.post("/v1/jobs", {"type": "render", "max_attempts": 1}).body
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    ended = {"lease_token": claimed["lease_token"], "error": "gpu lost", "retryable": False}
    assert as_worker.post(f"/v1/jobs/{failed['id']}/fail", ended).body["status"] == "failed"
    cancelled = as_user.post("/v1/jobs", {"type": "noop", "run_at": "2099-01-01T00:00:00Z"}).body
    assert as_user.post(f"/v1/jobs/{cancelled['id']}/cancel").body["status"] == "cancelled"
    running = as_user.post("/v1/jobs", {"type": "noop"}).body
    before = db.execute("SELECT count(*) AS n FROM jobs")[0]["n"]

    refused = as_user.post("/v1/jobs", {"type": "noop", "depends_on": [failed["id"]]})
    assert (refused.status, refused.error_code) == (409, "dependency_failed")
    assert f"{failed['id']} (failed)" in refused.body["error"]["message"]
    assert refused.body["error"]["details"]["dependencies"] == [
        {"id": failed["id"], "status": "failed"}
    ]
    # A batch is all or nothing: its good job is not created either.
    batch = as_user.post(
        "/v1/jobs/batch",
        {
            "jobs": [
                {"type": "noop", "depends_on": [running["id"]]},
                {"type": "noop", "depends_on": [running["id"], cancelled["id"]]},
            ]
        },
    )
    assert (batch.status, batch.error_code) == (409, "dependency_failed")
    assert batch.body["error"]["details"] == {
        "dependencies": [{"id": cancelled["id"], "status": "cancelled"}],
        "rows": [1],
    }
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == before
    # Retried, the dependency can be depended on again.
    assert as_user.post(f"/v1/jobs/{cancelled['id']}/retry").status == 200
    waiting = as_user.post("/v1/jobs", {"type": "noop", "depends_on": [cancelled["id"]]})
    assert (waiting.status, waiting.body["status"]) == (201, "waiting")


def test_a_repeated_create_answers_its_job_after_the_dependency_failed(as_user, as_worker) -> None:
    dep = as_user.post("/v1/jobs", {"type": "render", "max_attempts": 1}).body
    body = {"type": "noop", "depends_on": [dep["id"]]}
    first = as_user.post("/v1/jobs", body, headers={"Idempotency-Key": "k-1"})
    assert (first.status, first.body["status"]) == (201, "waiting")
    batch = as_user.post("/v1/jobs/batch", {"jobs": [body]}, headers={"Idempotency-Key": "b-1"})
    assert batch.status == 201, batch.body
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    ended = {"lease_token": claimed["lease_token"], "error": "gpu lost", "retryable": False}
    assert as_worker.post(f"/v1/jobs/{dep['id']}/fail", ended).status == 200
    again = as_user.post("/v1/jobs", body, headers={"Idempotency-Key": "k-1"})
    assert (again.status, again.body["id"]) == (200, first.body["id"])

    # Deleted since, the dependency no longer exists: a repeat still answers the original
    # jobs (it answered 400, "names a job that does not exist"); a new key is checked.
    assert as_user.delete(f"/v1/jobs/{dep['id']}").status == 204
    once_more = as_user.post("/v1/jobs", body, headers={"Idempotency-Key": "k-1"})
    assert (once_more.status, once_more.body["id"]) == (200, first.body["id"])
    repeated = as_user.post("/v1/jobs/batch", {"jobs": [body]}, headers={"Idempotency-Key": "b-1"})
    ids = [job["id"] for job in batch.body["items"]]
    assert (repeated.status, [job["id"] for job in repeated.body["items"]]) == (200, ids)
    fresh = as_user.post("/v1/jobs", body, headers={"Idempotency-Key": "k-2"})
    assert (fresh.status, fresh.body["error"]["code"]) == (400, "invalid_input")


def test_a_job_cancelled_by_its_failed_dependency_is_retried_after_it(
    as_user, as_worker, services, db, job_queue, sqs
) -> None:
    """The dependency is an external job (its worker reports over the API), so each of its
    ends is the user's choice; the recovery sweep cancels what waited on it."""
    store = JobStore(db)

    def sweep() -> Any:
        return Sweeper(store, job_queue, services.registry, SweepLimits()).run()[0]

    def end_render(report: str) -> None:
        [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
        body = {"lease_token": claimed["lease_token"]}
        if report == "fail":
            body |= {"error": "gpu lost", "retryable": False}
        assert as_worker.post(f"/v1/jobs/{claimed['id']}/{report}", body).status == 200

    dep = as_user.post("/v1/jobs", {"type": "render", "max_attempts": 1}).body
    child = as_user.post("/v1/jobs", {"type": "noop", "depends_on": [dep["id"]]}).body
    assert child["status"] == "waiting"
    end_render("fail")
    assert sweep().cancelled_waiting == 1
    cancelled = as_user.get(f"/v1/jobs/{child['id']}").body
    assert cancelled["status"] == "cancelled"
    assert "dependency" in cancelled["last_error"]

    # Its dependency is still failed: the job could never run, so the retry is refused.
    refused = as_user.post(f"/v1/jobs/{child['id']}/retry")
    assert refused.status == 409
    assert refused.error_code == "dependency_failed"
    assert refused.body["error"]["details"] == {
        "dependencies": [{"id": dep["id"], "status": "failed"}]
    }
    assert dep["id"] in refused.body["error"]["message"]
    assert as_user.get(f"/v1/jobs/{child['id']}").body["status"] == "cancelled"

    # Retried after its dependency, it waits for it, then runs.
    assert as_user.post(f"/v1/jobs/{dep['id']}/retry").body["status"] == "queued"
    waiting = as_user.post(f"/v1/jobs/{child['id']}/retry")
    assert waiting.status == 200
    assert waiting.body["status"] == "waiting"
    assert waiting.body["attempts"] == 0
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []  # nothing runs it yet
    assert sweep().cancelled_waiting == 0
    end_render("complete")
    released = as_user.get(f"/v1/jobs/{child['id']}").body
    assert released["status"] == "queued"
    [message] = queue_messages(sqs, job_queue.queue_url("normal"))
    assert json.loads(message["Body"])["job_id"] == child["id"]
    events = as_user.get(f"/v1/jobs/{child['id']}/events").body["items"]
    assert [e["to_status"] for e in events] == ["waiting", "cancelled", "waiting", "queued"]


def test_a_job_whose_unfinished_dependency_is_deleted_is_cancelled_not_run(
    as_user, services, db, job_queue
) -> None:
    """Deleting a dependency before it ran means the job's input will never exist: the job
    is cancelled, as for a failed one. The sweep once released it instead (every dependency
    still there had succeeded, and a missing one was not looked for), so it ran."""
    store = JobStore(db)
    dep = as_user.post("/v1/jobs", {"type": "render"}).body
    waiting = as_user.post("/v1/jobs", {"type": "noop", "depends_on": [dep["id"]]}).body
    assert as_user.delete(f"/v1/jobs/{dep['id']}").status == 204

    report = Sweeper(store, job_queue, services.registry, SweepLimits()).run()[0]
    assert (report.released_waiting, report.cancelled_waiting) == (0, 1)
    cancelled = as_user.get(f"/v1/jobs/{waiting['id']}").body
    assert cancelled["status"] == "cancelled"
    assert cancelled["last_error"] == "a dependency failed, was cancelled or was deleted"
    assert cancelled["started_at"] is None


def test_a_dependency_named_twice_is_waited_for_not_taken_for_deleted(
    as_user, as_worker, services, db, job_queue
) -> None:
    """`depends_on` naming one job twice (a client building the list from two sources) is
    the same dependency: the job waits while it runs and is released when it succeeds. The
    sweep once compared the list's length with the jobs found and cancelled it as though a
    dependency had been deleted."""
    store = JobStore(db)

    def sweep() -> Any:
        return Sweeper(store, job_queue, services.registry, SweepLimits()).run()[0]

    dep = as_user.post("/v1/jobs", {"type": "render"}).body
    waiting = as_user.post("/v1/jobs", {"type": "noop", "depends_on": [dep["id"], dep["id"]]}).body
    assert waiting["status"] == "waiting"
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    assert sweep().cancelled_waiting == 0
    assert as_user.get(f"/v1/jobs/{waiting['id']}").body["status"] == "waiting"

    complete = {"lease_token": claimed["lease_token"], "result": {"ok": True}}
    assert as_worker.post(f"/v1/jobs/{dep['id']}/complete", complete).status == 200
    sweep()
    released = as_user.get(f"/v1/jobs/{waiting['id']}").body
    assert released["status"] == "queued"
    assert released["last_error"] is None


LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def test_a_page_of_jobs_with_large_results_fits_in_one_lambda_response(as_user, db) -> None:
    # Results as large as an external worker may report (its /complete body may be 1 MiB),
    # of characters JSON escapes: one page of 50 would be ~24 MB once in Lambda's envelope,
    # and API Gateway would answer 5xx for that page at every request.
    created = {as_user.post("/v1/jobs", {"type": "noop"}).body["id"] for _ in range(24)}
    db.execute("UPDATE jobs SET result = jsonb_build_object('quotes', repeat('\"', 250000))")
    seen: list[str] = []
    query = "/v1/jobs?limit=50"
    while True:
        page = as_user.get(query)
        assert page.status == 200
        assert page.envelope_bytes < LAMBDA_RESPONSE_LIMIT
        seen.extend(job["id"] for job in page.body["items"])
        if page.body["next_cursor"] is None:
            break
        assert page.body["items"]
        query = f"/v1/jobs?limit=50&cursor={page.body['next_cursor']}"
    assert sorted(seen) == sorted(created)


def test_job_types_list_schemas_and_defaults(as_user) -> None:
    types = {t["name"]: t for t in as_user.get("/v1/job-types").body}
    assert {"noop", "sleep", "fail", "http.request", "render"} <= set(types)
    assert types["sleep"]["payload_schema"]["required"] == ["seconds"]
    assert types["render"]["external"] is True
    assert types["noop"]["defaults"]["max_attempts"] == 1


def test_an_external_job_cancelled_while_running_ends_cancelled_when_its_worker_fails_it(
    as_user, as_worker
) -> None:
    job = as_user.post("/v1/jobs", {"type": "render", "max_attempts": 3}).body
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    token = claimed["lease_token"]
    assert as_user.post(f"/v1/jobs/{job['id']}/cancel").body["status"] == "running"
    beat = as_worker.post(f"/v1/jobs/{job['id']}/heartbeat", {"lease_token": token})
    assert beat.body["cancel_requested"] is True
    # The worker stops as asked and says so the only way it can: a (retryable) failure.
    failed = as_worker.post(
        f"/v1/jobs/{job['id']}/fail", {"lease_token": token, "error": "stopped on request"}
    )
    assert (failed.status, failed.body["status"]) == (200, "cancelled")
    assert as_user.get(f"/v1/jobs/{job['id']}").body["status"] == "cancelled"
    assert as_worker.post("/v1/workers/claim", {"types": ["render"]}).body == []


def test_a_claim_for_no_types_is_refused_not_a_claim_for_every_type(as_user, as_worker) -> None:
    job = as_user.post("/v1/jobs", {"type": "render"}).body
    refused = as_worker.post("/v1/workers/claim", {"types": []})
    assert (refused.status, refused.error_code) == (400, "invalid_input")
    assert refused.body["error"]["details"][0]["loc"] == ["body", "types"]
    assert as_user.get(f"/v1/jobs/{job['id']}").body["status"] == "queued"


def test_a_claim_naming_a_type_no_worker_can_claim_is_refused_naming_it(as_user, as_worker) -> None:
    """A worker configured with a typo, or with a code type, learns why it gets no work
    instead of polling for ever on an empty answer."""
    job = as_user.post("/v1/jobs", {"type": "render"}).body
    as_user.post("/v1/jobs", {"type": "noop"})
    refused = as_worker.post("/v1/workers/claim", {"types": ["render", "rendr", "noop"]})
    assert (refused.status, refused.error_code) == (400, "invalid_input")
    message = refused.body["error"]["message"]
    assert "'rendr'" in message
    assert "'noop'" in message
    assert "'render'" not in message
    details = {tuple(d["loc"]): d["type"] for d in refused.body["error"]["details"]}
    assert details == {
        ("body", "types", "1"): "unknown_job_type",
        ("body", "types", "2"): "not_external",
    }
    # Nothing was claimed: the external job is still there for a worker that asks rightly.
    assert as_user.get(f"/v1/jobs/{job['id']}").body["status"] == "queued"
    for wrong in (["noop"], ["webhook.deliver"], ["no.such.type"]):
        assert as_worker.post("/v1/workers/claim", {"types": wrong}).status == 400
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    assert claimed["id"] == job["id"]


def test_a_result_over_the_limit_is_refused_by_complete(as_user, as_worker, services) -> None:
    from taskmill.jobs.model import MAX_RESULT_BYTES

    services.settings = services.settings.model_copy(update={"max_body_bytes": 4 * 1024 * 1024})
    job = as_user.post("/v1/jobs", {"type": "render"}).body
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    too_large = {"lease_token": claimed["lease_token"], "result": "x" * MAX_RESULT_BYTES}
    refused = as_worker.post(f"/v1/jobs/{job['id']}/complete", too_large)
    assert (refused.status, refused.error_code) == (413, "payload_too_large")
    assert as_user.get(f"/v1/jobs/{job['id']}").body["status"] == "running"
    fits = {"lease_token": claimed["lease_token"], "result": "x" * (MAX_RESULT_BYTES - 2)}
    assert as_worker.post(f"/v1/jobs/{job['id']}/complete", fits).status == 200


def test_external_worker_flow(as_user, as_worker) -> None:
    job = as_user.post("/v1/jobs", {"type": "render", "payload": {"frame": 1}}).body
    assert as_user.post("/v1/workers/claim", {"limit": 1}).status == 403
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"], "limit": 5}).body
    assert claimed["id"] == job["id"]
    token = claimed["lease_token"]
    assert as_worker.post("/v1/workers/claim", {}).body == []
    beat = as_worker.post(f"/v1/jobs/{job['id']}/heartbeat", {"lease_token": token})
    assert beat.status == 200
    assert beat.body["cancel_requested"] is False
    progress = as_worker.post(
        f"/v1/jobs/{job['id']}/progress", {"lease_token": token, "percent": 40, "message": "frames"}
    )
    assert progress.body["progress"] == 40
    wrong = as_worker.post(
        f"/v1/jobs/{job['id']}/complete", {"lease_token": "00000000-0000-0000-0000-000000000000"}
    )
    assert wrong.status == 409
    done = as_worker.post(
        f"/v1/jobs/{job['id']}/complete", {"lease_token": token, "result": {"ok": 1}}
    )
    assert done.body["status"] == "succeeded"
    assert as_user.get(f"/v1/jobs/{job['id']}").body["result"] == {"ok": 1}


def test_external_worker_failure_is_retried_then_final(as_user, as_worker) -> None:
    job = as_user.post(
        "/v1/jobs", {"type": "render", "max_attempts": 2, "backoff_base_seconds": 0}
    ).body
    [first] = as_worker.post("/v1/workers/claim", {}).body
    failed_once = as_worker.post(
        f"/v1/jobs/{job['id']}/fail", {"lease_token": first["lease_token"], "error": "gpu lost"}
    )
    assert failed_once.body["status"] == "queued"
    [second] = as_worker.post("/v1/workers/claim", {}).body
    final = as_worker.post(
        f"/v1/jobs/{job['id']}/fail", {"lease_token": second["lease_token"], "error": "gpu lost"}
    )
    assert final.body["status"] == "failed"
    assert final.body["last_error"] == "gpu lost"


def test_a_failure_report_that_changes_nothing_is_not_logged_as_a_failed_attempt(
    as_user, as_worker, caplog
) -> None:
    """A late `/fail` (the job already succeeded, or its lease was recovered) is refused with
    409 and changes nothing: the operator's log must not show a failed attempt and a retry
    that never happened."""
    job = as_user.post("/v1/jobs", {"type": "render", "max_attempts": 3}).body
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    lease = claimed["lease_token"]
    assert as_worker.post(f"/v1/jobs/{job['id']}/complete", {"lease_token": lease}).status == 200
    with caplog.at_level(logging.INFO):
        late = as_worker.post(f"/v1/jobs/{job['id']}/fail", {"lease_token": lease, "error": "gpu"})
    assert late.status == 409
    assert [r for r in caplog.records if r.getMessage() == "job attempt failed"] == []
    [ignored] = [r for r in caplog.records if "failure report ignored" in r.getMessage()]
    assert ignored.job_id == job["id"]
    assert as_user.get(f"/v1/jobs/{job['id']}").body["status"] == "succeeded"
    # A failure that is recorded is logged as one, with the state it left the job in.
    second = as_user.post("/v1/jobs", {"type": "render", "max_attempts": 3}).body
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    caplog.clear()
    with caplog.at_level(logging.INFO):
        failed = as_worker.post(
            f"/v1/jobs/{second['id']}/fail", {"lease_token": claimed["lease_token"], "error": "gpu"}
        )
    assert failed.status == 200
    [line] = [r for r in caplog.records if r.getMessage() == "job attempt failed"]
    assert (line.job_id, line.status) == (second["id"], "queued")


def test_worker_routes_refuse_lambda_jobs(as_user, as_worker, db) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop"}).body
    claimed = JobStore(db).claim(job["id"])
    assert claimed is not None
    r = as_worker.post(f"/v1/jobs/{job['id']}/complete", {"lease_token": str(claimed.lease_token)})
    assert r.status == 409


def test_operations_routes(as_admin, as_user) -> None:
    as_user.post("/v1/jobs", {"type": "noop", "priority": "low"})
    queues = as_admin.get("/v1/queues")
    assert queues.status == 200, queues.body
    low = next(q for q in queues.body["items"] if q["priority"] == "low")
    assert low["visible"] == 1
    assert low["dlq_depth"] == 0
    assert low["oldest_age_seconds"] is not None
    stats = as_admin.get("/v1/stats")
    assert stats.body["by_status"] == {"queued": 1}
    minutes = stats.body["throughput_last_hour"]
    assert len(minutes) == 60
    assert sum(m["succeeded"] + m["failed"] for m in minutes) == 0
    assert as_user.get("/v1/queues").status == 403
    assert as_user.get("/v1/stats").status == 403
    assert as_user.get("/v1/audit").status == 403


def test_stats_count_finished_jobs_in_the_minute_they_finished(
    as_user, as_worker, as_admin
) -> None:
    for outcome in ("complete", "fail"):
        job = as_user.post("/v1/jobs", {"type": "render", "payload": {"frame": 1}}).body
        [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
        body = {"lease_token": claimed["lease_token"]}
        if outcome == "fail":
            body |= {"error": "boom", "retryable": False}
        assert as_worker.post(f"/v1/jobs/{job['id']}/{outcome}", body).status == 200
    minutes = as_admin.get("/v1/stats").body["throughput_last_hour"]
    # Both finished a moment ago: in the current minute, or the one before if it just turned.
    recent = minutes[-2:]
    assert sum(m["succeeded"] for m in recent) == 1
    assert sum(m["failed"] for m in recent) == 1
    assert sum(m["succeeded"] + m["failed"] for m in minutes[:-2]) == 0
    assert minutes == sorted(minutes, key=lambda m: m["minute"])


def test_a_dashboard_polling_stats_shares_figures_up_to_the_age_it_accepts(
    as_user, as_admin
) -> None:
    as_user.post("/v1/jobs", {"type": "noop"})
    polled = as_admin.get("/v1/stats?window_hours=1&max_age_seconds=5")
    assert polled.status == 200, polled.body
    assert polled.body["by_status"] == {"queued": 1}
    as_user.post("/v1/jobs", {"type": "noop"})
    again = as_admin.get("/v1/stats?window_hours=1&max_age_seconds=300")
    assert again.body == polled.body  # computed_at tells how old
    assert as_admin.get("/v1/stats?window_hours=1").body["by_status"] == {"queued": 2}
    for bad in ("-1", "3601", "1.5", "soon"):
        refused = as_admin.get(f"/v1/stats?max_age_seconds={bad}")
        assert (refused.status, refused.error_code) == (400, "invalid_input"), bad


def test_health_is_public_and_reports_dependencies(client, services) -> None:
    ok = client.get("/v1/health", token=None)
    assert ok.status == 200
    assert ok.body == {"status": "ok", "database": True, "queues": True}

    class Down:
        def get_queue_attributes(self, **_: Any) -> Any:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="http://sqs")

    services.queue._client = Down()
    degraded = client.get("/v1/health", token=None)
    assert degraded.status == 503
    assert degraded.body["queues"] is False


def test_unexpected_errors_hide_internals_and_return_a_correlation_id(
    as_user, services, caplog
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internal detail")

    services.registry.get = broken
    r = as_user.post("/v1/jobs", {"type": "noop"})
    assert r.status == 500
    assert "secret internal detail" not in json.dumps(r.body)
    assert r.body["error"]["correlation_id"] == r.headers["X-Correlation-Id"]
    assert "secret internal detail" in caplog.text


def test_unknown_route_is_404_in_the_envelope(as_user) -> None:
    r = as_user.get("/v1/nothing-here")
    assert r.status == 404
    assert r.error_code == "not_found"


def test_openapi_document_is_valid_and_lists_every_route(client, app) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/v1/openapi.json", token=None)
    assert doc.status == 200
    validate(doc.body)
    documented = {
        (method.upper(), path) for path, item in doc.body["paths"].items() for method in item
    }
    served = set()
    for route in app._static_routes + app._dynamic_routes:
        for method in route.method.split("|") if isinstance(route.method, str) else route.method:
            served.add((method, route.path))
    expected = {
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/auth/refresh"),
        ("POST", "/v1/auth/logout"),
        ("GET", "/v1/auth/me"),
        ("GET", "/v1/users"),
        ("POST", "/v1/users"),
        ("GET", "/v1/users/{user_id}"),
        ("PATCH", "/v1/users/{user_id}"),
        ("DELETE", "/v1/users/{user_id}"),
        ("PUT", "/v1/users/{user_id}/role"),
        ("POST", "/v1/jobs"),
        ("POST", "/v1/jobs/batch"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/{job_id}"),
        ("PATCH", "/v1/jobs/{job_id}"),
        ("GET", "/v1/jobs/{job_id}/status"),
        ("POST", "/v1/jobs/{job_id}/cancel"),
        ("POST", "/v1/jobs/{job_id}/retry"),
        ("DELETE", "/v1/jobs/{job_id}"),
        ("GET", "/v1/job-types"),
        ("POST", "/v1/workers/claim"),
        ("POST", "/v1/jobs/{job_id}/heartbeat"),
        ("POST", "/v1/jobs/{job_id}/progress"),
        ("POST", "/v1/jobs/{job_id}/complete"),
        ("POST", "/v1/jobs/{job_id}/fail"),
        ("GET", "/v1/queues"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/health"),
    }
    assert expected <= documented
    assert served  # the resolver really has routes


def test_swagger_ui_is_served(client) -> None:
    r = client.get("/v1/docs", token=None)
    assert r.status == 200
    assert "swagger" in str(r.body).lower()


def test_the_api_cold_start_builds_no_openapi_document_models() -> None:
    """Powertools' OpenAPI models (~40 pydantic models) are for /v1/docs and openapi.json,
    imported when asked for, not by every cold start of the API function."""
    script = (
        "import sys, functions.api.handler as h\n"
        "h.container_app()\n"
        "print('aws_lambda_powertools.event_handler.openapi.models' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",
        "TASKMILL_JWT_SECRET": "k" * 48,
        **{
            f"TASKMILL_{kind}_URL_{p}": f"http://q/{kind}-{p}"
            for kind in ("QUEUE", "DLQ")
            for p in ("HIGH", "NORMAL", "LOW")
        },
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_external_completion_sends_its_webhook_at_once(as_user, as_worker, sqs, job_queue) -> None:
    job = as_user.post(
        "/v1/jobs", {"type": "render", "webhook_url": "https://example.com/hook"}
    ).body
    [claimed] = as_worker.post("/v1/workers/claim", {}).body
    as_worker.post(f"/v1/jobs/{job['id']}/complete", {"lease_token": claimed["lease_token"]})
    [message] = queue_messages(sqs, job_queue.queue_url("normal"))
    assert message["MessageAttributes"]["job_type"]["StringValue"] == "webhook.deliver"


def test_a_create_late_in_its_time_leaves_the_send_to_the_sweep(
    as_user, job_queue, db, sqs
) -> None:
    """An invocation with little time left (a slow database before it) answers 201 in time
    instead of starting an SQS call that could outlast API Gateway's 29 s."""
    late = as_user.post("/v1/jobs", {"type": "noop"}, remaining_seconds=15)
    assert late.status == 201
    assert JobStore(db).get(late.body["id"]).send_pending
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []
    in_time = as_user.post("/v1/jobs", {"type": "noop"})
    assert not JobStore(db).get(in_time.body["id"]).send_pending
    [message] = queue_messages(sqs, job_queue.queue_url("normal"))
    assert json.loads(message["Body"])["job_id"] == in_time.body["id"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_payload_number_json_cannot_store_is_refused(as_user, services, number: str) -> None:
    # Python's parser reads these, pydantic takes them for a float and writes them back as
    # null: the job was created (201) with {"value": null}, which its type's model refuses
    # when it runs, so every attempt failed.
    class Measure(BaseModel):
        value: float

    services.registry.register("measure", payload=Measure)(lambda context, payload: None)
    response = as_user.post(
        "/v1/jobs", raw_body=f'{{"type": "measure", "payload": {{"value": {number}}}}}'
    )
    assert response.status == 400, response.body
    error = response.body["error"]
    assert error["code"] == "invalid_input"
    assert "NaN" in error["message"]
    assert [d["loc"] for d in error["details"]] == [["value"]]
    assert as_user.get("/v1/jobs").body["items"] == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_number_json_cannot_store_in_an_external_types_payload_is_refused(
    as_user, number: str
) -> None:
    # A type declared by configuration (`render`: {"type": "object"}) is validated by its JSON
    # schema, which takes NaN for a number; the job was then created (201) with the value
    # silently written as null, so its worker got {"value": null} instead of a 400.
    response = as_user.post(
        "/v1/jobs",
        raw_body=f'{{"type": "render", "payload": {{"frames": [1, {{"value": {number}}}]}}}}',
    )
    assert response.status == 400, response.body
    error = response.body["error"]
    assert error["code"] == "invalid_input"
    assert "NaN" in error["message"]
    assert [d["loc"] for d in error["details"]] == [["frames", 1, "value"]]
    assert as_user.get("/v1/jobs").body["items"] == []


def test_a_jobs_history_names_the_accounts_that_acted_to_those_allowed_to_know_them(
    as_user, as_admin, db
) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body["id"]
    assert as_admin.post(f"/v1/jobs/{job}/cancel").status == 200
    admin_id = as_admin.get("/v1/auth/me").body["id"]
    user_id = as_user.get("/v1/auth/me").body["id"]

    def by(caller: Any) -> list[tuple[str, str, str | None]]:
        # A page per event: what each shows is the same on every page.
        events = every_event(caller, job, limit=1)
        return [(e["to_status"], e["actor"], e["actor_email"]) for e in events]

    # An admin sees every account's e-mail; the owner sees their own, not the admin's.
    assert by(as_admin) == [
        ("scheduled", f"user:{user_id}", "ann@example.com"),
        ("cancelled", f"admin:{admin_id}", "root@example.com"),
    ]
    assert by(as_user) == [
        ("scheduled", f"user:{user_id}", "ann@example.com"),
        ("cancelled", f"admin:{admin_id}", None),
    ]
    # The platform's own parts name no account, and a deleted account has no e-mail left.
    db.execute(
        "INSERT INTO job_events (job_id, to_status, actor) VALUES (%s, 'queued', 'worker'), "
        "(%s, 'queued', 'schedule:' || gen_random_uuid())",
        (job, job),
    )
    db.execute("DELETE FROM users WHERE id = %s", (admin_id,))
    assert [email for _, _, email in by(as_user)] == ["ann@example.com", None, None, None]


def test_the_audit_log_gives_each_actors_current_email(as_user, as_admin, db) -> None:
    user_id = as_user.get("/v1/auth/me").body["id"]
    admin_id = as_admin.get("/v1/auth/me").body["id"]
    assert as_admin.put(f"/v1/users/{user_id}/role", {"role": "worker"}).status == 200
    renamed = {"email": "boss@example.com", "current_password": PASSWORD}
    assert as_admin.patch(f"/v1/users/{admin_id}", renamed).status == 200
    entry = as_admin.get("/v1/audit?action=user.role_changed").body["items"][0]
    assert (entry["actor_id"], entry["actor_email"]) == (admin_id, "boss@example.com")
    # A failed login by an unknown e-mail has no actor, so no e-mail either.
    db.execute("INSERT INTO audit_log (actor_id, action) VALUES (NULL, 'auth.login_failed')")
    entry = as_admin.get("/v1/audit?action=auth.login_failed").body["items"][0]
    assert (entry["actor_id"], entry["actor_email"]) == (None, None)


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/batch"])
def test_run_at_and_delay_seconds_together_are_refused_not_one_dropped(as_user, db, path) -> None:
    job = {"type": "noop", "run_at": "2030-01-01T00:00:00Z", "delay_seconds": 60}
    answer = as_user.post(path, job if path == "/v1/jobs" else {"jobs": [{"type": "noop"}, job]})
    assert answer.status == 400, answer.body
    [detail] = answer.body["error"]["details"]
    assert detail["msg"] == "give run_at or delay_seconds, not both"
    assert detail["loc"] == (["body"] if path == "/v1/jobs" else ["body", "jobs", "1"])
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == 0


def test_a_time_filter_without_a_zone_is_a_400_not_the_databases_zone(as_user, db) -> None:
    """A zone-less `created_after` was read in the database server's TimeZone: UTC on RDS, the
    machine's zone under `make run` (New York: five hours off), so one query listed different
    jobs on two deployments. Times are ISO 8601 with a zone (SPEC §3)."""
    job = as_user.post("/v1/jobs", {"type": "noop"}).body
    db.execute("UPDATE jobs SET created_at = '2020-06-01 12:00:00+00' WHERE id = %s", (job["id"],))
    for name in ("created_after", "created_before"):
        naive = as_user.get(f"/v1/jobs?{name}=2020-06-01T11:00:00")
        assert naive.status == 400
        assert naive.error_code == "invalid_input"
        assert naive.body["error"]["details"][0]["loc"] == ["query", name]
    assert len(as_user.get("/v1/jobs?created_after=2020-06-01T11:00:00Z").body["items"]) == 1
    assert len(as_user.get("/v1/jobs?created_after=2020-06-01T13:00:00%2B02:00").body["items"]) == 1
    assert as_user.get("/v1/jobs?created_before=2020-06-01T12:00:00Z").body["items"] == []


@pytest.mark.parametrize("run_at", [3600, 1764000000, 1.5, "3600", "1764000000", " 86400 "])
def test_a_run_at_that_is_a_number_is_a_400_not_a_moment_in_1970(as_user, db, run_at) -> None:
    """`run_at: 3600` (meant as "in an hour", which is `delay_seconds`) was read as seconds
    since 1970 and the job ran at once, answering 201; `"1764000000"` as a Unix time too.
    Times are ISO 8601 with a zone (SPEC §3), as the OpenAPI document says (`date-time`)."""
    job = as_user.post("/v1/jobs", {"type": "noop", "run_at": "2030-01-01T00:00:00Z"}).body
    for method, path, body, loc in (
        ("POST", "/v1/jobs", {"type": "noop", "run_at": run_at}, ["body", "run_at"]),
        (
            "POST",
            "/v1/jobs/batch",
            {"jobs": [{"type": "noop", "run_at": run_at}]},
            ["body", "jobs", "0", "run_at"],
        ),
        ("PATCH", f"/v1/jobs/{job['id']}", {"run_at": run_at}, ["body", "run_at"]),
    ):
        answer = as_user.request(method, path, body)
        assert answer.status == 400, (path, answer.body)
        [detail] = answer.body["error"]["details"]
        assert detail["loc"] == loc
        assert "ISO 8601" in detail["msg"]
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == 1
    assert as_user.get(f"/v1/jobs/{job['id']}").body["run_at"] == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize("value", ["1764000000", "0", "1.5"])
def test_a_time_filter_that_is_a_number_is_a_400(as_user, value) -> None:
    for name in ("created_after", "created_before"):
        answer = as_user.get(f"/v1/jobs?{name}={value}")
        assert answer.status == 400, answer.body
        assert answer.body["error"]["details"][0]["loc"] == ["query", name]


def test_a_patch_that_makes_a_job_scheduled_is_in_its_history(as_user) -> None:
    """A `run_at` moved past SQS's longest delay makes a queued job `scheduled`; its history
    kept no such transition, so once the sweep released it the history read `queued ->
    queued` with nothing saying why it had waited."""
    job = as_user.post("/v1/jobs", {"type": "noop"}).body
    assert job["status"] == "queued"
    assert as_user.patch(f"/v1/jobs/{job['id']}", {"name": "renamed"}).status == 200
    moved = as_user.patch(f"/v1/jobs/{job['id']}", {"run_at": "2030-01-01T00:00:00Z"})
    assert moved.body["status"] == "scheduled"
    # Still scheduled, still before it runs: an edit that changes no status adds nothing.
    assert as_user.patch(f"/v1/jobs/{job['id']}", {"priority": "high"}).status == 200
    events = as_user.get(f"/v1/jobs/{job['id']}/events").body["items"]
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "queued"),
        ("queued", "scheduled"),
    ]
    assert events[-1]["actor"] == f"user:{job['owner_id']}"


def test_a_page_of_audit_entries_fits_in_one_lambda_response(as_admin, db) -> None:
    """An admin.requeue of 1,000 jobs audits their ids: 200 such entries made an 8 MB page,
    above Lambda's 6 MB, which API Gateway would answer 5xx to every time it was asked."""
    from uuid import uuid4

    from taskmill.audit import AuditLog

    log = AuditLog(db)
    me = as_admin.get("/v1/auth/me").body["id"]
    for _ in range(200):
        jobs = [str(uuid4()) for _ in range(1000)]
        log.record("admin.requeue", actor_id=me, detail={"status": "failed", "jobs": jobs})
    seen: list[int] = []
    cursor = ""
    while True:
        page = as_admin.get(f"/v1/audit?limit=200&action=admin.requeue{cursor}")
        assert page.status == 200
        assert page.envelope_bytes < 6_000_000
        seen += [entry["id"] for entry in page.body["items"]]
        if page.body["next_cursor"] is None:
            break
        cursor = f"&cursor={page.body['next_cursor']}"
    assert len(seen) == len(set(seen)) == 200
    assert seen == sorted(seen, reverse=True)


def history_pages(caller: Any, job_id: str, query: str = "") -> list[Any]:
    """Every page of a job's history, following `next_cursor` until it is null."""
    pages = []
    cursor = ""
    while True:
        page = caller.get(f"/v1/jobs/{job_id}/events?{query}{cursor}")
        assert page.status == 200, page.body
        assert set(page.body) == {"items", "next_cursor"}
        pages.append(page)
        if page.body["next_cursor"] is None:
            return pages
        cursor = f"&cursor={page.body['next_cursor']}"


def every_event(caller: Any, job_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    query = f"limit={limit}" if limit else ""
    return [e for page in history_pages(caller, job_id, query) for e in page.body["items"]]


def test_a_history_too_long_for_one_response_is_paged_with_nothing_cut(as_user, db) -> None:
    """A job's history was one bare list. Past ~2 MiB (hundreds of failed attempts with
    4,000-character non-ASCII errors) each error was cut to 300 characters and then the
    oldest events were left out, with nothing saying so. Now its pages each fit one Lambda
    response and together hold every event whole."""
    job = as_user.post("/v1/jobs", {"type": "noop"}).body
    db.execute(
        "INSERT INTO job_events (job_id, to_status, actor, attempt, detail, at) "
        "SELECT %(id)s, CASE WHEN g %% 2 = 0 THEN 'queued' ELSE 'running' END, 'worker', "
        "1 + g %% 25, jsonb_build_object('error', repeat('é', 4000), 'n', g), "
        "now() + make_interval(secs => g) FROM generate_series(1, 800) g",
        {"id": job["id"]},
    )
    pages = history_pages(as_user, job["id"], "limit=200")
    for page in pages:
        assert page.envelope_bytes < 6_000_000
        assert len(json.dumps(page.body)) <= PAGE_BUDGET_BYTES  # as the API writes it: ASCII
    # 200 such events are ~4.8 MB of JSON: pages end early, each with a cursor.
    assert any(len(p.body["items"]) < 200 and p.body["next_cursor"] for p in pages)
    events = [e for page in pages for e in page.body["items"]]
    assert len(events) == 801
    assert [e["detail"].get("n") for e in events] == [None, *range(1, 801)]
    assert all(e["detail"]["error"] == "é" * 4000 for e in events[1:])
    assert [e["from_status"] for e in events] == [None] + [e["to_status"] for e in events[:-1]]


def test_a_history_is_paged_oldest_first_with_from_status_right_on_every_page(as_user, db) -> None:
    """A job retried through many attempts and redriven: its history read a page at a time
    (limit 1 to 200) is the whole history, oldest first, and the first event of a later page
    names the status before it, as if the history had been read in one piece."""
    store = JobStore(db)
    job = as_user.post("/v1/jobs", {"type": "noop", "max_attempts": 3}).body
    job_id = job["id"]
    for _ in range(2):  # two redrives: 3 attempts each, then failed, then queued again
        for attempt in range(3):
            claimed = store.claim(job_id)
            assert claimed is not None
            assert claimed.lease_token is not None
            last = attempt == 2
            store.fail(
                claimed.id,
                claimed.lease_token,
                f"boom {attempt}",
                RetryDecision(not last, 0.0, "again"),
                resend=False,
            )
        assert store.redrive_many([job_id], actor="recovery", resend=False)
    expected = [(e["from_status"], e["to_status"], e["detail"]) for e in store.events(job_id)]
    assert len(expected) == 1 + 2 * (3 * 2 + 1)
    assert expected[-1][:2] == ("failed", "queued")
    for limit in (1, 2, 3, 7, 50, 200):
        events = every_event(as_user, job_id, limit=limit)
        assert [(e["from_status"], e["to_status"], e["detail"]) for e in events] == expected
        pages = history_pages(as_user, job_id, f"limit={limit}")
        assert all(len(p.body["items"]) == limit for p in pages[:-1])
    default = as_user.get(f"/v1/jobs/{job_id}/events").body
    assert (len(default["items"]), default["next_cursor"]) == (len(expected), None)


def test_thousands_of_events_page_at_50_by_default_and_200_at_most(as_admin, db) -> None:
    job = as_admin.post("/v1/jobs", {"type": "noop"}).body
    db.execute(
        "INSERT INTO job_events (job_id, to_status, actor, attempt) "
        "SELECT %(id)s, CASE WHEN g %% 2 = 0 THEN 'queued' ELSE 'running' END, 'worker', g "
        "FROM generate_series(1, 4999) g",
        {"id": job["id"]},
    )
    by_default = history_pages(as_admin, job["id"])
    assert [len(p.body["items"]) for p in by_default] == [50] * 100
    at_most = history_pages(as_admin, job["id"], "limit=200")
    assert [len(p.body["items"]) for p in at_most] == [200] * 25
    events = [e for p in at_most for e in p.body["items"]]
    assert [e["detail"].get("attempt") for e in events] == [None, *range(1, 5000)]
    assert [e["from_status"] for e in events] == [None] + [e["to_status"] for e in events[:-1]]


def test_an_event_added_between_two_reads_is_on_the_next_page_once(as_user) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body["id"]
    assert as_user.post(f"/v1/jobs/{job}/cancel").status == 200
    first = as_user.get(f"/v1/jobs/{job}/events?limit=1").body
    assert [e["to_status"] for e in first["items"]] == ["scheduled"]
    assert as_user.post(f"/v1/jobs/{job}/retry").status == 200  # a transition meanwhile
    second = as_user.get(f"/v1/jobs/{job}/events?limit=1&cursor={first['next_cursor']}").body
    assert [(e["from_status"], e["to_status"]) for e in second["items"]] == [
        ("scheduled", "cancelled")
    ]
    third = as_user.get(f"/v1/jobs/{job}/events?limit=5&cursor={second['next_cursor']}").body
    assert [(e["from_status"], e["to_status"]) for e in third["items"]] == [("cancelled", "queued")]
    assert third["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "201", "10000", "abc", "1.5", ""])
def test_a_history_limit_out_of_range_is_a_400(as_user, limit: str) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop"}).body["id"]
    answer = as_user.get(f"/v1/jobs/{job}/events?limit={limit}")
    assert answer.status == 400, answer.body
    assert answer.error_code == "invalid_input"
    assert answer.body["error"]["details"][0]["loc"] == ["query", "limit"]


def test_a_foreign_tampered_or_garbage_history_cursor_is_a_400(as_user) -> None:
    import base64

    def b64(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    job = as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body["id"]
    as_user.post(f"/v1/jobs/{job}/cancel")
    other = as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body["id"]
    as_user.post(f"/v1/jobs/{other}/cancel")
    mine = as_user.get(f"/v1/jobs/{job}/events?limit=1").body["next_cursor"]
    others = as_user.get(f"/v1/jobs/{other}/events?limit=1").body["next_cursor"]
    jobs_cursor = as_user.get("/v1/jobs?limit=1").body["next_cursor"]
    audit_cursor = "123"  # the audit list's cursors are entry ids
    assert all([mine, others, jobs_cursor])
    position = json.loads(base64.urlsafe_b64decode(mine + "=" * (-len(mine) % 4)))[1]
    refused = [
        others,  # another job's history
        jobs_cursor,  # another list's
        audit_cursor,
        "bogus",
        "%25%25%25",
        "%C3%A9",
        mine[:-3],  # cut
        mine[::-1],
        mine + "x",
        b64([job, -1]),
        b64([job, 2**63]),
        b64([job, True]),
        b64([job, str(position)]),
        b64([job, 1.5]),
        b64([job]),
        b64([job, position, 1]),
        b64({"job": job, "id": position}),
        b64(["not-a-uuid", position]),
        b64(None),
        "x" * 201,  # longer than any cursor
    ]
    for cursor in refused:
        answer = as_user.get(f"/v1/jobs/{job}/events?cursor={cursor}")
        assert answer.status == 400, (cursor, answer.body)
        assert answer.error_code == "invalid_input", (cursor, answer.body)
    # The job's own cursor, and an empty one (the first page, as on every list).
    assert as_user.get(f"/v1/jobs/{job}/events?cursor={mine}").status == 200
    empty = as_user.get(f"/v1/jobs/{job}/events?cursor=")
    assert empty.body == as_user.get(f"/v1/jobs/{job}/events").body


def test_a_history_cursor_tells_nothing_of_other_tenants_activity(as_user, as_other) -> None:
    """A cursor holds a position in the job's own history, not the platform-wide id of an
    event: from two cursors of one's own, a tenant could otherwise count everyone's
    transitions in between."""
    import base64

    def position(cursor: str) -> Any:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))[1]

    def cancelled_job(caller: Any) -> str:
        job = caller.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body["id"]
        assert caller.post(f"/v1/jobs/{job}/cancel").status == 200
        return job

    first = cancelled_job(as_user)
    for _ in range(5):  # another tenant's transitions in between
        cancelled_job(as_other)
    second = cancelled_job(as_user)
    cursors = [
        as_user.get(f"/v1/jobs/{job}/events?limit=1").body["next_cursor"] for job in (first, second)
    ]
    assert [position(c) for c in cursors] == [1, 1]
    assert [
        e["to_status"]
        for e in as_user.get(f"/v1/jobs/{second}/events?cursor={cursors[1]}").body["items"]
    ] == ["cancelled"]


def test_another_users_jobs_history_is_a_404_whatever_the_cursor(as_user, as_other) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body["id"]
    as_user.post(f"/v1/jobs/{job}/cancel")
    cursor = as_user.get(f"/v1/jobs/{job}/events?limit=1").body["next_cursor"]
    for query in ("", "?limit=1", f"?cursor={cursor}", "?cursor=bogus"):
        answer = as_other.get(f"/v1/jobs/{job}/events{query}")
        assert (answer.status, answer.error_code) == (404, "not_found"), query


@pytest.mark.parametrize(
    "path", ["/v1/jobs", "/v1/schedules", "/v1/users", "/v1/audit", "/v1/limits"]
)
def test_an_empty_cursor_is_the_first_page_on_every_list(as_admin, path: str) -> None:
    """`cursor=` (a client that always sends the last `next_cursor`, null as empty) was the
    first page on jobs, schedules and users, and a 400 on audit and limits."""
    as_admin.post("/v1/jobs", {"type": "noop"})
    as_admin.put("/v1/limits/customer:1", {"concurrency": 1})
    first = as_admin.get(path)
    empty = as_admin.get(f"{path}?cursor=")
    assert (empty.status, empty.body["items"]) == (200, first.body["items"])


def test_an_audit_cursor_past_any_entry_is_not_valid(as_admin) -> None:
    r = as_admin.get("/v1/audit?cursor=99999999999999999999")
    assert (r.status, r.body["error"]["message"]) == (400, "cursor is not valid")


def test_a_limits_cursor_that_is_no_key_says_the_cursor_is_not_valid(as_admin) -> None:
    """As on every other list: the message names the cursor, not a limit key the caller
    never sent."""
    r = as_admin.get("/v1/limits?cursor=not%20a%20key")
    assert (r.status, r.body["error"]["message"]) == (400, "cursor is not valid")
