"""Request bodies take each value as the JSON type the API documents: a `true` is not a count,
`"10"` is not a number, `1` is not a boolean. Only instants and UUIDs, which JSON can carry
only as text, are read from strings."""

from __future__ import annotations

import pytest

from tests.support.apigw import ApiClient

# (who, method, path, body, the field the error names)
MISTYPED = [
    ("user", "post", "/v1/jobs", {"type": "noop", "max_attempts": True}, ["max_attempts"]),
    ("user", "post", "/v1/jobs", {"type": "noop", "timeout_seconds": "10"}, ["timeout_seconds"]),
    ("user", "post", "/v1/jobs", {"type": "noop", "delay_seconds": "5"}, ["delay_seconds"]),
    ("user", "post", "/v1/jobs", {"type": "noop", "backoff_base_seconds": False}, None),
    ("user", "post", "/v1/jobs/batch", {"jobs": [{"type": "noop", "max_attempts": "2"}]}, None),
    (
        "user",
        "post",
        "/v1/schedules",
        {"name": "n", "cron": "@daily", "job": {"type": "noop"}, "enabled": "yes"},
        ["enabled"],
    ),
    ("admin", "put", "/v1/limits/tenant:1", {"concurrency": True}, ["concurrency"]),
    ("admin", "put", "/v1/limits/tenant:1", {"concurrency": "2"}, ["concurrency"]),
    ("admin", "post", "/v1/dlq/normal/redrive", {"limit": "10"}, ["limit"]),
    ("admin", "post", "/v1/dlq/normal/redrive", {"dry_run": 1}, ["dry_run"]),
    (
        "admin",
        "post",
        "/v1/admin/requeue",
        {"status": "queued", "older_than_seconds": "60"},
        ["older_than_seconds"],
    ),
    ("worker", "post", "/v1/workers/claim", {"limit": True}, ["limit"]),
]


def _client(who: str, as_user: ApiClient, as_admin: ApiClient, as_worker: ApiClient) -> ApiClient:
    return {"user": as_user, "admin": as_admin, "worker": as_worker}[who]


@pytest.mark.parametrize(("who", "method", "path", "body", "field"), MISTYPED)
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(
    who, method, path, body, field, as_user, as_admin, as_worker, db
) -> None:
    client = _client(who, as_user, as_admin, as_worker)
    jobs_before = db.execute("SELECT count(*) AS n FROM jobs")[0]["n"]
    response = getattr(client, method)(path, body)
    assert response.status == 400, response.body
    assert response.error_code == "invalid_input"
    if field is not None:
        locs = [detail["loc"][-len(field) :] for detail in response.body["error"]["details"]]
        assert field in locs, response.body
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == jobs_before


def test_a_mistyped_account_flag_changes_nothing(as_admin, as_user) -> None:
    me = as_user.get("/v1/auth/me").body
    response = as_admin.patch(f"/v1/users/{me['id']}", {"disabled": "yes"})
    assert response.status == 400
    assert response.body["error"]["details"][0]["loc"][-1] == "disabled"
    assert as_admin.get(f"/v1/users/{me['id']}").body["disabled"] is False


def test_instants_uuids_and_whole_numbers_as_json_gives_them_are_accepted(as_user) -> None:
    first = as_user.post("/v1/jobs", {"type": "noop"})
    second = as_user.post(
        "/v1/jobs",
        {
            "type": "noop",
            "run_at": "2030-01-01T00:00:00+02:00",
            "depends_on": [first.body["id"]],
            "max_attempts": 3,
            "backoff_base_seconds": 2,  # an integer where a number is asked for is a number
            "tags": ["a"],
        },
    )
    assert second.status == 201, second.body
    assert second.body["depends_on"] == [first.body["id"]]
    assert second.body["max_attempts"] == 3


def test_a_workers_lease_token_is_read_from_its_text(as_user, as_worker) -> None:
    created = as_user.post("/v1/jobs", {"type": "render"})
    assert created.status == 201, created.body
    claimed = as_worker.post("/v1/workers/claim", {"types": ["render"]})
    assert claimed.status == 200, claimed.body
    job = claimed.body[0]
    progress = as_worker.post(
        f"/v1/jobs/{job['id']}/progress",
        {"lease_token": job["lease_token"], "percent": 50},
    )
    assert progress.status in (200, 204), progress.body
    stringly = as_worker.post(
        f"/v1/jobs/{job['id']}/progress",
        {"lease_token": job["lease_token"], "percent": "60"},
    )
    assert stringly.status == 400
    assert as_user.get(f"/v1/jobs/{job['id']}").body["progress"] == 50


def test_a_list_of_jobs_posted_as_one_job_creates_none_and_points_at_the_batch(as_user, db) -> None:
    """A JSON array where an object is documented was read as its first element: two jobs
    posted to /v1/jobs answered 201 with the first, and the second was dropped unsaid."""
    jobs = [{"type": "noop", "name": "first"}, {"type": "noop", "name": "second"}]
    response = as_user.post("/v1/jobs", jobs)
    assert response.status == 400, response.body
    assert response.error_code == "invalid_input"
    assert "/v1/jobs/batch" in response.body["error"]["message"]
    assert response.body["error"]["details"] == [
        {"loc": ["body"], "msg": "a JSON array, not an object", "type": "model_type"}
    ]
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == 0
    # The batch route itself took the first job for its body and said 'jobs' was missing.
    response = as_user.post("/v1/jobs/batch", jobs)
    assert response.status == 400, response.body
    assert "/v1/jobs/batch" in response.body["error"]["message"]
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == 0


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        ("anyone", "post", "/v1/auth/login", [{"email": "ann@example.com", "password": "x" * 10}]),
        ("worker", "post", "/v1/workers/claim", [{"limit": 1}]),
        ("admin", "put", "/v1/limits/tenant:1", [{"concurrency": 2}]),
        (
            "user",
            "post",
            "/v1/schedules",
            [{"name": "n", "cron": "@daily", "job": {"type": "noop"}}],
        ),
    ],
)
def test_a_json_array_is_not_taken_for_the_object_it_holds(
    who, method, path, body, client, as_user, as_admin, as_worker, db
) -> None:
    caller = {"anyone": client, "user": as_user, "admin": as_admin, "worker": as_worker}[who]
    response = getattr(caller, method)(path, body)
    assert response.status == 400, response.body
    assert response.error_code == "invalid_input"
    assert db.execute("SELECT count(*) AS n FROM schedules")[0]["n"] == 0
    assert db.execute("SELECT count(*) AS n FROM limits")[0]["n"] == 0
