"""Bad input answers a 4xx in the envelope, never a 500 (issue 12, item 6).

Each request goes through the real authorizer and API handler on API Gateway's REST event
shape (`tests.support.apigw.ApiClient`), against real Postgres and moto: what a client of the
deployed API would observe. None of these may answer a 5xx, which would also count towards
the API's 5xx alarm.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

# The API fixtures (services, app, client, as_user, as_admin, as_worker), used by name.
from tests.integration.api.conftest import *  # noqa: F403
from tests.integration.api.conftest import PASSWORD
from tests.support.apigw import ApiClient, ApiResponse

NUL = "\u0000"
LONE_SURROGATE = "\ud800"


def _assert_invalid_input(response: ApiResponse) -> None:
    assert response.status == 400, (response.status, response.body)
    assert response.error_code == "invalid_input", response.body
    assert set(response.body["error"]) >= {"code", "message", "details", "correlation_id"}


# (who, method, path, body, headers): each puts an unstorable character in one string.
# A `{job}` in the path is the id of a job of the caller's, created first.
UNSTORABLE_CASES: dict[str, tuple[str, str, str, Any, dict[str, str] | None]] = {
    "login e-mail": (
        "anyone",
        "POST",
        "/v1/auth/login",
        {"email": f"ann{NUL}@example.com", "password": PASSWORD},
        None,
    ),
    "register e-mail": (
        "anyone",
        "POST",
        "/v1/auth/register",
        {"email": f"new{NUL}@example.com", "password": PASSWORD},
        None,
    ),
    "refresh token": ("anyone", "POST", "/v1/auth/refresh", {"refresh_token": NUL * 20}, None),
    "filter type": ("user", "GET", "/v1/jobs?type=%00", None, None),
    "filter tag": ("user", "GET", "/v1/jobs?tag=a%00b", None, None),
    "filter cursor": ("user", "GET", "/v1/jobs?cursor=%00", None, None),
    "job name": ("user", "POST", "/v1/jobs", {"type": "noop", "name": f"a{NUL}"}, None),
    "job description": (
        "user",
        "POST",
        "/v1/jobs",
        {"type": "noop", "description": f"a{NUL}"},
        None,
    ),
    "job tags": ("user", "POST", "/v1/jobs", {"type": "noop", "tags": [f"t{NUL}"]}, None),
    "job payload value": (
        "user",
        "POST",
        "/v1/jobs",
        {"type": "render", "payload": {"text": f"a{NUL}"}},
        None,
    ),
    "job payload key": (
        "user",
        "POST",
        "/v1/jobs",
        {"type": "render", "payload": {f"k{NUL}": 1}},
        None,
    ),
    "job webhook_url": (
        "user",
        "POST",
        "/v1/jobs",
        {"type": "noop", "webhook_url": f"https://example.com/{NUL}"},
        None,
    ),
    "Idempotency-Key": ("user", "POST", "/v1/jobs", {"type": "noop"}, {"Idempotency-Key": NUL}),
    "batch job name": (
        "user",
        "POST",
        "/v1/jobs/batch",
        {"jobs": [{"type": "noop", "name": f"a{NUL}"}]},
        None,
    ),
    "patch name": ("user", "PATCH", "/v1/jobs/{job}", {"name": f"a{NUL}"}, None),
    "patch tags": ("user", "PATCH", "/v1/jobs/{job}", {"tags": [NUL]}, None),
    "path id": ("user", "GET", "/v1/jobs/%00", None, None),
    "schedule name": (
        "user",
        "POST",
        "/v1/schedules",
        {"name": f"n{NUL}", "cron": "0 3 * * *", "job": {"type": "noop"}},
        None,
    ),
    "schedule time zone": (
        "user",
        "POST",
        "/v1/schedules",
        {"name": "n", "cron": "0 3 * * *", "timezone": f"UTC{NUL}", "job": {"type": "noop"}},
        None,
    ),
    "schedule template": (
        "user",
        "POST",
        "/v1/schedules",
        {"name": "n", "cron": "0 3 * * *", "job": {"type": "render", "payload": {"a": NUL}}},
        None,
    ),
    "own e-mail": ("user", "PATCH", "/v1/users/{me}", {"email": f"x{NUL}@example.com"}, None),
    "admin creates user": (
        "admin",
        "POST",
        "/v1/users",
        {"email": f"x{NUL}@example.com", "password": PASSWORD},
        None,
    ),
    "audit filter": ("admin", "GET", "/v1/audit?action=%00", None, None),
    "redrive type": ("admin", "POST", "/v1/dlq/normal/redrive", {"type": NUL}, None),
    "claim types": ("worker", "POST", "/v1/workers/claim", {"types": [NUL]}, None),
    "job name, lone surrogate": (
        "user",
        "POST",
        "/v1/jobs",
        {"type": "noop", "name": f"a{LONE_SURROGATE}"},
        None,
    ),
    "payload, lone surrogate": (
        "user",
        "POST",
        "/v1/jobs",
        {"type": "render", "payload": {"a": LONE_SURROGATE}},
        None,
    ),
    "login e-mail, lone surrogate": (
        "anyone",
        "POST",
        "/v1/auth/login",
        {"email": f"ann{LONE_SURROGATE}@example.com", "password": PASSWORD},
        None,
    ),
}


@pytest.fixture
def callers(
    client: ApiClient, as_user: ApiClient, as_admin: ApiClient, as_worker: ApiClient
) -> dict[str, ApiClient]:
    return {"anyone": client, "user": as_user, "admin": as_admin, "worker": as_worker}


@pytest.mark.parametrize("case", sorted(UNSTORABLE_CASES))
def test_unstorable_characters_are_invalid_input(case: str, callers: dict[str, ApiClient]) -> None:
    who, method, path, body, headers = UNSTORABLE_CASES[case]
    caller = callers[who]
    if "{job}" in path:
        created = caller.post("/v1/jobs", {"type": "noop"})
        assert created.status == 201
        path = path.replace("{job}", created.body["id"])
    if "{me}" in path:
        path = path.replace("{me}", caller.get("/v1/auth/me").body["id"])
    # json.dumps escapes both as `\u0000` / `\ud800`: what a client's JSON library sends.
    _assert_invalid_input(caller.request(method, path, body, headers=headers))


def test_external_worker_reports_with_unstorable_characters(
    as_user: ApiClient, as_worker: ApiClient
) -> None:
    as_user.post("/v1/jobs", {"type": "render"})
    [claimed] = as_worker.post("/v1/workers/claim", {"types": ["render"]}).body
    lease = claimed["lease_token"]
    path = f"/v1/jobs/{claimed['id']}"
    _assert_invalid_input(
        as_worker.post(f"{path}/progress", {"lease_token": lease, "percent": 5, "message": NUL})
    )
    _assert_invalid_input(
        as_worker.post(f"{path}/complete", {"lease_token": lease, "result": {"a": NUL}})
    )
    _assert_invalid_input(as_worker.post(f"{path}/fail", {"lease_token": lease, "error": NUL}))
    # The job is untouched and can still be reported on.
    done = as_worker.post(f"{path}/complete", {"lease_token": lease, "result": {"ok": True}})
    assert done.status == 200, done.body


def test_a_text_with_escaped_backslashes_is_not_mistaken_for_nul(as_user: ApiClient) -> None:
    # `\\u0000` in JSON is a backslash followed by "u0000": six ordinary characters.
    raw = '{"type": "noop", "name": "C:\\\\u0000"}'
    created = as_user.post("/v1/jobs", raw_body=raw)
    assert created.status == 201, created.body
    assert created.body["name"] == "C:\\u0000"


def _nested(depth: int) -> str:
    return '{"type": "render", "payload": {"a": ' + "[" * depth + "]" * depth + "}}"


@pytest.mark.parametrize("depth", [65, 1000, 20_000])
def test_deeply_nested_json_is_refused_before_parsing(as_user: ApiClient, depth: int) -> None:
    response = as_user.post("/v1/jobs", raw_body=_nested(depth))
    _assert_invalid_input(response)
    assert "deep" in response.body["error"]["message"]


def test_deeply_nested_json_on_a_public_route(client: ApiClient) -> None:
    _assert_invalid_input(
        client.post("/v1/auth/login", raw_body="[" * 5000 + "]" * 5000, token=None)
    )


def test_an_integer_too_long_to_convert_is_invalid_input(as_user: ApiClient) -> None:
    # Python refuses to convert integers of more than 4,300 digits (a ValueError).
    raw = '{"type": "render", "payload": {"n": ' + "7" * 5000 + "}}"
    _assert_invalid_input(as_user.post("/v1/jobs", raw_body=raw))


def test_nesting_within_the_limit_is_accepted(as_user: ApiClient) -> None:
    # The body object, the payload and 60 arrays: 62 levels.
    response = as_user.post("/v1/jobs", raw_body=_nested(60))
    assert response.status == 201, response.body


def test_brackets_inside_strings_do_not_count_as_nesting(as_user: ApiClient) -> None:
    response = as_user.post("/v1/jobs", {"type": "noop", "name": "[" * 150 + '"{' * 20})
    assert response.status == 201, response.body


@pytest.mark.parametrize(
    "content_type", ["", "text/plain", "application/xml", "application/x-www-form-urlencoded"]
)
@pytest.mark.parametrize(("who", "path"), [("anyone", "/v1/auth/login"), ("user", "/v1/jobs")])
def test_a_body_that_is_not_json_is_415(
    callers: dict[str, ApiClient], content_type: str, who: str, path: str
) -> None:
    body = json.dumps({"email": "ann@example.com", "password": PASSWORD})
    response = callers[who].request(
        "POST", path, headers={"Content-Type": content_type}, raw_body=body
    )
    assert response.status == 415, response.body
    assert response.error_code == "unsupported_media_type"


def test_a_body_without_content_type_is_415(services: Any, app: Any) -> None:
    from tests.support.apigw import rest_event

    event = rest_event("POST", "/v1/auth/login", body={"email": "a@example.com"})
    for name in ("headers", "multiValueHeaders"):
        event[name] = {k: v for k, v in event[name].items() if k.lower() != "content-type"}
    response = _handle(services, app, event)
    assert response["statusCode"] == 415
    assert json.loads(response["body"])["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]
)
def test_json_content_types_are_accepted(as_user: ApiClient, content_type: str) -> None:
    response = as_user.post(
        "/v1/jobs", raw_body='{"type": "noop"}', headers={"Content-Type": content_type}
    )
    assert response.status == 201, response.body


def test_bodiless_posts_need_no_content_type(as_user: ApiClient) -> None:
    job = as_user.post("/v1/jobs", {"type": "sleep", "payload": {"seconds": 60}}).body
    response = as_user.request("POST", f"/v1/jobs/{job['id']}/cancel", headers={"Content-Type": ""})
    assert response.status == 200, response.body
    assert response.body["status"] == "cancelled"


def _handle(services: Any, app: Any, event: dict[str, Any]) -> dict[str, Any]:
    from functions.api.handler import handle
    from tests.support.lambda_events import FakeLambdaContext

    return handle(event, FakeLambdaContext(), app, services)


def test_a_base64_body_that_is_not_utf8_is_invalid_input(services: Any, app: Any) -> None:
    from tests.support.apigw import rest_event

    event = rest_event("POST", "/v1/auth/login")
    event["body"] = base64.b64encode(b'{"email": "\xff\xfe@example.com"}').decode()
    event["isBase64Encoded"] = True
    response = _handle(services, app, event)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_input"


def test_a_base64_json_body_is_still_read(services: Any, app: Any, client: ApiClient) -> None:
    from tests.support.apigw import rest_event

    event = rest_event("POST", "/v1/auth/login")
    event["body"] = base64.b64encode(b'{"email": "nobody@example.com", "password": "x"}').decode()
    event["isBase64Encoded"] = True
    response = _handle(services, app, event)
    assert response["statusCode"] == 400  # the password is too short: the body was read
    assert json.loads(response["body"])["error"]["details"][0]["loc"][-1] == "password"


def test_a_header_with_nul_is_invalid_input(client: ApiClient) -> None:
    response = client.request("GET", "/v1/health", headers={"X-Anything": f"a{NUL}b"}, token=None)
    _assert_invalid_input(response)


@pytest.mark.parametrize("bad", [NUL, LONE_SURROGATE])
def test_the_database_refusing_a_character_is_invalid_input(db: Any, bad: str) -> None:
    """The backstop behind the edge: what Postgres (or the driver) refuses as data is the
    client's input, not a server error."""
    from taskmill.errors import InvalidInput
    from taskmill.jobs.store import JobStore
    from taskmill.users.store import UserStore

    from tests.support.factories import create_job, make_user

    with pytest.raises(InvalidInput):
        UserStore(db).create(f"x{bad}@example.com", "hash", role="user")
    with pytest.raises(InvalidInput):
        create_job(JobStore(db), make_user(db), payload={"a": bad})
    with pytest.raises(InvalidInput):
        create_job(JobStore(db), make_user(db), name=f"n{bad}")


# Valid ISO 8601 with a zone, but the UTC instant is outside the years 1-9999: Postgres stores
# it (as a BC or year-10000 timestamp) and nothing in Python can read it back.
OUT_OF_RANGE_INSTANTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("run_at", OUT_OF_RANGE_INSTANTS)
def test_a_run_at_outside_the_representable_years_is_refused(
    as_user: ApiClient, as_admin: ApiClient, run_at: str
) -> None:
    # It used to be stored and answered 500; then the owner's and the admin's job lists
    # answered 400 for good, and the recovery sweep failed on every run for everyone.
    single = as_user.post("/v1/jobs", {"type": "noop", "run_at": run_at})
    batch = as_user.post("/v1/jobs/batch", {"jobs": [{"type": "noop", "run_at": run_at}]})
    schedule = as_user.post(
        "/v1/schedules",
        {"name": "far", "cron": "@daily", "job": {"type": "noop", "run_at": run_at}},
    )
    for response in (single, batch, schedule):
        _assert_invalid_input(response)
        assert "run_at" in json.dumps(response.body["error"]["details"]), response.body
    job = as_user.post("/v1/jobs", {"type": "noop", "run_at": "2999-01-01T00:00:00Z"}).body
    patch = as_user.patch(f"/v1/jobs/{job['id']}", {"run_at": run_at})
    _assert_invalid_input(patch)
    assert as_user.get(f"/v1/jobs/{job['id']}").body["run_at"] == job["run_at"]
    assert [j["id"] for j in as_user.get("/v1/jobs").body["items"]] == [job["id"]]
    assert as_admin.get("/v1/jobs").status == 200
