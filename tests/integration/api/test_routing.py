"""What a request that reaches a real route the wrong way is answered.

A method the path does not take is a 405 naming the methods it does (`Allow`), never a 404
saying the path does not exist. A query parameter a route does not take is refused (400
`invalid_input` naming it), not ignored: a typo'd filter (`?stauts=failed`) must not list every
job, a `?limit=5` on a route that takes its limit in the body must not claim the default
number. Every path of the served document is tried, and the routes it leaves out (the document
itself, Swagger UI); paging's `limit` and `cursor` keep working on every list."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from taskmill.api.app import create_app
from taskmill.api.services import ApiServices

from functions.api.handler import handle
from tests.support.apigw import ApiClient, ApiResponse, rest_event
from tests.support.lambda_events import FakeLambdaContext

METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")
# A value for each path parameter the API declares, that names no static path segment.
SAMPLE = {"key": "tenant:1", "priority": "normal", "name": "noop"}
SOME_ID = "0b7c8a9e-4c4b-4f8e-9a51-6f1d2e3c4b5a"


@pytest.fixture
def doc(client: ApiClient) -> dict[str, Any]:
    response = client.get("/v1/openapi.json", token=None)
    assert response.status == 200
    body: dict[str, Any] = response.body
    return body


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), str(uuid.uuid4())), template)


def served_methods(doc: dict[str, Any], path: str) -> set[str]:
    """The methods the document gives `path`: those of its own entry when it is one (a
    `/v1/jobs/batch` is not a `/v1/jobs/{job_id}`), else those of every templated entry it is
    an instance of."""
    if path in doc["paths"]:
        return {m.upper() for m in doc["paths"][path] if m.upper() in METHODS}
    found: set[str] = set()
    for template, item in doc["paths"].items():
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found.update(m.upper() for m in item if m.upper() in METHODS)
    return found


def assert_405(response: Any, allowed: set[str]) -> None:
    assert response.status == 405, response.body
    assert response.error_code == "method_not_allowed"
    assert set(response.body["error"]) >= {"code", "message", "details", "correlation_id"}
    assert response.body["error"]["correlation_id"]
    assert response.headers["X-Correlation-Id"] == response.body["error"]["correlation_id"]
    assert [m.strip() for m in response.headers["Allow"].split(",")] == sorted(allowed)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/workers/claim", {"POST"}),
        ("DELETE", "/v1/jobs", {"GET", "POST"}),
        ("PUT", f"/v1/jobs/{SOME_ID}", {"DELETE", "GET", "PATCH"}),
        ("POST", f"/v1/jobs/{SOME_ID}/status", {"GET"}),
        ("PUT", "/v1/jobs/", {"GET", "POST"}),  # a trailing slash is the same path
        # A path of its own, not a job id: not routed to /v1/jobs/{job_id}'s methods.
        ("GET", "/v1/jobs/batch", {"POST"}),
        ("PATCH", "/v1/jobs/batch", {"POST"}),
        ("DELETE", "/v1/jobs/batch", {"POST"}),
    ],
)
def test_a_method_the_path_does_not_take_is_405_naming_those_it_does(
    as_admin: ApiClient, method: str, path: str, allowed: set[str]
) -> None:
    assert_405(as_admin.request(method, path), allowed)


def test_every_documented_path_answers_405_to_every_method_it_does_not_take(
    doc: dict[str, Any], as_admin: ApiClient
) -> None:
    tried = 0
    for template in doc["paths"]:
        path = concrete(template)
        allowed = served_methods(doc, path)
        for method in sorted(set(METHODS) - allowed):
            assert_405(as_admin.request(method, path), allowed)
            tried += 1
    assert tried > 50


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1/health", {"GET"}),
        ("DELETE", "/v1/openapi.json", {"GET"}),
        ("PUT", "/v1/docs", {"GET"}),
        ("GET", "/v1/auth/login", {"POST"}),
        ("DELETE", "/v1/auth/register", {"POST"}),
    ],
)
def test_public_routes_answer_405_to_a_signed_in_caller(
    as_user: ApiClient, method: str, path: str, allowed: set[str]
) -> None:
    assert_405(as_user.request(method, path), allowed)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/workers/claim"),
        ("DELETE", "/v1/jobs"),
        ("POST", "/v1/health"),  # only GET is public: another method goes to the authorizer
        ("GET", "/v1/auth/login"),
        ("GET", "/v1/no-such-thing"),
    ],
)
def test_without_a_token_a_wrong_method_is_401_as_an_unknown_route_is(
    client: ApiClient, method: str, path: str
) -> None:
    response = client.request(method, path, token=None)
    assert response.status == 401
    assert response.error_code == "unauthorized"


@pytest.mark.parametrize("path", ["/v1/no-such-thing", "/v1/jobs/x/y/z", "/v2/jobs"])
def test_a_path_no_route_takes_is_still_404(as_admin: ApiClient, path: str) -> None:
    for method in METHODS:
        response = as_admin.request(method, path)
        assert response.status == 404, (method, response.body)
        assert response.error_code == "not_found"
        assert "Allow" not in response.headers


def test_the_document_describes_the_405_once_and_no_operation_lists_it(
    doc: dict[str, Any],
) -> None:
    answer = doc["components"]["responses"]["MethodNotAllowed"]
    assert "`method_not_allowed`" in answer["description"]
    assert "Allow" in answer["headers"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "405" in doc["info"]["description"]
    for item in doc["paths"].values():
        for op in item.values():
            assert "405" not in op["responses"]


def test_a_cors_preflight_is_still_answered_and_options_without_cors_is_405(
    services: ApiServices, as_admin: ApiClient
) -> None:
    origin = "https://app.example.com"
    cors = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"cors_origins": origin})
    )
    # No authorizer in front of a preflight (the local gateway lets OPTIONS through).
    event = rest_event(
        "OPTIONS", "/v1/jobs", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    preflight = handle(event, FakeLambdaContext(), create_app(cors), cors)
    assert preflight["statusCode"] == 204
    headers = {k: v[-1] for k, v in preflight["multiValueHeaders"].items()}
    assert headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert_405(as_admin.request("OPTIONS", "/v1/jobs"), {"GET", "POST"})


def test_a_browser_on_an_allowed_origin_can_read_every_error(
    services: ApiServices, as_admin: ApiClient
) -> None:
    """With CORS configured, an answer no route gave (a 404 for a path nothing serves, a 405
    for a method a path does not take) carries the CORS headers too: without them a console
    on another origin sees a bare CORS failure, not the envelope saying what was wrong. An
    origin not allowed gets none."""
    origin = "https://app.example.com"
    cors = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"cors_origins": origin})
    )
    browser = ApiClient(create_app(cors), cors)
    browser.token = as_admin.token
    answers = {
        "404": browser.get("/v1/nothing-here", headers={"Origin": origin}),
        "405": browser.request("PUT", "/v1/jobs", headers={"Origin": origin}),
        "405, templated": browser.patch("/v1/jobs/batch", {}, headers={"Origin": origin}),
        "400": browser.get("/v1/jobs?stauts=failed", headers={"Origin": origin}),
    }
    for what, answer in answers.items():
        assert answer.headers.get("Access-Control-Allow-Origin") == origin, (what, answer)
        assert "error" in answer.body, what
    assert [answer.status for answer in answers.values()] == [404, 405, 405, 400]
    other = browser.get("/v1/nothing-here", headers={"Origin": "https://evil.example.com"})
    assert other.status == 404
    assert "Access-Control-Allow-Origin" not in other.headers


def assert_refused(response: ApiResponse, *names: str) -> None:
    assert response.status == 400, response.body
    assert response.error_code == "invalid_input"
    unknown = [
        detail["loc"]
        for detail in response.body["error"]["details"]
        if detail["type"] == "extra_forbidden"
    ]
    assert unknown == [["query", name] for name in names], response.body
    for name in names:
        assert name in response.body["error"]["message"]


def test_a_typo_in_a_filter_is_refused_not_a_list_of_everything(as_user: ApiClient) -> None:
    as_user.post("/v1/jobs", {"type": "noop"})
    response = as_user.get("/v1/jobs?stauts=failed")
    assert_refused(response, "stauts")
    # What the route takes is in the answer, so the typo is easy to mend.
    [detail] = response.body["error"]["details"]
    assert "status" in detail["msg"]
    assert as_user.get("/v1/jobs?status=failed").body["items"] == []


def test_a_claim_with_its_limit_in_the_query_is_refused_and_claims_nothing(
    as_user: ApiClient, as_worker: ApiClient, db: Any
) -> None:
    for _ in range(3):
        assert as_user.post("/v1/jobs", {"type": "render", "payload": {}}).status == 201
    assert_refused(as_worker.post("/v1/workers/claim?limit=1", {}), "limit")
    running = db.execute("SELECT count(*) AS n FROM jobs WHERE status = 'running'")[0]["n"]
    assert running == 0


def test_every_unknown_parameter_is_named_and_with_other_invalid_input_too(
    as_user: ApiClient,
) -> None:
    assert_refused(as_user.get("/v1/jobs?limit=5&b=1&a=2&a=3"), "a", "b")
    # A value out of range and an unknown name: one answer says both.
    response = as_user.get("/v1/jobs?limit=0&stauts=failed")
    assert_refused(response, "stauts")
    assert ["query", "limit"] in [d["loc"] for d in response.body["error"]["details"]]


@pytest.mark.parametrize(
    "query",
    ["status=queued&status=failed", "limit=1&limit=2", "type=noop&type=noop"],
)
def test_a_parameter_given_twice_is_refused_saying_so(as_user: ApiClient, query: str) -> None:
    """Every parameter takes one value: `?status=queued&status=failed` (an OR a caller may
    hope for) is refused, with a message saying it was given twice, not that `queued` is not
    a status or `1` not an integer."""
    response = as_user.get(f"/v1/jobs?{query}")
    assert response.status == 400, response.body
    assert response.error_code == "invalid_input"
    name = query.split("=")[0]
    [detail] = response.body["error"]["details"]
    assert detail["loc"] == ["query", name]
    assert detail["type"] == "repeated_parameter"
    assert "2 times" in detail["msg"]
    assert f"'{name}'" in response.body["error"]["message"]
    assert "given more than once" in response.body["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/batch"])
@pytest.mark.parametrize("keys", [["k1", "k2"], ["k1", "k1"]])
def test_an_idempotency_key_given_twice_is_refused_saying_so(
    app: Any, services: ApiServices, as_user: ApiClient, db: Any, path: str, keys: list[str]
) -> None:
    """API Gateway hands a header sent twice to the function with both values
    (`multiValueHeaders`); the resolver validated the list as the one key, and the 400 said
    `Input should be a valid string`, which a client that sent two strings cannot act on."""
    body = {"type": "noop"} if path == "/v1/jobs" else {"jobs": [{"type": "noop"}]}
    event = rest_event(
        "POST",
        path,
        body=body,
        headers={"Authorization": f"Bearer {as_user.token}"},
        authorizer=as_user.authorizer_context("POST", path),
    )
    event["headers"]["Idempotency-Key"] = keys[-1]
    event["multiValueHeaders"]["Idempotency-Key"] = keys
    answer = handle(event, FakeLambdaContext(), app, services)
    error = json.loads(answer["body"])["error"]
    assert answer["statusCode"] == 400, error
    assert error["code"] == "invalid_input"
    [detail] = error["details"]
    assert detail["loc"] == ["header", "idempotency-key"]  # as the resolver names headers
    assert detail["type"] == "repeated_parameter"
    assert "2 times" in detail["msg"]
    assert "header 'idempotency-key' given more than once" in error["message"]
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == 0


def test_every_route_refuses_a_query_parameter_it_does_not_take(
    doc: dict[str, Any], as_admin: ApiClient, db: Any
) -> None:
    """Whatever else is wrong with the request (no body here), and before it does anything:
    the logout and the deletes below would end the session or delete rows. The parameters the
    document lists for the operation are sent too: none of them is called unknown, so what a
    route takes is what its entry says."""
    tried = 0
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if method.upper() not in METHODS:
                continue
            documented = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            query = "&".join(f"{name}=1" for name in [*documented, "zz_unknown"])
            response = as_admin.request(method.upper(), f"{concrete(template)}?{query}")
            assert_refused(response, "zz_unknown")
            tried += 1
    assert tried >= 45
    for path in ("/v1/openapi.json", "/v1/docs"):  # served, but not in the document
        assert_refused(as_admin.get(f"{path}?zz_unknown=1"), "zz_unknown")
    assert as_admin.get("/v1/auth/me").status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/auth/login"), ("GET", "/v1/health")],
)
def test_public_routes_refuse_them_too(client: ApiClient, method: str, path: str) -> None:
    assert_refused(client.request(method, f"{path}?zz_unknown=1", token=None), "zz_unknown")


def test_every_list_still_pages_with_limit_and_cursor(
    doc: dict[str, Any], as_admin: ApiClient, as_user: ApiClient
) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop"}).body
    as_user.post("/v1/jobs", {"type": "noop"})
    lists = [
        template
        for template, item in doc["paths"].items()
        if {"limit", "cursor"}
        <= {p["name"] for p in item.get("get", {}).get("parameters", []) if p["in"] == "query"}
    ]
    assert len(lists) >= 6
    for template in lists:
        path = template.replace("{job_id}", job["id"])
        first = as_admin.get(f"{path}?limit=1")
        assert first.status == 200, (path, first.body)
        if first.body["next_cursor"]:
            second = as_admin.get(f"{path}?limit=1&cursor={quote(first.body['next_cursor'])}")
            assert second.status == 200, (path, second.body)
    peek = as_admin.get("/v1/dlq/normal?limit=5")
    assert peek.status == 200, peek.body
