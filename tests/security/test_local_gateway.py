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
