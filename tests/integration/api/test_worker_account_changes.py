"""A worker account that can no longer report (disabled, deleted, made a plain user) gives
back the external jobs it holds at once: they do not stay `running` until their timeouts run
out, which for work run outside Lambda can be hours."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest
from taskmill.db import Database
from taskmill.users.store import UserStore

from tests.integration.api.conftest import PASSWORD, make_account
from tests.support.apigw import ApiClient
from tests.support.locks import waits_for_a_lock


def _claim(as_user: ApiClient, worker: ApiClient) -> tuple[str, str]:
    job = as_user.post("/v1/jobs", {"type": "render", "timeout_seconds": 3600}).body
    [claimed] = worker.post("/v1/workers/claim", {"types": ["render"]}).body
    assert claimed["id"] == job["id"]
    return job["id"], claimed["lease_token"]


@pytest.fixture
def second_worker(app: Any, services: Any, db: Any) -> ApiClient:
    make_account(db, "robot2@example.com", role="worker")
    client = ApiClient(app, services)
    client.login("robot2@example.com", PASSWORD)
    return client


def _end_account(how: str, as_admin: ApiClient, account_id: str) -> None:
    if how == "disabled":
        answer = as_admin.patch(f"/v1/users/{account_id}", {"disabled": True})
        assert answer.status == 200
    elif how == "deleted":
        assert as_admin.delete(f"/v1/users/{account_id}").status == 204
    else:
        answer = as_admin.put(f"/v1/users/{account_id}/role", {"role": "user"})
        assert answer.status == 200


@pytest.mark.parametrize("how", ["disabled", "deleted", "made a user"])
def test_the_jobs_an_ended_worker_account_holds_are_claimable_again_at_once(
    how: str, as_user, as_worker, as_admin, second_worker
) -> None:
    job_id, token = _claim(as_user, as_worker)
    worker_id = as_worker.get("/v1/auth/me").body["id"]
    _end_account(how, as_admin, worker_id)

    job = as_user.get(f"/v1/jobs/{job_id}").body
    assert (job["status"], job["attempts"]) == ("queued", 0)  # the attempt is not counted
    released = as_user.get(f"/v1/jobs/{job_id}/events").body["items"][-1]
    assert released["to_status"] == "queued"
    assert "the account that claimed it" in str(released["detail"])
    # Another worker takes it now, not an hour from now; the old lease reports nothing.
    [again] = second_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    assert again["id"] == job_id
    old = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
    assert old.status in (401, 403, 409)
    done = second_worker.post(
        f"/v1/jobs/{job_id}/complete", {"lease_token": again["lease_token"], "result": 2}
    )
    assert (done.status, done.body["result"]) == (200, 2)


def test_another_workers_jobs_are_left_alone(as_user, as_worker, as_admin, second_worker) -> None:
    mine, _ = _claim(as_user, as_worker)
    theirs, their_token = _claim(as_user, second_worker)
    _end_account("disabled", as_admin, as_worker.get("/v1/auth/me").body["id"])

    assert as_user.get(f"/v1/jobs/{mine}").body["status"] == "queued"
    assert as_user.get(f"/v1/jobs/{theirs}").body["status"] == "running"
    beat = second_worker.post(f"/v1/jobs/{theirs}/heartbeat", {"lease_token": their_token})
    assert beat.status == 200


def test_a_job_a_worker_finished_stays_finished(as_user, as_worker, as_admin) -> None:
    job_id, token = _claim(as_user, as_worker)
    done = as_worker.post(f"/v1/jobs/{job_id}/complete", {"lease_token": token, "result": 1})
    assert done.status == 200
    _end_account("disabled", as_admin, as_worker.get("/v1/auth/me").body["id"])
    assert as_user.get(f"/v1/jobs/{job_id}").body["status"] == "succeeded"


def test_a_worker_made_an_admin_keeps_its_jobs(as_user, as_worker, as_admin) -> None:
    """An admin may claim and report too: its leases still stand."""
    job_id, token = _claim(as_user, as_worker)
    worker_id = as_worker.get("/v1/auth/me").body["id"]
    assert as_admin.put(f"/v1/users/{worker_id}/role", {"role": "admin"}).status == 200
    assert as_user.get(f"/v1/jobs/{job_id}").body["status"] == "running"
    beat = as_worker.post(f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token})
    assert beat.status == 200


def test_a_claim_under_way_when_its_account_is_disabled_takes_nothing(
    as_user, as_worker, db, database_url
) -> None:
    """The worker's claim has passed the account check when an admin's disable of the
    account is written but not yet committed: the claim waits for it and answers as a
    disabled account's request does (403), and the job stays queued. Without the wait the
    claim would hand the job to an account that can no longer report on it."""
    job = as_user.post("/v1/jobs", {"type": "render"}).body
    worker_id = UUID(as_worker.get("/v1/auth/me").body["id"])
    admin, observer = Database(database_url), Database(database_url)
    pid = db.connection().info.backend_pid
    answers: list[Any] = []
    claiming = threading.Thread(
        target=lambda: answers.append(as_worker.post("/v1/workers/claim", {"types": ["render"]}))
    )
    try:
        with admin.transaction():
            UserStore(admin).update(worker_id, disabled=True)
            claiming.start()
            waited = waits_for_a_lock(observer, pid, claiming)
        claiming.join()
    finally:
        admin.close()
        observer.close()
    assert waited, "the claim did not wait for the disable"
    [answer] = answers
    assert (answer.status, answer.body["error"]["code"]) == (403, "forbidden")
    after = as_user.get(f"/v1/jobs/{job['id']}").body
    assert (after["status"], after["attempts"]) == ("queued", 0)
