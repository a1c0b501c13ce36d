"""A query parameter a route does not take is refused (400 `invalid_input` naming it), not
ignored: a typo'd filter (`?stauts=failed`) must not list every job, a `?limit=5` on a route
that takes its limit in the body must not claim the default number. Every route of the served
document is tried, and paging's `limit` and `cursor` keep working on every list."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.apigw import ApiClient, ApiResponse

METHODS = ("delete", "get", "patch", "post", "put")
SAMPLE = {"key": "tenant:1", "priority": "normal", "name": "noop"}


@pytest.fixture
def doc(client: ApiClient) -> dict[str, Any]:
    response = client.get("/v1/openapi.json", token=None)
    assert response.status == 200
    body: dict[str, Any] = response.body
    return body


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), str(uuid.uuid4())), template)


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
            if method not in METHODS:
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
