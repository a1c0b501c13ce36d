"""The served OpenAPI document tells the truth (SPEC §3).

Its shape: valid, a readable `operationId` on every operation, `security: []` exactly on
the public routes, one relative server, the error envelope for every error status and no
422. Its statuses: for a sample of routes, every status the document lists is made to
happen here and answers with a body of the documented schema, and nothing else happens —
except what only API Gateway answers in a deployment (its stage throttle's 429, its WAF's
403). Schemathesis (tests/security/test_schemathesis.py) checks the other direction for
every route: no answer has a status its entry does not list.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from taskmill.api.openapi import ERROR_RESPONSES
from taskmill.api.public import PUBLIC_ROUTES, is_public
from taskmill.api.services import ApiServices
from taskmill.db import Database
from taskmill.errors import DependencyUnavailable, TaskmillError
from taskmill.jobs.store import JobStore
from taskmill.lifecycle.submit import JobRequest, resolve

from tests.integration.api.conftest import PASSWORD, make_account
from tests.support.apigw import ApiClient, ApiResponse

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
def doc(client: ApiClient) -> dict[str, Any]:
    response = client.get("/v1/openapi.json", token=None)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.body
    return body


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, op


def by_id(doc: dict[str, Any], operation_id: str) -> dict[str, Any]:
    [op] = [op for _, _, op in operations(doc) if op["operationId"] == operation_id]
    return op


def resolved(doc: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in answer:
        name = answer["$ref"].removeprefix("#/components/responses/")
        found: dict[str, Any] = doc["components"]["responses"][name]
        return found
    return answer


def test_the_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"].startswith("3.")


def test_every_operation_has_a_readable_unique_operation_id_and_a_summary(
    doc: dict[str, Any],
) -> None:
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    for method, path, op in operations(doc):
        # camelCase words: what client generators turn into method names (createJob ->
        # create_job), not Powertools' generated `create_job_v1_jobs_post`.
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", op["operationId"]), (method, path)
        assert op["summary"], (method, path)
        assert op["summary"] != f"{method} {path}", (method, path)
    assert by_id(doc, "createJob") is doc["paths"]["/v1/jobs"]["post"]
    assert by_id(doc, "getJob") is doc["paths"]["/v1/jobs/{job_id}"]["get"]


def test_public_routes_and_only_they_need_no_token(doc: dict[str, Any]) -> None:
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    public = set()
    for method, path, op in operations(doc):
        if is_public(method, path):
            public.add((method, path))
            assert op["security"] == [], (method, path)
        else:
            assert "security" not in op, (method, path)  # the document's bearer applies
            assert "401" in op["responses"], (method, path)
    # Every public route but the document and its page (left out of the document itself).
    assert public == PUBLIC_ROUTES - {("GET", "/v1/openapi.json"), ("GET", "/v1/docs")}
    assert "401" not in doc["paths"]["/v1/health"]["get"]["responses"]
    assert "401" in doc["paths"]["/v1/auth/login"]["post"]["responses"]


def test_every_error_is_the_envelope_and_none_is_422(doc: dict[str, Any]) -> None:
    envelope = {"$ref": "#/components/schemas/Error"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]
    assert doc["components"]["schemas"]["ErrorDetail"]["required"] == ["code", "message", "details"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        assert "422" not in op["responses"], (method, path)
        for status, answer in op["responses"].items():
            if int(status) < 400:
                continue
            schema = resolved(doc, answer)["content"]["application/json"]["schema"]
            assert schema == envelope or envelope in schema["anyOf"], (method, path, status)
    throttled = doc["components"]["responses"]["TooManyRequests"]
    assert throttled["headers"]["Retry-After"]["schema"]["type"] == "integer"


def test_success_statuses_are_the_real_ones(doc: dict[str, Any]) -> None:
    def successes(operation_id: str) -> set[str]:
        return {s for s in by_id(doc, operation_id)["responses"] if s.startswith("2")}

    assert successes("createJob") == {"201", "200"}  # 200: a repeated Idempotency-Key
    assert successes("createJobs") == {"201", "200"}
    assert successes("register") == {"201"}
    assert successes("createUser") == {"201"}
    assert successes("createSchedule") == {"201"}
    assert successes("redriveDeadLetters") == {"200", "202"}
    for operation_id in ("deleteJob", "deleteUser", "deleteSchedule", "logout"):
        assert successes(operation_id) == {"204"}
        assert "content" not in by_id(doc, operation_id)["responses"]["204"]
    created = by_id(doc, "createJob")["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobOut"
    }
    # The stateful fuzzer and Swagger UI follow these from a created job to its operations.
    assert created["links"]["getJob"] == {
        "operationId": "getJob",
        "parameters": {"job_id": "$response.body#/id"},
    }


def test_one_server_relative_to_the_document_works_locally_and_deployed(
    doc: dict[str, Any],
) -> None:
    [server] = doc["servers"]
    for served_at, base in (
        ("http://127.0.0.1:8000/v1/openapi.json", "http://127.0.0.1:8000/"),
        (
            "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev/v1/openapi.json",
            "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev/",
        ),
        ("https://api.example.com/v1/openapi.json", "https://api.example.com/"),
    ):
        assert urljoin(served_at, server["url"]) == base


def test_swagger_ui_reads_the_document_and_calls_no_one_else(client: ApiClient) -> None:
    page = client.get("/v1/docs", token=None)
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = str(page.body)
    assert "validatorUrl: null" in html
    assert '"/openapi.json"' in html
    # Everything is inline: no script, style sheet or image from another origin.
    assert not re.search(r"""<(?:script|link|img)[^>]+(?:src|href)=["']?(?:https?:)?//""", html)


# --- every documented status of a sample of routes, made to happen ---------------------

# What only API Gateway answers in front of the function in a deployment.
GATEWAY_ONLY = {"429": "the stage's throttle", "403": "the WAF (where enabled)"}


class Scene:
    """Accounts and data for one route's statuses."""

    def __init__(self, client: ApiClient, services: ApiServices, db: Database) -> None:
        self.client = client
        self.services = services
        self.db = db

    def account(self, role: str = "user", email: str | None = None) -> ApiClient:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        make_account(self.db, email, role)
        caller = ApiClient(self.client.app, self.services)
        caller.login(email, PASSWORD)
        return caller

    def disabled(self, role: str = "user") -> ApiClient:
        email = f"disabled-{uuid.uuid4().hex[:8]}@example.com"
        caller = self.account(role, email)
        self.db.execute("UPDATE users SET disabled = true WHERE email = %s", (email,))
        return caller

    @contextmanager
    def database_down(self) -> Iterator[None]:
        def unreachable() -> Any:
            raise DependencyUnavailable("the database is unreachable")

        self.db.connection = unreachable  # type: ignore[method-assign]
        try:
            yield
        finally:
            del self.db.connection

    def settings(self, **changes: Any) -> None:
        self.services.settings = self.services.settings.model_copy(update=changes)


Call = Callable[..., ApiResponse]


def generic(
    call: Call, *, protected: bool, scene: Scene, role: str = "user"
) -> dict[str, Callable[[], ApiResponse]]:
    """What every route answers: `call(caller, headers=..., raw_body=...)` is the route."""
    too_large = json.dumps({"padding": "x" * (scene.services.settings.max_body_bytes + 1)})
    recipes: dict[str, Callable[[], ApiResponse]] = {
        "400": lambda: call(scene.account(role), headers={"X-Probe": "a\x00b"}),
        "413": lambda: call(scene.account(role), raw_body=too_large),
        "415": lambda: call(
            scene.account(role), raw_body="hello", headers={"Content-Type": "text/plain"}
        ),
    }

    def unavailable() -> ApiResponse:
        caller = scene.account(role)
        with scene.database_down():
            return call(caller)

    recipes["503"] = unavailable
    if protected:
        recipes["401"] = lambda: call(ApiClient(scene.client.app, scene.services))
        recipes["403"] = lambda: call(scene.disabled(role))
    return recipes


def create_job_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def create(
        caller: ApiClient, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> ApiResponse:
        return caller.post("/v1/jobs", body or {"type": "noop"}, headers=headers, **kw)

    def repeated(body: dict[str, Any]) -> ApiResponse:
        caller = scene.account()
        create(caller, headers={"Idempotency-Key": "k1"})
        return create(caller, body, headers={"Idempotency-Key": "k1"})

    def over_quota() -> ApiResponse:
        scene.settings(max_unfinished_jobs=1)
        caller = scene.account()
        create(caller)
        return create(caller)

    return {
        **generic(create, protected=True, scene=scene),
        "201": lambda: create(scene.account()),
        "200": lambda: repeated({"type": "noop"}),
        "409": lambda: repeated({"type": "noop", "name": "another body"}),
        "429": over_quota,
    }


def get_job_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def read(caller: ApiClient, job_id: str | None = None, **kw: Any) -> ApiResponse:
        return caller.get(f"/v1/jobs/{job_id or uuid.uuid4()}", **kw)

    def existing() -> ApiResponse:
        caller = scene.account()
        return read(caller, caller.post("/v1/jobs", {"type": "noop"}).body["id"])

    def someone_elses() -> ApiResponse:
        job = scene.account().post("/v1/jobs", {"type": "noop"}).body
        return read(scene.account(), job["id"])

    return {**generic(read, protected=True, scene=scene), "200": existing, "404": someone_elses}


def list_job_events_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def events(
        caller: ApiClient, job_id: str | None = None, query: str = "", **kw: Any
    ) -> ApiResponse:
        return caller.get(f"/v1/jobs/{job_id or uuid.uuid4()}/events{query}", **kw)

    def second_page() -> ApiResponse:
        caller = scene.account()
        job = caller.post("/v1/jobs", {"type": "noop", "delay_seconds": 60}).body["id"]
        caller.post(f"/v1/jobs/{job}/cancel")
        first = events(caller, job, "?limit=1").body
        assert first["next_cursor"], first
        answer = events(caller, job, f"?limit=1&cursor={first['next_cursor']}")
        assert [e["to_status"] for e in answer.body["items"]] == ["cancelled"]
        return answer

    def someone_elses() -> ApiResponse:
        job = scene.account().post("/v1/jobs", {"type": "noop"}).body
        return events(scene.account(), job["id"])

    return {
        **generic(events, protected=True, scene=scene),
        "200": second_page,
        "404": someone_elses,
    }


def list_jobs_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def listing(caller: ApiClient, query: str = "", **kw: Any) -> ApiResponse:
        return caller.get(f"/v1/jobs{query}", **kw)

    def children() -> ApiResponse:
        # A child as a job body's `context.submit` makes one: created with its parent's success.
        caller = scene.account()
        parent = JobStore(scene.db).claim(
            uuid.UUID(caller.post("/v1/jobs", {"type": "noop"}).body["id"])
        )
        assert parent is not None
        assert parent.lease_token is not None
        child = resolve(JobRequest(type="noop", payload={}), scene.services.registry)
        JobStore(scene.db).succeed_with_children(
            parent.id,
            parent.lease_token,
            None,
            [child.model_copy(update={"parent_id": parent.id})],
            owner_id=parent.owner_id,
        )
        answer = listing(caller, f"?parent_id={parent.id}")
        assert [job["parent_id"] for job in answer.body["items"]] == [str(parent.id)]
        return answer

    return {**generic(listing, protected=True, scene=scene), "200": children}


def cancel_job_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def cancel(caller: ApiClient, job_id: str | None = None, **kw: Any) -> ApiResponse:
        return caller.post(f"/v1/jobs/{job_id or uuid.uuid4()}/cancel", **kw)

    def cancelled(times: int) -> ApiResponse:
        caller = scene.account()
        job = caller.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body
        for _ in range(times - 1):
            cancel(caller, job["id"])
        return cancel(caller, job["id"])

    return {
        **generic(cancel, protected=True, scene=scene),
        "200": lambda: cancelled(1),
        "409": lambda: cancelled(2),
        "404": lambda: cancel(scene.account()),
    }


def retry_job_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def retry(caller: ApiClient, job_id: str | None = None, **kw: Any) -> ApiResponse:
        return caller.post(f"/v1/jobs/{job_id or uuid.uuid4()}/retry", **kw)

    def cancelled_after(caller: ApiClient, dependency: dict[str, Any]) -> str:
        job = caller.post("/v1/jobs", {"type": "noop", "depends_on": [dependency["id"]]}).body
        return str(caller.post(f"/v1/jobs/{job['id']}/cancel").body["id"])

    def retried() -> ApiResponse:
        caller = scene.account()
        dependency = caller.post("/v1/jobs", {"type": "noop"}).body
        return retry(caller, cancelled_after(caller, dependency))

    def dependency_cancelled() -> ApiResponse:
        caller = scene.account()
        dependency = caller.post("/v1/jobs", {"type": "noop"}).body
        job_id = cancelled_after(caller, dependency)
        caller.post(f"/v1/jobs/{dependency['id']}/cancel")
        response = retry(caller, job_id)
        assert response.body["error"]["code"] == "dependency_failed"
        return response

    def over_quota() -> ApiResponse:
        scene.settings(max_unfinished_jobs=1)
        caller = scene.account()
        job = caller.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).body
        caller.post(f"/v1/jobs/{job['id']}/cancel")
        caller.post("/v1/jobs", {"type": "noop"})
        response = retry(caller, job["id"])
        assert response.body["error"]["code"] == "quota_exceeded"
        return response

    return {
        **generic(retry, protected=True, scene=scene),
        "200": retried,
        "404": lambda: retry(scene.account()),
        "409": dependency_cancelled,
        "429": over_quota,
    }


def delete_schedule_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def delete(caller: ApiClient, schedule_id: str | None = None, **kw: Any) -> ApiResponse:
        return caller.request("DELETE", f"/v1/schedules/{schedule_id or uuid.uuid4()}", **kw)

    def deleted() -> ApiResponse:
        caller = scene.account()
        body = {"name": "nightly", "cron": "0 3 * * *", "job": {"type": "noop"}}
        return delete(caller, caller.post("/v1/schedules", body).body["id"])

    return {
        **generic(delete, protected=True, scene=scene),
        "204": deleted,
        "404": lambda: delete(scene.account()),
    }


def create_schedule_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def create(caller: ApiClient, body: Any = None, **kw: Any) -> ApiResponse:
        body = body or {"name": "mornings", "cron": "0 9 * * MON-FRI", "job": {"type": "noop"}}
        return caller.post("/v1/schedules", body, **kw)

    def in_zone(timezone: str) -> ApiResponse:
        body = {"name": "m", "cron": "@daily", "timezone": timezone, "job": {"type": "noop"}}
        return create(scene.account(), body)

    def unknown_zone() -> ApiResponse:
        response = in_zone("Mars/Olympus_Mons")
        assert response.body["error"]["details"][0]["loc"] == ["timezone"]
        return response

    return {
        **generic(create, protected=True, scene=scene),
        "201": lambda: in_zone("Asia/Tokyo"),
        "400": unknown_zone,
    }


def login_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    make_account(scene.db, "ann@example.com")

    def login(caller: ApiClient | None, body: Any = None, **kw: Any) -> ApiResponse:
        credentials = body or {"email": "ann@example.com", "password": PASSWORD}
        return scene.client.post("/v1/auth/login", credentials, token=None, **kw)

    def throttled() -> ApiResponse:
        make_account(scene.db, "guessed@example.com")
        wrong = {"email": "guessed@example.com", "password": "not the password"}
        for _ in range(5):
            login(None, wrong)
        return login(None, wrong)

    return {
        **generic(login, protected=False, scene=scene),
        "200": lambda: login(None),
        # A disabled account too: sign-in does not tell it from a wrong password.
        "401": lambda: login(None, {"email": "nobody@example.com", "password": PASSWORD}),
        "429": throttled,
    }


def set_role_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def set_role(
        caller: ApiClient, user_id: str | None = None, role: str = "user", **kw: Any
    ) -> ApiResponse:
        return caller.put(f"/v1/users/{user_id or uuid.uuid4()}/role", {"role": role}, **kw)

    def only_admin_demotes_itself() -> ApiResponse:
        admin = scene.account("admin")
        me = admin.get("/v1/auth/me").body["id"]
        scene.db.execute("UPDATE users SET role = 'user' WHERE role = 'admin' AND id <> %s", (me,))
        return set_role(admin, me)

    def promoted() -> ApiResponse:
        user = scene.account()
        return set_role(scene.account("admin"), user.get("/v1/auth/me").body["id"], "worker")

    return {
        **generic(set_role, protected=True, scene=scene, role="admin"),
        "200": promoted,
        "404": lambda: set_role(scene.account("admin")),
        "409": only_admin_demotes_itself,
    }


def heartbeat_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    lease = {"lease_token": str(uuid.uuid4())}

    def beat(caller: ApiClient, job_id: str | None = None, body: Any = None, **kw: Any) -> Any:
        return caller.post(f"/v1/jobs/{job_id or uuid.uuid4()}/heartbeat", body or lease, **kw)

    def held() -> ApiResponse:
        scene.account().post("/v1/jobs", {"type": "render"})
        worker = scene.account("worker")
        [claimed] = worker.post("/v1/workers/claim", {"types": ["render"]}).body
        return beat(worker, claimed["id"], {"lease_token": claimed["lease_token"]})

    return {
        **generic(beat, protected=True, scene=scene, role="worker"),
        "200": held,
        # A job that does not exist holds no lease either: 409, not 404.
        "409": lambda: beat(scene.account("worker")),
    }


def health_statuses(scene: Scene) -> dict[str, Callable[[], ApiResponse]]:
    def health(caller: ApiClient | None = None, **kw: Any) -> ApiResponse:
        return scene.client.get("/v1/health", token=None, **kw)

    recipes = generic(health, protected=False, scene=scene)
    recipes["200"] = health
    return recipes  # 503: the database is down (a Health body, not the envelope)


SAMPLE: dict[str, Callable[[Scene], dict[str, Callable[[], ApiResponse]]]] = {
    "createJob": create_job_statuses,
    "getJob": get_job_statuses,
    "listJobs": list_jobs_statuses,
    "listJobEvents": list_job_events_statuses,
    "cancelJob": cancel_job_statuses,
    "retryJob": retry_job_statuses,
    "createSchedule": create_schedule_statuses,
    "deleteSchedule": delete_schedule_statuses,
    "login": login_statuses,
    "setUserRole": set_role_statuses,
    "heartbeat": heartbeat_statuses,
    "getHealth": health_statuses,
}


def conforms(doc: dict[str, Any], answer: dict[str, Any], response: ApiResponse) -> None:
    content = answer.get("content")
    if content is None:
        assert response.body is None, response.body
        return
    schema = {**content["application/json"]["schema"], "components": doc["components"]}
    Draft202012Validator(schema).validate(response.body)


@pytest.mark.parametrize("operation_id", sorted(SAMPLE))
def test_every_status_documented_for_a_route_happens_and_nothing_else(
    operation_id: str,
    doc: dict[str, Any],
    client: ApiClient,
    services: ApiServices,
    db: Database,
) -> None:
    documented = by_id(doc, operation_id)["responses"]
    recipes = SAMPLE[operation_id](Scene(client, services, db))
    for status, recipe in sorted(recipes.items()):
        settings = services.settings
        response = recipe()
        services.settings = settings
        assert str(response.status) == status, (operation_id, status, response.body)
        assert status in documented, (operation_id, status, response.body)
        conforms(doc, resolved(doc, documented[status]), response)
    unexplained = set(documented) - set(recipes) - set(GATEWAY_ONLY)
    assert not unexplained, f"{operation_id} documents {sorted(unexplained)}, never answered"


def test_a_jobs_history_documents_its_pages(doc: dict[str, Any]) -> None:
    op = by_id(doc, "listJobEvents")
    limit = next(p for p in op["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["default"], limit["minimum"], limit["maximum"]) == (50, 1, 200)
    assert {p["name"] for p in op["parameters"]} == {"job_id", "limit", "cursor"}
    assert "default 50, at most 200" in op["description"]
    assert "oldest first" in op["description"]
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/JobEventList"}
    page = doc["components"]["schemas"]["JobEventList"]
    assert page["required"] == ["items", "next_cursor"]


def test_the_readme_describes_a_jobs_history_as_the_document_does(doc: dict[str, Any]) -> None:
    """The README described the history as a bare list with no cursor whose texts are cut
    past ~2 MiB; the API pages it. What it says of the pages is what the document says."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    text = " ".join(readme.split())
    limit = next(p for p in by_id(doc, "listJobEvents")["parameters"] if p["name"] == "limit")
    default, maximum = limit["schema"]["default"], int(limit["schema"]["maximum"])
    assert f"`limit` {default} by default, at most {maximum}" in text
    assert "a bare list with no cursor" not in text
    # Where the README lists the API, the change is named as breaking for bare-list readers.
    api = text[text.index("## API") : text.index("## Flow control")]
    assert "**This breaks a client that reads it as a bare list**" in api


def test_schedules_document_their_time_zone(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    body = by_id(doc, "createSchedule")["requestBody"]["content"]["application/json"]["schema"]
    create = schemas[body["$ref"].removeprefix("#/components/schemas/")]
    assert create["properties"]["timezone"]["default"] == "UTC"
    assert "timezone" not in create["required"]
    assert "@daily" in create["properties"]["cron"]["description"]
    assert {"timezone", "next_fire_at"} <= set(schemas["ScheduleOut"]["required"])


def test_a_limits_rate_period_documents_its_range_in_and_not_out(doc: dict[str, Any]) -> None:
    """A client checks what it sends against the document; a limit stored before the
    one-second minimum is still answered, so the answer's schema must not demand it."""
    schemas = doc["components"]["schemas"]
    body = by_id(doc, "putLimit")["requestBody"]["content"]["application/json"]["schema"]
    put = schemas[body["$ref"].removeprefix("#/components/schemas/")]
    [rate_in] = [r for r in put["properties"]["rate"]["anyOf"] if "$ref" in r]
    period_in = schemas[rate_in["$ref"].removeprefix("#/components/schemas/")]["properties"][
        "period_seconds"
    ]
    assert (period_in["minimum"], period_in["maximum"]) == (1, 86_400)
    [rate_out] = [r for r in schemas["LimitOut"]["properties"]["rate"]["anyOf"] if "$ref" in r]
    period_out = schemas[rate_out["$ref"].removeprefix("#/components/schemas/")]["properties"][
        "period_seconds"
    ]
    assert "minimum" not in period_out


def test_deleting_an_account_documents_its_optional_password_body(doc: dict[str, Any]) -> None:
    # Needed only to delete one's own account: an admin deleting another sends no body.
    body = by_id(doc, "deleteUser")["requestBody"]
    assert body.get("required", False) is False
    schema = json.dumps(body["content"]["application/json"]["schema"])
    assert "UserDelete" in schema
    assert "current_password" in doc["components"]["schemas"]["UserDelete"]["properties"]


def _error_classes(cls: type[TaskmillError]) -> Iterator[type[TaskmillError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _error_classes(sub)


def test_every_error_code_is_named_under_its_status(doc: dict[str, Any]) -> None:
    """A client generated from the document learns the `code`s a status may carry from its
    description: an external worker must find `attempt_timed_out` under 409."""
    responses = doc["components"]["responses"]
    described = {
        int(status): responses[name]["description"] for status, (name, _) in ERROR_RESPONSES.items()
    }
    missing = [
        (cls.status, cls.code)
        for cls in _error_classes(TaskmillError)
        if cls.status in described and f"`{cls.code}`" not in described[cls.status]
    ]
    assert missing == []


def test_the_heartbeat_says_the_timeout_bounds_an_attempt(doc: dict[str, Any]) -> None:
    description = by_id(doc, "heartbeat")["description"]
    assert "attempt_timed_out" in description
    assert "timeout_seconds" in description
