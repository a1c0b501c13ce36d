"""The local gateway compresses answers as API Gateway does with minimumCompressionSize set
(infra/taskmill_cdk/api.py): gzip for a client that asks for it, from MIN_COMPRESSION_BYTES on,
never an answer the function encoded itself."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator
from typing import Any

import pytest
from taskmill.api.gateway_responses import MIN_COMPRESSION_BYTES

from taskmill_local.gateway import Gateway, accepts_gzip

LARGE = "<p>" + "x" * MIN_COMPRESSION_BYTES + "</p>"
SMALL = "<p>small</p>"


def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = {"Content-Type": "text/html"}
    if event["path"] == "/v1/encoded":
        headers["Content-Encoding"] = "br"
    body = SMALL if event["path"] == "/v1/small" else LARGE
    return {"statusCode": 200, "headers": headers, "body": body, "isBase64Encoded": False}


def never(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise AssertionError("public routes only")


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setattr("taskmill_local.gateway.is_public", lambda method, path: True)
    server = Gateway(api, never, host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


def get(gateway: Gateway, path: str, accept_encoding: str | None) -> tuple[dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200
    return {k.lower(): v for k, v in response.getheaders()}, body


def test_a_large_answer_is_gzipped_for_a_client_that_accepts_it(gateway: Gateway) -> None:
    headers, body = get(gateway, "/v1/docs", "gzip, deflate, br")
    assert headers["content-encoding"] == "gzip"
    assert int(headers["content-length"]) == len(body) < len(LARGE) // 10
    assert gzip.decompress(body).decode() == LARGE


@pytest.mark.parametrize(
    ("path", "accept_encoding"),
    [
        ("/v1/docs", None),  # no Accept-Encoding: API Gateway does not compress
        ("/v1/docs", "*"),
        ("/v1/docs", "gzip;q=0, identity"),
        ("/v1/small", "gzip"),  # under the threshold
        ("/v1/encoded", "gzip"),  # the function encoded it already
    ],
)
def test_otherwise_the_answer_is_sent_as_the_function_gave_it(
    gateway: Gateway, path: str, accept_encoding: str | None
) -> None:
    headers, body = get(gateway, path, accept_encoding)
    assert headers.get("content-encoding") in (None, "br")
    assert body.decode() == (SMALL if path == "/v1/small" else LARGE)


def test_accept_encoding_is_read_with_its_qualities() -> None:
    assert accepts_gzip("gzip")
    assert accepts_gzip("br;q=1.0, GZIP;q=0.5")
    assert accepts_gzip("x-gzip")
    assert not accepts_gzip("")
    assert not accepts_gzip("deflate, br")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=zero")
