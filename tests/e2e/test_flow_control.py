"""Flow control over real HTTP on `make run`'s stack (SPEC §6): limits hold, pauses hold
work and resume it."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http


def as_admin(http: Http) -> Http:
    admin = Http(http.base)
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    return admin


def as_new_user(http: Http) -> Http:
    user = Http(http.base)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    status, body = user.call(
        "POST", "/v1/auth/register", {"email": email, "password": "a long password"}
    )
    assert status == 201, body
    user.login(email, "a long password")
    return user


def create(user: Http, count: int, **fields: object) -> list[str]:
    status, body = user.call("POST", "/v1/jobs/batch", {"jobs": [fields] * count})
    assert status == 201, body
    return [job["id"] for job in body["items"]]


def finished(user: Http, ids: list[str], timeout: float) -> list[dict[str, object]]:
    jobs = [user.wait_for(job_id, {"succeeded", "failed"}, timeout=timeout) for job_id in ids]
    assert {job["status"] for job in jobs} == {"succeeded"}, jobs
    return jobs


def at(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def test_concurrency_one_never_overlaps(http: Http) -> None:
    key = f"e2e-serial-{uuid.uuid4().hex[:6]}"
    status, limit = as_admin(http).call("PUT", f"/v1/limits/{key}", {"concurrency": 1})
    assert status == 200, limit
    user = as_new_user(http)
    ids = create(user, 4, type="sleep", payload={"seconds": 0.4}, limit_keys=[key])
    jobs = sorted(finished(user, ids, timeout=60), key=lambda j: at(j["started_at"]))
    for earlier, later in itertools.pairwise(jobs):
        assert at(later["started_at"]) >= at(earlier["finished_at"]), (earlier, later)
    assert {job["attempts"] for job in jobs} == {1}  # waiting spent no attempt


def test_a_rate_holds_across_windows(http: Http) -> None:
    key = f"e2e-rate-{uuid.uuid4().hex[:6]}"
    rate = {"limit": 2, "period_seconds": 3}
    status, limit = as_admin(http).call("PUT", f"/v1/limits/{key}", {"rate": rate})
    assert status == 200, limit
    user = as_new_user(http)
    ids = create(user, 6, type="noop", limit_keys=[key])
    starts = sorted(at(job["started_at"]) for job in finished(user, ids, timeout=60))
    # A token bucket of 2 refilled at 2 per 3 s: in any span of t seconds at most
    # 2 + t * 2/3 jobs start (the burst, then the rate); 6 jobs take at least 6 s.
    for i, first in enumerate(starts):
        for j in range(i + 1, len(starts)):
            span = (starts[j] - first).total_seconds()
            assert j - i + 1 <= 2 + span * 2 / 3 + 0.05, (i, j, span)
    assert (starts[-1] - starts[0]).total_seconds() >= 5.9
    status, shown = as_admin(http).call("GET", f"/v1/limits/{key}")
    assert status == 200
    assert shown["use"]["running"] == 0


def test_a_paused_queue_holds_work_and_resume_starts_it(http: Http) -> None:
    admin = as_admin(http)
    user = as_new_user(http)
    status, paused = admin.call("POST", "/v1/queues/low/pause")
    assert (status, paused["paused"]) == (200, True), paused
    try:
        [job_id] = create(user, 1, type="noop", priority="low")
        held = user.wait_for(job_id, {"running", "succeeded"}, timeout=4)
        assert held["status"] == "queued"
        assert held["attempts"] == 0
        status, queues = admin.call("GET", "/v1/queues")
        assert {q["priority"]: q["paused"] for q in queues["items"]}["low"] is True
    finally:
        status, resumed = admin.call("POST", "/v1/queues/low/resume")
    assert (status, resumed["paused"]) == (200, False)
    done = user.wait_for(job_id, {"succeeded"}, timeout=15)
    assert done["status"] == "succeeded"
    assert done["attempts"] == 1


def test_a_paused_type_holds_work_and_resume_starts_it(http: Http) -> None:
    admin = as_admin(http)
    user = as_new_user(http)
    status, paused = admin.call("POST", "/v1/job-types/fail/pause")
    assert status == 200, paused
    try:
        [held_id] = create(user, 1, type="fail", payload={"probability": 0.0})
        [other_id] = create(user, 1, type="noop")
        assert user.wait_for(other_id, {"succeeded"})["status"] == "succeeded"
        held = user.wait_for(held_id, {"running", "succeeded"}, timeout=3)
        assert (held["status"], held["attempts"]) == ("queued", 0)
        status, types = user.call("GET", "/v1/job-types")
        assert {t["name"]: t["paused"] for t in types}["fail"] is True
    finally:
        admin.call("POST", "/v1/job-types/fail/resume")
    assert user.wait_for(held_id, {"succeeded"}, timeout=15)["status"] == "succeeded"
