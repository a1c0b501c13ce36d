"""What a request that reaches a real route the wrong way is answered: a method the path does
not take is a 405 naming the methods it does (`Allow`), never a 404 saying the path does not
exist. Every path of the served document is tried, and the routes it leaves out (the document
itself, Swagger UI)."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import pytest
from taskmill.api.app import create_app
from taskmill.api.services import ApiServices

from functions.api.handler import handle
from tests.support.apigw import ApiClient, rest_event
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
