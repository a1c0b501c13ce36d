"""`kill -9` of the local stack's embedded Postgres: the stack brings it back."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, start_stack

pytestmark = pytest.mark.e2e


def test_the_stack_restarts_a_killed_postgres(tmp_path) -> None:
    data_dir = tmp_path / "data"
    stack = start_stack(data_dir)
    try:
        http = Http(stack.url)
        http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)  # gone (or a zombie until the watchdog reaps it by restarting)
        status, body = 0, None
        while time.monotonic() < deadline:
            status, body = http.call("GET", "/v1/health")
            if status == 200:
                break
            assert status == 503, body  # unavailable while it is down, never a 500
            time.sleep(0.5)
        assert status == 200, body
        created, job = http.call("POST", "/v1/jobs", {"type": "noop"})
        assert created == 201, job
        assert http.wait_for(job["id"], {"succeeded"})["status"] == "succeeded"
    finally:
        assert stack.stop() == 0
