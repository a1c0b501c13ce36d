"""The local stack's SQS lives in memory: a restart must not strand queued jobs."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, start_stack

pytestmark = pytest.mark.e2e


def test_a_job_queued_before_a_restart_runs_after_it(tmp_path) -> None:
    data_dir = tmp_path / "data"
    first = start_stack(data_dir)
    http = Http(first.url)
    http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, job = http.call("POST", "/v1/jobs", {"type": "noop", "delay_seconds": 8})
    assert (status, job["status"]) == (201, "queued")
    assert first.stop() == 0  # its message was in the SQS that just went away
    second = start_stack(data_dir)
    try:
        again = Http(second.url)
        again.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert again.wait_for(job["id"], {"succeeded"}, timeout=40)["status"] == "succeeded"
    finally:
        assert second.stop() == 0
