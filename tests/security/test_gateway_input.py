"""The local gateway answers malformed HTTP in the envelope instead of dropping, hanging or
answering an HTML page (issue 12, item 6d).

A `taskmill_local.gateway.Gateway` on a free port with stub handlers (and, where the answer is the
API's, the real API handler), talked to over a raw socket: what a client observes is whether
an answer came, its status, headers and body.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from taskmill_local.gateway import Gateway

# The API fixtures (services, app), used by name.
from tests.integration.api.conftest import *  # noqa: F403

# A client that never gets an answer fails the test here instead of hanging it.
CLIENT_TIMEOUT_SECONDS = 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error_code(self) -> str:
        return str(json.loads(self.body)["error"]["code"])


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def api(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def _never_authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise AssertionError("only public routes are called here")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> Iterator[Gateway]:
    server = Gateway(
        recorder.api,
        _never_authorize,
        host="127.0.0.1",
        port=0,
        max_body_bytes=1024,
        read_timeout_seconds=0.5,
    )
    server.start()
    yield server
    server.stop()


def exchange(gateway: Gateway, raw: bytes, *, head: bool = False) -> Answer:
    """Send `raw`, keep the connection open for writing, and read one answer."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_SECONDS) as s:
        s.sendall(raw)
        reader = s.makefile("rb")
        try:
            status_line = reader.readline()
        except TimeoutError:
            pytest.fail("the gateway did not answer")
        assert status_line, "the gateway closed the connection without an answer"
        version, status, _ = status_line.decode("latin-1").split(" ", 2)
        assert version.startswith("HTTP/1.")
        headers: dict[str, str] = {}
        while (line := reader.readline().decode("latin-1").rstrip("\r\n")) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        body = reader.read(length) if length else b""
        return Answer(int(status), headers, body)


def _envelope(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json"
    assert answer.error_code == code, answer.body
    error = json.loads(answer.body)["error"]
    assert error["message"]
    # The SPEC's envelope: `details` is there even when it is null.
    assert "details" in error, answer.body


def _post(length: str, body: bytes, extra: str = "") -> bytes:
    return (
        "POST /v1/auth/login HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode() + body


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", " ", "5, 6"])
def test_a_content_length_that_is_not_a_number_is_400(gateway: Gateway, length: str) -> None:
    answer = exchange(gateway, _post(length, b"{}"))
    _envelope(answer, 400, "invalid_request")
    assert answer.headers["connection"] == "close"  # the body's end is unknown


def test_conflicting_content_lengths_are_400(gateway: Gateway) -> None:
    answer = exchange(gateway, _post("2", b"{}", "Content-Length: 3\r\n"))
    _envelope(answer, 400, "invalid_request")


def test_a_body_shorter_than_its_content_length_is_400(
    gateway: Gateway, recorder: Recorder
) -> None:
    # The client stops sending; the gateway must answer rather than wait forever.
    answer = exchange(gateway, _post("100", b'{"email": '))
    _envelope(answer, 400, "invalid_request")
    assert recorder.events == []


def test_a_body_over_the_limit_is_413_and_the_connection_closed(gateway: Gateway) -> None:
    answer = exchange(gateway, _post("5000", b"x" * 5000))
    _envelope(answer, 413, "too_large")
    assert answer.headers["connection"] == "close"


def test_chunked_bodies_need_a_content_length(gateway: Gateway, recorder: Recorder) -> None:
    raw = (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    _envelope(exchange(gateway, raw), 411, "length_required")
    assert recorder.events == []


def test_a_body_that_is_not_utf8_reaches_the_api_as_base64(
    gateway: Gateway, recorder: Recorder
) -> None:
    body = b'{"email": "\xff\xfe"}'
    answer = exchange(gateway, _post(str(len(body)), body))
    assert answer.status == 200
    [event] = recorder.events
    assert event["isBase64Encoded"] is True  # as API Gateway passes a body it cannot decode


def test_a_body_that_is_not_utf8_is_400_from_the_api(services: Any, app: Any) -> None:
    from functions.api.handler import handle

    server = Gateway(
        lambda event, context: handle(event, context, app, services),
        _never_authorize,
        host="127.0.0.1",
        port=0,
    )
    server.start()
    try:
        body = b'{"email": "\xff\xfe@example.com", "password": "0123456789"}'
        _envelope(exchange(server, _post(str(len(body)), body)), 400, "invalid_input")
    finally:
        server.stop()


@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_methods_the_api_does_not_serve_are_405(gateway: Gateway, method: str) -> None:
    answer = exchange(gateway, f"{method} /v1/health HTTP/1.1\r\nHost: local\r\n\r\n".encode())
    _envelope(answer, 405, "method_not_allowed")
    assert "GET" in answer.headers["allow"]


def test_head_is_405_without_a_body(gateway: Gateway) -> None:
    answer = exchange(gateway, b"HEAD /v1/health HTTP/1.1\r\nHost: local\r\n\r\n", head=True)
    assert answer.status == 405
    assert answer.headers["content-type"] == "application/json"
    assert "GET" in answer.headers["allow"]


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "QUERY"])
def test_unknown_methods_are_405_in_the_envelope(gateway: Gateway, method: str) -> None:
    # Not 501: schemathesis sends QUERY; a client's mistake must not count as a server error.
    answer = exchange(gateway, f"{method} /v1/health HTTP/1.1\r\nHost: local\r\n\r\n".encode())
    _envelope(answer, 405, "method_not_allowed")
    assert "GET" in answer.headers["allow"]


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/health HTTP/9.9\r\nHost: local\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
    ids=["request line", "version", "header line"],
)
def test_malformed_requests_are_answered_in_the_envelope(gateway: Gateway, raw: bytes) -> None:
    answer = exchange(gateway, raw)
    assert 400 <= answer.status < 600
    assert answer.headers["content-type"] == "application/json"
    assert answer.error_code
    assert "details" in json.loads(answer.body)["error"], answer.body


def test_a_failing_handler_is_answered_like_api_gateway_does(recorder: Recorder) -> None:
    def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("the function crashed")

    server = Gateway(crash, _never_authorize, host="127.0.0.1", port=0)
    server.start()
    try:
        answer = exchange(server, b"GET /v1/health HTTP/1.1\r\nHost: local\r\n\r\n")
    finally:
        server.stop()
    # API Gateway's DEFAULT_5XX answer (taskmill.api.gateway_responses), as in AWS.
    _envelope(answer, 503, "unavailable")


def test_the_connection_still_serves_after_a_good_request(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_SECONDS) as s:
        for _ in range(2):
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: local\r\n\r\n")
            reader = s.makefile("rb")
            assert reader.readline().startswith(b"HTTP/1.1 200")
            while reader.readline() not in (b"\r\n", b""):
                pass
            assert reader.read(2) == b"{}"


def test_a_header_sent_twice_reaches_the_api_with_both_values(services: Any, app: Any) -> None:
    """API Gateway hands a repeated header to the function with every value
    (`multiValueHeaders`; `headers` has the last). The gateway kept only the last, so two
    `Idempotency-Key` headers created a job keyed by the second under `make run` where AWS
    answers 400."""
    from functions.api.authorizer import check
    from functions.api.handler import handle
    from tests.integration.api.conftest import PASSWORD, make_account
    from tests.support.apigw import ApiClient

    make_account(services.db, "ann@example.com")
    token = ApiClient(app, services).login("ann@example.com", PASSWORD)["access_token"]
    server = Gateway(
        lambda event, context: handle(event, context, app, services),
        lambda event, context: check(event, services.tokens),
        host="127.0.0.1",
        port=0,
    )
    server.start()
    try:
        body = b'{"type": "noop"}'
        raw = (
            "POST /v1/jobs HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nIdempotency-Key: k1\r\nIdempotency-Key: k2\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        answer = exchange(server, raw)
    finally:
        server.stop()
    _envelope(answer, 400, "invalid_input")
    [detail] = json.loads(answer.body)["error"]["details"]
    assert detail["type"] == "repeated_parameter"
    assert services.db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == 0


def test_the_event_has_every_value_of_a_repeated_header(
    gateway: Gateway, recorder: Recorder
) -> None:
    answer = exchange(
        gateway,
        b"GET /v1/health HTTP/1.1\r\nHost: local\r\nX-Thing: a\r\nX-Thing: b\r\n\r\n",
    )
    assert answer.status == 200
    [event] = recorder.events
    assert event["headers"]["X-Thing"] == "b"
    assert event["multiValueHeaders"]["X-Thing"] == ["a", "b"]
