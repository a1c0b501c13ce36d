"""An external worker's journey over real HTTP on `make run`'s stack: a lost answer to its
`/complete` or `/fail` is recovered by sending the same report again, and a job its user
cancelled ends `cancelled` when the worker stops it as the README says, on its last attempt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, RunningStack, start_stack

RENDER = [{"name": "render", "schema": {"type": "object"}, "max_attempts": 1}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("e2e-external") / "data"
    running = start_stack(data_dir, {"TASKMILL_EXTERNAL_TYPES": json.dumps(RENDER)})
    yield running
    if running.process.poll() is None:
        running.stop()


def _accounts(stack: RunningStack) -> tuple[Http, Http]:
    admin, user, worker = Http(stack.url), Http(stack.url), Http(stack.url)
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    for client, role in ((user, "user"), (worker, "worker")):
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        status, body = admin.call(
            "POST", "/v1/users", {"email": email, "password": "a long password", "role": role}
        )
        assert status == 201, body
        client.login(email, "a long password")
    return user, worker


def _claim(user: Http, worker: Http) -> tuple[str, str]:
    status, job = user.call("POST", "/v1/jobs", {"type": "render"})
    assert status == 201, job
    status, claimed = worker.call("POST", "/v1/workers/claim", {"types": ["render"]})
    assert status == 200, claimed
    assert [c["id"] for c in claimed] == [job["id"]]
    return job["id"], claimed[0]["lease_token"]


def test_a_worker_sends_its_lost_reports_again(stack: RunningStack) -> None:
    user, worker = _accounts(stack)
    job_id, token = _claim(user, worker)
    report = {"lease_token": token, "result": {"url": "s3://out/1.mp4"}}
    first = worker.call("POST", f"/v1/jobs/{job_id}/complete", report)
    assert (first[0], first[1]["status"]) == (200, "succeeded")
    assert worker.call("POST", f"/v1/jobs/{job_id}/complete", report) == first
    other = worker.call("POST", f"/v1/jobs/{job_id}/complete", {**report, "result": None})
    assert other[0] == 409
    assert worker.call("POST", f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token})[0] == 409
    status, events = user.call("GET", f"/v1/jobs/{job_id}/events")
    assert status == 200, events
    assert [e["to_status"] for e in events["items"]] == ["queued", "running", "succeeded"]

    job_id, token = _claim(user, worker)
    failure = {"lease_token": token, "error": "corrupt input", "retryable": False}
    first = worker.call("POST", f"/v1/jobs/{job_id}/fail", failure)
    assert (first[0], first[1]["status"]) == (200, "failed")
    assert worker.call("POST", f"/v1/jobs/{job_id}/fail", failure) == first


def test_a_job_cancelled_on_its_last_attempt_ends_cancelled(stack: RunningStack) -> None:
    user, worker = _accounts(stack)
    job_id, token = _claim(user, worker)
    assert user.call("POST", f"/v1/jobs/{job_id}/cancel")[0] == 200
    status, beat = worker.call("POST", f"/v1/jobs/{job_id}/heartbeat", {"lease_token": token})
    assert (status, beat["cancel_requested"]) == (200, True)
    stop = {"lease_token": token, "error": "stopped: cancel requested"}
    status, stopped = worker.call("POST", f"/v1/jobs/{job_id}/fail", stop)
    assert (status, stopped["status"]) == (200, "cancelled")
    assert user.call("GET", f"/v1/jobs/{job_id}")[1]["status"] == "cancelled"
