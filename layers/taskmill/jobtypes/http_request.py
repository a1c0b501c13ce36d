"""`http.request`: call a URL and keep its status and a bounded excerpt of the body.

The host is resolved once; every address it resolves to is checked
(`taskmill.jobtypes.destinations`), and the connection goes to one of those addresses, never
to a name resolved again: a DNS answer that changes between the check and the connection
(rebinding) cannot reach an address the check refused. For https the TLS handshake still
names the URL's host (SNI) and the certificate is verified against it; the Host header is
the URL's host. Redirects are not followed (a redirect could lead anywhere).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskmill.jobs.retry import JobFailure, PermanentJobFailure
from taskmill.jobtypes.destinations import (
    Address,
    DestinationRefused,
    Target,
    check_address,
    check_url,
    literal_address,
    parse,
)


class HttpRequestPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A URI in the schema: a form (the console's) offers one line for it, not a text area.
    url: str = Field(max_length=2048, title="URL", json_schema_extra={"format": "uri"})
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = Field(default=None, max_length=256 * 1024)
    timeout_seconds: float = Field(default=10, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url_can_be_requested(cls, url: str) -> str:
        # What the URL alone decides (scheme, host, credentials, port) is refused when the job
        # is created (400, like `webhook_url`) rather than accepted and failed at its first
        # run. Its addresses are checked when it runs: that takes DNS, and whether private
        # ones are allowed is the worker's setting.
        parse(url)
        return url


def resolve(target: Target) -> list[Address]:
    """The host's addresses, from one DNS resolution (or the address the URL names)."""
    if target.address is not None:
        return [target.address]
    try:
        infos = socket.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise JobFailure(f"cannot resolve {target.host}: {exc}") from exc
    addresses: list[Address] = []
    for info in infos:
        address = literal_address(str(info[4][0]))
        if address is None:  # a resolver answers addresses; anything else is refused
            raise PermanentJobFailure(f"{target.host} resolved to {info[4][0]!r}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise JobFailure(f"{target.host} has no address")
    return addresses


def check_destination(url: str, *, allow_private: bool) -> tuple[Target, list[Address]]:
    """The URL's parts and the addresses it may be requested at, resolved once.

    Refuses non-http(s) schemes and, unless `allow_private`, a host with any address inside
    the network the worker runs in or otherwise special (`destinations.refusal`: private,
    loopback, link-local, metadata, multicast, IPv4-mapped, NAT64, 6to4, Teredo...)."""
    try:
        target = check_url(url, allow_private=allow_private)
    except DestinationRefused as exc:
        raise PermanentJobFailure(str(exc)) from None
    addresses = resolve(target)
    if not allow_private:
        for address in addresses:
            try:
                check_address(target.host, address)
            except DestinationRefused as exc:
                raise PermanentJobFailure(str(exc)) from None
    return target, addresses


Connect = Callable[..., socket.socket]


def open_socket(
    addresses: list[Address],
    port: int,
    deadline: float,
    *,
    connect: Connect | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> socket.socket:
    """A TCP connection to the first of the checked `addresses` that accepts one, each tried
    with the time left before `deadline` (a `clock` reading): a host resolving to several
    addresses that drop connections cannot spend the whole timeout on each of them.
    `connect` is `socket.create_connection` as it is when called."""
    connect = connect or socket.create_connection
    last: OSError = OSError("no address to connect to")
    for address in addresses:
        left = deadline - clock()
        if left <= 0:
            raise TimeoutError(f"the deadline passed while connecting ({last})")
        try:
            return connect((str(address), port), timeout=left)
        except OSError as exc:
            last = exc
    raise last


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to already-checked addresses; `host` is used only for Host.

    `timeout` bounds the whole exchange, not each read: a socket timeout restarts with every
    byte, so a server sending its answer a byte at a time would hold the request (and the
    worker) for as long as it liked. A timer cuts the connection when the time is up."""

    def __init__(self, target: Target, addresses: list[Address], timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = addresses
        self._deadline = time.monotonic() + timeout
        self._live: socket.socket | None = None
        self.expired = threading.Event()
        self._timer = threading.Timer(timeout, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def out_of_time(self) -> bool:
        """Whether the deadline has passed: the timer fired, or a connect or handshake given
        the time left ran out of it just before the timer could."""
        return self.expired.is_set() or time.monotonic() >= self._deadline

    def _cut(self) -> None:
        self.expired.set()
        live = self._live
        if live is not None:
            # Shutting down (not closing) wakes a read blocked in another thread; an OSError
            # means the request ended (and closed it) as the timer fired. `socket.socket`'s
            # own shutdown, also on a TLS socket: SSLSocket's would drop its TLS state under
            # the read in progress, which then fails with a ValueError instead of an OSError.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(live, socket.SHUT_RDWR)

    def _hold(self, sock: socket.socket) -> socket.socket:
        """Makes `sock` the one the timer cuts (the TLS socket once wrapped: wrapping detaches
        the plain one, which then has nothing left to shut down)."""
        self._live = sock
        # Set before the check: either the timer saw it and cut it, or this sees the timer.
        if self.expired.is_set():
            sock.close()
            raise TimeoutError("the deadline passed while connecting")
        return sock

    def _open(self) -> socket.socket:
        # Not held while connecting (there is no socket yet to cut): the time left bounds it.
        return self._hold(open_socket(self._addresses, self.port, self._deadline))

    def connect(self) -> None:
        self.sock = self._open()

    def close(self) -> None:
        self._timer.cancel()
        super().close()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """TLS to already-checked addresses, with SNI and certificate checks against the URL's
    host (never against the address)."""

    default_port = 443

    def connect(self) -> None:
        sock = self._open()
        # Built per connection so the trust store in effect (SSL_CERT_FILE) is used.
        context = ssl.create_default_context()
        try:
            # The handshake is one call that ssl bounds as a whole by the socket's timeout:
            # the time left. The timer cannot cut it (wrapping detaches the plain socket).
            sock.settimeout(max(self._deadline - time.monotonic(), 0.001))
            tls = context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        # A server sending many small records promptly is what the timer is for, on the TLS
        # socket, which now owns the connection.
        self.sock = self._hold(tls)


def http_request(context: Any, payload: HttpRequestPayload) -> dict[str, Any]:
    """Calls a URL; 5xx and network errors are retried, 4xx is the result."""
    return send(
        context,
        payload.url,
        method=payload.method,
        headers=payload.headers,
        body=payload.body.encode() if payload.body is not None else None,
        timeout_seconds=payload.timeout_seconds,
    )


def send(
    context: Any,
    url: str,
    *,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout_seconds: float,
) -> dict[str, Any]:
    """`http_request` without the limits on a user's payload (the platform's own requests,
    such as completion webhooks, whose body is as large as the job's result)."""
    settings = context.services.settings
    target, addresses = check_destination(url, allow_private=settings.http_allow_private)
    timeout = min(timeout_seconds, max(context.remaining_time(), 0.1))
    connection_type = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_type(target, addresses, timeout)
    # The Host header is always the URL's host (http.client writes it): the checked URL is
    # what the request is for.
    headers = {k: v for k, v in headers.items() if k.lower() != "host"}
    try:
        connection.request(method, target.path, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        excerpt = response.read(settings.http_max_body_excerpt)
        answered = dict(response.headers.items())
        if connection.expired.is_set():
            # Cut mid-body, a read can end as if the body had (a short excerpt, no error).
            raise TimeoutError("the deadline passed while reading the answer")
    except ssl.SSLCertVerificationError as exc:
        raise JobFailure(f"{method} {url} failed: {exc.verify_message}") from exc
    except (http.client.HTTPException, OSError) as exc:
        if connection.out_of_time():
            raise JobFailure(f"{method} {url} did not answer within {timeout:g} s") from exc
        raise JobFailure(f"{method} {url} failed: {exc}") from exc
    except ValueError as exc:
        # http.client refuses a header with a line break or a character outside Latin-1
        # before anything is sent: the job's own payload, which no retry will change.
        raise PermanentJobFailure(f"the request cannot be sent: {exc}") from exc
    finally:
        connection.close()
    if status >= 500 or status == 429:
        raise JobFailure(f"{method} {url} answered {status}")
    return {
        "status": status,
        "headers": {k: v for k, v in answered.items() if k.lower() in ("content-type", "location")},
        "body_excerpt": excerpt.decode("utf-8", errors="replace"),
    }
