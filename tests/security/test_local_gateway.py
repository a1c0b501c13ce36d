"""The local API Gateway emulation under hostile clients: junk tokens cannot grow its memory
without bound, and the API sees the client's real address (what login throttling keys on)."""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from taskmill.auth.authorizer import AuthorizerDenied

from taskmill_local.gateway import Gateway


def refuse(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise AuthorizerDenied


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    seen: list[dict[str, Any]] = []

    def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "headers": {}, "body": json.dumps(event["requestContext"])}

    gw = Gateway(api, refuse, host="127.0.0.1", port=0)
    gw.start()
    yield gw
    gw.stop()


def junk_token() -> str:
    # Header-sized junk, as a fuzzer sends: each distinct token is one cache entry.
    return "Bearer " + secrets.token_urlsafe(6000)


def test_junk_tokens_do_not_grow_the_authorizer_cache_without_bound(gateway: Gateway) -> None:
    # The attack run: 3,000 junk tokens cost the local stack +30 MiB that never came back.
    def attempt() -> int:
        return gateway._authorize("GET", "/v1/jobs", {"Authorization": junk_token()})[0]

    for _ in range(2000):
        assert attempt() == 401
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(3000):
            assert attempt() == 401
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 2 * 1024 * 1024, f"grew by {(after - before) / 2**20:.1f} MiB"


def test_the_api_sees_the_clients_address(gateway: Gateway) -> None:
    # Any 127/8 address is loopback on Linux: connect from one that is not the default.
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.sock = socket.create_connection(
        ("127.0.0.1", gateway.port), timeout=10, source_address=("127.0.0.7", 0)
    )
    conn.request("GET", "/v1/health")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["identity"]["sourceIp"] == "127.0.0.7"
    conn.close()


def _options(gateway: Gateway) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.request(
        "OPTIONS",
        "/v1/jobs",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    response = conn.getresponse()
    body = json.loads(response.read() or b"null")
    conn.close()
    return response.status, body


@pytest.mark.parametrize("cors", [True, False])
def test_options_skips_the_authorizer_only_where_api_gateway_answers_preflights(
    cors: bool,
) -> None:
    """With CORS origins API Gateway answers every OPTIONS itself (a mock, no authorizer);
    without, an OPTIONS is one more method of the protected ANY: no token, no answer from the
    API (which would say which methods the path takes)."""
    called: list[str] = []

    def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
        called.append(event["httpMethod"])
        return {"statusCode": 204, "headers": {}, "body": ""}

    gw = Gateway(api, refuse, host="127.0.0.1", port=0, cors_preflight=cors)
    gw.start()
    try:
        status, body = _options(gw)
    finally:
        gw.stop()
    if cors:
        assert (status, called) == (204, ["OPTIONS"])
    else:
        assert (status, called) == (401, [])
        assert body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("https://app.example.com", True), ("https://other.example.com", True),
     ("https://evil.example.com", False)],
)  # fmt: skip
def test_the_gateways_own_errors_carry_cors_headers_for_an_allowed_origin(
    origin: str, allowed: bool
) -> None:
    """A browser app on an allowed origin whose token expired reads the 401's envelope (and
    signs in again) instead of a bare CORS failure; so for a body too large. Another origin
    gets no CORS headers."""
    gw = Gateway(
        lambda event, context: {"statusCode": 200, "headers": {}, "body": "{}"},
        refuse,
        host="127.0.0.1",
        port=0,
        max_body_bytes=10,
        cors_origins=("https://app.example.com", "https://other.example.com"),
    )
    gw.start()
    answers = []
    try:
        for method, body in (("GET", None), ("POST", b'{"type": "noop", "payload": {}}')):
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
            conn.request(method, "/v1/jobs", body=body, headers={"Origin": origin})
            response = conn.getresponse()
            answers.append((response.status, response.getheader("Access-Control-Allow-Origin")))
            assert "error" in json.loads(response.read())
            conn.close()
    finally:
        gw.stop()
    expected = origin if allowed else None
    assert answers == [(401, expected), (413, expected)]


def allow_good_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["authorizationToken"] != "Bearer good":
        raise AuthorizerDenied
    return {
        "principalId": "someone",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:*"}],
        },
        "context": {"sub": "someone"},
    }


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_the_authorization_header_is_found_whatever_its_case(name: str) -> None:
    """Header names are case-insensitive (RFC 9110), and API Gateway hands a TOKEN authorizer
    the header however the client spelt it: HTTP/2 clients send every name in lower case."""
    called: list[dict[str, Any]] = []

    def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
        called.append(event)
        return {"statusCode": 200, "headers": {}, "body": "{}"}

    gw = Gateway(api, allow_good_token, host="127.0.0.1", port=0)
    gw.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        conn.putrequest("GET", "/v1/auth/me")
        conn.putheader(name, "Bearer good")
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        conn.close()
    finally:
        gw.stop()
    assert response.status == 200
    [event] = called
    assert event["requestContext"]["authorizer"]["sub"] == "someone"
