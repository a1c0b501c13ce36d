"""The SSRF guard of `http.request` and `webhook.deliver` (issue 12, item 4).

Before: the guard resolved the host, then urllib resolved it again to connect (a DNS
rebinding window), and the NAT64 / 6to4 / IPv4-mapped forms of the metadata address and
multicast passed it. Now the host is resolved once and the connection goes to a checked
address; every special-purpose range is refused, in every spelling.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from taskmill.jobs.retry import JobFailure, PermanentJobFailure
from taskmill.jobtypes.http_request import HttpRequestPayload, check_destination, http_request

# The API fixtures (services, app, as_user), used by name.
from tests.integration.api.conftest import *  # noqa: F403
from tests.support.apigw import ApiClient
from tests.support.certificates import self_signed

PUBLIC = "93.184.215.14"  # any globally routable address; never actually connected to
REAL_GETADDRINFO = socket.getaddrinfo
REAL_CREATE_CONNECTION = socket.create_connection


class Receiver:
    """A local HTTP(S) server that records what reaches it."""

    def __init__(self, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "6")
                self.end_headers()
                self.wfile.write(b"thanks")

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])

    def use_tls(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        def remember(sock: Any, server_name: str | None, ctx: Any) -> None:
            self.server_names.append(server_name)

        context.sni_callback = remember
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def job_context(*, allow_private: bool, owner_id: Any = None) -> Any:
    settings = SimpleNamespace(
        http_allow_private=allow_private, http_max_body_excerpt=100, webhook_timeout_seconds=10
    )
    return SimpleNamespace(
        services=SimpleNamespace(settings=settings, webhook_secret=lambda: "w" * 40),
        remaining_time=lambda: 30.0,
        job=SimpleNamespace(owner_id=owner_id or uuid4()),
    )


def _answer(address: str, port: int) -> list[Any]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


class RebindingResolver:
    """DNS for `name` that answers a public address first and 127.0.0.1 afterwards."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked = 0

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != self.name:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        self.asked += 1
        return _answer(PUBLIC if self.asked == 1 else "127.0.0.1", int(port))


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connection attempted. The public address is 'down' (refused), so nothing
    leaves this machine; names and loopback addresses connect for real."""
    attempts: list[Any] = []

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address[0])
        if address[0] == PUBLIC:
            raise ConnectionRefusedError(f"{PUBLIC} refused the connection")
        return REAL_CREATE_CONNECTION(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempts


def _webhook(context: Any, url: str) -> Any:
    from taskmill.jobtypes.webhook_deliver import WebhookPayload, webhook_deliver

    return webhook_deliver(context, WebhookPayload(url=url, event={"type": "job.succeeded"}))


def _http(context: Any, url: str) -> Any:
    return http_request(context, HttpRequestPayload(url=url, method="POST", body="{}"))


@pytest.mark.parametrize("call", [_http, _webhook], ids=["http.request", "webhook.deliver"])
def test_a_rebinding_answer_never_reaches_the_refused_address(
    monkeypatch: pytest.MonkeyPatch, connections: list[Any], call: Any
) -> None:
    resolver = RebindingResolver("rebind.test")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with Receiver() as loopback:
        with pytest.raises(JobFailure):
            call(job_context(allow_private=False), f"http://rebind.test:{loopback.port}/hook")
        assert loopback.requests == []  # nothing reached 127.0.0.1
    assert connections == [PUBLIC]  # the checked address, not a fresh resolution
    assert resolver.asked == 1


def test_a_host_with_any_refused_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def mixed(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return _answer(PUBLIC, int(port)) + _answer("10.0.0.7", int(port))

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with pytest.raises(PermanentJobFailure, match="non-public"):
        check_destination("https://mixed.test/", allow_private=False)


REFUSED = [
    # The metadata endpoint in every spelling.
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254./",
    "http://2852039166/",
    "http://0251.0376.0251.0376/",
    "http://0xa9fea9fe/",
    "http://0xA9.0xFE.0xA9.0xFE/",
    "http://169.254.43518/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b:1::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[fd00:ec2::254]/",
    # Loopback, unspecified, private, shared, link-local, ULA.
    "http://127.0.0.1/",
    "http://127.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://app.localhost/",
    # Multicast and broadcast, reserved, special-purpose.
    "http://224.0.0.1/",
    "http://239.255.255.250:1900/",
    "http://[ff02::1]/",
    "http://[ff0e::1]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://192.0.0.170/",
    "http://198.18.0.1/",
    "http://[100::1]/",
    "http://[fec0::1]/",
    # Forms that embed an IPv4 address, whatever the address.
    "http://[::ffff:8.8.8.8]/",
    "http://[64:ff9b::808:808]/",
    "http://[2002:808:808::]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_special_purpose_destinations_are_refused(url: str) -> None:
    with pytest.raises(PermanentJobFailure, match=r"non-public|this machine"):
        check_destination(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "https://[2606:4700:4700::1111]:8443/x?y=1"])
def test_public_addresses_pass(url: str) -> None:
    check_destination(url, allow_private=False)


def test_allow_private_still_connects_to_the_address_it_resolved(
    monkeypatch: pytest.MonkeyPatch, connections: list[Any]
) -> None:
    resolver = RebindingResolver("flip.test")
    resolver.asked = 1  # every answer is 127.0.0.1
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with Receiver() as loopback:
        result = _http(job_context(allow_private=True), f"http://flip.test:{loopback.port}/a?b=c")
    assert result["status"] == 200
    assert connections == ["127.0.0.1"]
    [request] = loopback.requests
    assert request["path"] == "/a?b=c"
    assert request["headers"]["Host"] == f"flip.test:{loopback.port}"


def test_redirects_are_not_followed() -> None:
    with Receiver(status=302, headers={"Location": "http://169.254.169.254/"}) as hop:
        result = _http(job_context(allow_private=True), f"http://127.0.0.1:{hop.port}/")
    assert result["status"] == 302
    assert result["headers"]["Location"] == "http://169.254.169.254/"
    assert len(hop.requests) == 1


@pytest.fixture
def tls_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """An https server for `service.test` on 127.0.0.1, its certificate trusted."""
    cert, key = self_signed(tmp_path, "service.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    resolver = RebindingResolver("service.test")
    resolver.asked = 1  # always 127.0.0.1
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with Receiver() as server:
        server.use_tls(cert, key)
        yield server


def test_https_names_the_host_for_sni_the_certificate_and_host(tls_service: Receiver) -> None:
    url = f"https://service.test:{tls_service.port}/hook"
    assert _http(job_context(allow_private=True), url)["status"] == 200
    assert tls_service.server_names == ["service.test"]
    assert tls_service.requests[0]["headers"]["Host"] == f"service.test:{tls_service.port}"


def test_https_certificates_are_verified_against_the_host(
    tls_service: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = RebindingResolver("other.test")
    resolver.asked = 1
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(JobFailure, match=r"mismatch|match"):
        _http(job_context(allow_private=True), f"https://other.test:{tls_service.port}/")
    assert tls_service.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/hook",
        "http://2852039166/hook",
        "http://0251.0376.0251.0376/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "http://[2002:a9fe:a9fe::]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://127.0.0.1:8000/hook",
        "http://localhost:8000/hook",
        "http://user:pw@example.com/hook",
    ],
)
def test_webhook_urls_are_checked_at_creation(as_user: ApiClient, url: str) -> None:
    for path, body in (
        ("/v1/jobs", {"type": "noop", "webhook_url": url}),
        ("/v1/jobs/batch", {"jobs": [{"type": "noop", "webhook_url": url}]}),
        (
            "/v1/schedules",
            {"name": "s", "cron": "0 3 * * *", "job": {"type": "noop", "webhook_url": url}},
        ),
    ):
        response = as_user.post(path, body)
        assert response.status == 400, (path, response.status, response.body)
        assert response.error_code == "invalid_input"


def test_private_webhook_urls_are_accepted_where_allowed(as_user: ApiClient, services: Any) -> None:
    services.settings = services.settings.model_copy(update={"http_allow_private": True})
    created = as_user.post("/v1/jobs", {"type": "noop", "webhook_url": "http://127.0.0.1:8000/h"})
    assert created.status == 201, created.body


def test_an_international_host_name_is_resolved_and_sent_in_its_ascii_form(
    monkeypatch: pytest.MonkeyPatch, connections: list[Any]
) -> None:
    resolver = RebindingResolver("xn--bcher-kva.test")
    resolver.asked = 1  # always 127.0.0.1
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with Receiver() as server:
        result = _http(job_context(allow_private=True), f"http://bücher.test:{server.port}/")
    assert result["status"] == 200
    assert server.requests[0]["headers"]["Host"] == f"xn--bcher-kva.test:{server.port}"


@pytest.mark.parametrize(
    "headers",
    [{"X-Evil": "a\r\nInjected: yes"}, {"X-Name": "snowman \u2603"}],
    ids=["CRLF", "non-latin-1"],
)
def test_headers_that_cannot_be_sent_fail_the_job_permanently(headers: dict[str, str]) -> None:
    payload = HttpRequestPayload(url="http://127.0.0.1:9/", headers=headers)
    with pytest.raises(PermanentJobFailure, match="cannot be sent"):
        http_request(job_context(allow_private=True), payload)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_server_that_never_speaks_is_cut_off_at_the_deadline_and_said_so(scheme: str) -> None:
    """A connect or TLS handshake given the time left can time out a moment before the
    deadline's timer fires: the attempt then failed with ssl's "The handshake operation timed
    out" (one run in five) instead of "did not answer within N s"."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])  # and never a byte back
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        for _ in range(5):
            with pytest.raises(JobFailure) as failed:
                http_request(
                    job_context(allow_private=True),
                    HttpRequestPayload(url=url, timeout_seconds=0.3),
                )
            assert str(failed.value) == f"GET {url} did not answer within 0.3 s"
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
