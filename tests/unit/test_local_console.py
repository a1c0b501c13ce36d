"""The local gateway serves the console's files at /console (S3 and CloudFront in AWS):
right content types, the security headers, nothing outside console/, and the API's routes
untouched."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from taskmill_local.console import CONSOLE_DIR, SECURITY_HEADERS
from taskmill_local.gateway import Gateway

API_CALLS: list[str] = []


def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    API_CALLS.append(event["path"])
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "principalId": "someone",
        "policyDocument": {
            "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}]
        },
        "context": {},
    }


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    API_CALLS.clear()
    server = Gateway(api, authorize, host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


def request(
    gateway: Gateway, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.parametrize(
    ("path", "content_type", "file"),
    [
        ("/console/", "text/html; charset=utf-8", "index.html"),
        ("/console/index.html", "text/html; charset=utf-8", "index.html"),
        ("/console/app.css", "text/css; charset=utf-8", "app.css"),
        ("/console/js/main.js", "text/javascript; charset=utf-8", "js/main.js"),
        ("/console/favicon.svg", "image/svg+xml", "favicon.svg"),
    ],
)
def test_files_are_served_with_their_type_and_the_security_headers(
    gateway: Gateway, path: str, content_type: str, file: str
) -> None:
    status, headers, body = request(gateway, "GET", path)
    assert status == 200
    assert headers["content-type"] == content_type
    assert body == (CONSOLE_DIR / file).read_bytes()
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value
    assert "connect-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert API_CALLS == []


def test_the_local_config_points_the_console_at_its_own_origin(gateway: Gateway) -> None:
    status, headers, body = request(gateway, "GET", "/console/config.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {"apiUrl": ""}


def test_console_without_its_slash_is_redirected(gateway: Gateway) -> None:
    status, headers, _ = request(gateway, "GET", "/console")
    assert status == 308
    assert headers["location"] == "/console/"


@pytest.mark.parametrize(
    "path",
    [
        "/console/nothing.js",
        "/console/../pyproject.toml",
        "/console/%2e%2e/pyproject.toml",
        "/console/js/../../local/console.py",
        "/console/js",
    ],
)
def test_nothing_else_is_served(gateway: Gateway, path: str) -> None:
    status, headers, body = request(gateway, "GET", path)
    assert headers["x-content-type-options"] == "nosniff"
    assert status == 404
    assert b"[tool." not in body
    assert API_CALLS == []


def test_head_answers_headers_and_writes_are_refused(gateway: Gateway) -> None:
    status, headers, body = request(gateway, "HEAD", "/console/app.css")
    assert status == 200
    assert int(headers["content-length"]) == (CONSOLE_DIR / "app.css").stat().st_size
    assert body == b""
    status, headers, body = request(gateway, "POST", "/console/index.html")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert json.loads(body)["error"]["code"] == "method_not_allowed"


def test_the_api_routes_are_untouched(gateway: Gateway) -> None:
    status, _, _ = request(gateway, "GET", "/v1/jobs", {"Authorization": "Bearer x"})
    assert status == 200
    assert API_CALLS == ["/v1/jobs"]
    # A path that only starts like the console's is the API's.
    request(gateway, "GET", "/consoles", {"Authorization": "Bearer x"})
    assert API_CALLS == ["/v1/jobs", "/consoles"]
    status, _, _ = request(gateway, "HEAD", "/v1/jobs")
    assert status == 405
