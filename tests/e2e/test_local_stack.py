"""A user's and an operator's journeys through `make run`'s stack over real HTTP."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from taskmill_local.pollers import PAUSES_TTL_SECONDS
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, RunningStack, start_stack


def register_and_login(http: Http) -> str:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    status, body = http.call(
        "POST", "/v1/auth/register", {"email": email, "password": "a long password"}
    )
    assert status == 201, body
    http.login(email, "a long password")
    return email


def test_a_user_creates_a_job_and_polls_until_done(http: Http) -> None:
    register_and_login(http)
    status, job = http.call("POST", "/v1/jobs", {"type": "sleep", "payload": {"seconds": 0.2}})
    assert status == 201, job
    done = http.wait_for(job["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded"
    assert done["result"] == {"slept": 0.2}
    status, polled = http.call("GET", f"/v1/jobs/{job['id']}/status")
    assert (status, polled["progress"]) == (200, 100)


def test_every_priority_runs(http: Http) -> None:
    register_and_login(http)
    ids = [
        http.call("POST", "/v1/jobs", {"type": "noop", "priority": p})[1]["id"]
        for p in ("high", "normal", "low")
    ]
    assert {http.wait_for(i, {"succeeded"})["status"] for i in ids} == {"succeeded"}


def test_scheduled_job_runs_after_its_delay(http: Http) -> None:
    register_and_login(http)
    status, job = http.call("POST", "/v1/jobs", {"type": "noop", "delay_seconds": 2})
    assert status == 201
    status, early = http.call("GET", f"/v1/jobs/{job['id']}")
    assert early["status"] == "queued"
    assert http.wait_for(job["id"], {"succeeded"})["status"] == "succeeded"


def test_running_job_is_cancelled(http: Http) -> None:
    register_and_login(http)
    job = http.call("POST", "/v1/jobs", {"type": "sleep", "payload": {"seconds": 30}})[1]
    http.wait_for(job["id"], {"running"})
    status, asked = http.call("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 200, asked
    assert http.wait_for(job["id"], {"cancelled"}, timeout=10)["status"] == "cancelled"


def test_retries_end_in_the_dlq_and_an_admin_redrives(http: Http, stack: RunningStack) -> None:
    register_and_login(http)
    job = http.call(
        "POST", "/v1/jobs", {"type": "fail", "max_attempts": 2, "backoff_base_seconds": 0}
    )[1]
    failed = http.wait_for(job["id"], {"failed"})
    assert failed["attempts"] == 2
    admin = Http(stack.url)
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, dlq = admin.call("GET", "/v1/dlq/normal")
    assert status == 200
    assert job["id"] in [item["job_id"] for item in dlq["items"]]
    status, redriven = admin.call("POST", "/v1/dlq/normal/redrive", {"job_ids": [job["id"]]})
    assert (status, redriven["redriven"]) == (200, [job["id"]])
    again = http.wait_for(job["id"], {"failed"}, timeout=20)
    assert again["redrive_count"] == 1


def test_stop_leaves_nothing_behind_and_restart_keeps_jobs(tmp_path) -> None:
    data_dir = tmp_path / "data"
    first = start_stack(data_dir)
    http = Http(first.url)
    http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    job = http.call("POST", "/v1/jobs", {"type": "noop"})[1]
    http.wait_for(job["id"], {"succeeded"})
    assert first.stop() == 0
    leftovers = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
    second = start_stack(data_dir)
    try:
        again = Http(second.url)
        again.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        status, kept = again.call("GET", f"/v1/jobs/{job['id']}")
        assert (status, kept["status"]) == (200, "succeeded")
    finally:
        assert second.stop() == 0


def cli(stack: RunningStack, config_dir: str, *args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    env = {**os.environ, "TASKMILL_CONFIG_DIR": config_dir}
    return subprocess.run(
        [sys.executable, "-m", "taskmill_local.cli", "--url", stack.url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_operator_redrives_a_dead_lettered_job_with_the_cli(stack: RunningStack, tmp_path) -> None:
    import json

    config = str(tmp_path / "cli")
    assert (
        cli(
            stack, config, "login", "--email", ADMIN_EMAIL, "--password", "wrong-password!"
        ).returncode
        == 3  # authentication failed
    )
    login = cli(stack, config, "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert login.returncode == 0, login.stderr
    created = cli(
        stack,
        config,
        "--json",
        "jobs",
        "create",
        "fail",
        "--max-attempts",
        "1",
        "--payload",
        '{"message": "boom"}',
        "--watch",
        "--interval",
        "0.1",
    )
    assert created.returncode == 1, created.stderr  # the watched job failed
    job = json.loads(created.stdout)
    assert (job["status"], job["last_error"]) == ("failed", "boom")
    listed = cli(stack, config, "dlq", "list", "normal")
    assert job["id"] in listed.stdout
    assert "JOB_ID" in listed.stdout  # a table for people
    redriven = cli(stack, config, "--json", "dlq", "redrive", "normal", "--job-id", job["id"])
    assert json.loads(redriven.stdout)["redriven"] == [job["id"]], redriven.stderr
    watched = cli(stack, config, "--json", "jobs", "watch", job["id"], "--interval", "0.1")
    assert json.loads(watched.stdout)["redrive_count"] == 1
    queues = cli(stack, config, "queues")
    assert "DLQ_DEPTH" in queues.stdout
    bad = cli(stack, config, "jobs", "create", "nope")
    assert bad.returncode == 4  # the API refused it
    assert "invalid_input" in bad.stderr


def queue_row(http: Http, priority: str) -> dict[str, Any]:
    status, queues = http.call("GET", "/v1/queues")
    assert status == 200, queues
    [row] = [q for q in queues["items"] if q["priority"] == priority]
    return row


def test_a_paused_queue_keeps_its_messages_in_sqs_until_resumed(http: Http) -> None:
    """The local pollers honour a pause as the disabled mapping does in AWS: the job stays
    queued without spending an attempt and its message waits in SQS, visible."""
    http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, paused = http.call("POST", "/v1/queues/normal/pause")
    assert (status, paused["paused"]) == (200, True), paused
    try:
        assert queue_row(http, "normal")["paused"] is True
        # The pollers read the pauses once a second: after two, every one has seen this one
        # (a message received before would be held by the claim instead, delayed, not visible).
        time.sleep(2 * PAUSES_TTL_SECONDS)
        status, job = http.call("POST", "/v1/jobs", {"type": "noop", "priority": "normal"})
        assert status == 201, job
        time.sleep(3)  # several polling rounds in which nothing may receive it
        status, waiting = http.call("GET", f"/v1/jobs/{job['id']}")
        assert (waiting["status"], waiting["attempts"]) == ("queued", 0), waiting
        assert queue_row(http, "normal")["visible"] >= 1
    finally:
        status, resumed = http.call("POST", "/v1/queues/normal/resume")
        assert (status, resumed["paused"]) == (200, False), resumed
    done = http.wait_for(job["id"], {"succeeded", "failed"}, timeout=20)
    assert (done["status"], done["attempts"]) == ("succeeded", 1)
    assert queue_row(http, "normal")["paused"] is False


def test_a_wrong_method_is_405_with_allow_only_past_the_token_check(http: Http) -> None:
    """Over the local gateway as in AWS: without a token every path is the authorizer's 401
    (OPTIONS too, since the stack has no CORS origins); with one, a method the path does not
    take is a 405 naming those it does, and an unknown query parameter a 400."""

    def answer(method: str, path: str, token: str | None) -> tuple[int, str | None, Any]:
        request = urllib.request.Request(http.base + path, method=method)  # noqa: S310
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, response.headers.get("Allow"), None
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Allow"), json.loads(error.read() or b"null")

    for method, path in [
        ("GET", "/v1/workers/claim"),
        ("DELETE", "/v1/jobs"),
        ("OPTIONS", "/v1/jobs"),
        ("POST", "/v1/health"),
    ]:
        status, allow, body = answer(method, path, None)
        assert (status, allow, body["error"]["code"]) == (401, None, "unauthorized"), path
    register_and_login(http)
    for method, path, allowed in [
        ("GET", "/v1/workers/claim", "POST"),
        ("DELETE", "/v1/jobs", "GET, POST"),
        ("OPTIONS", "/v1/jobs", "GET, POST"),
        ("POST", "/v1/health", "GET"),
    ]:
        status, allow, body = answer(method, path, http.token)
        assert (status, allow, body["error"]["code"]) == (405, allowed, "method_not_allowed")
    status, _, body = answer("GET", "/v1/jobs?stauts=failed", http.token)
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    assert body["error"]["details"][0]["loc"] == ["query", "stauts"]
