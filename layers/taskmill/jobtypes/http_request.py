"""`http.request`: call a URL and keep its status and a bounded excerpt of the body."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from taskmill.jobs.retry import JobFailure, PermanentJobFailure


class HttpRequestPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = Field(default=None, max_length=256 * 1024)
    timeout_seconds: float = Field(default=10, gt=0, le=300)


def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) schemes and, unless allowed, addresses inside the network the
    worker runs in (private, loopback, link-local: the cloud metadata endpoint among them)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentJobFailure(f"only http and https URLs are allowed, not {parts.scheme!r}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise JobFailure(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise PermanentJobFailure(
                f"{parts.hostname} resolves to a non-public address ({address}); "
                "set TASKMILL_HTTP_ALLOW_PRIVATE to allow it"
            )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to an address the destination check refused.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_request(context: Any, payload: HttpRequestPayload) -> dict[str, Any]:
    """Calls a URL; 5xx and network errors are retried, 4xx is the result."""
    settings = context.services.settings
    check_destination(payload.url, allow_private=settings.http_allow_private)
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        payload.url,
        data=payload.body.encode() if payload.body is not None else None,
        headers=payload.headers,
        method=payload.method,
    )
    opener = urllib.request.build_opener(_NoRedirects)
    timeout = min(payload.timeout_seconds, max(context.remaining_time(), 0.1))
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            excerpt = response.read(settings.http_max_body_excerpt)
            headers = dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        status = exc.code
        excerpt = exc.read(settings.http_max_body_excerpt)
        headers = dict(exc.headers.items())
        if status >= 500 or status == 429:
            raise JobFailure(f"{payload.method} {payload.url} answered {status}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise JobFailure(f"{payload.method} {payload.url} failed: {exc}") from exc
    return {
        "status": status,
        "headers": {k: v for k, v in headers.items() if k.lower() in ("content-type", "location")},
        "body_excerpt": excerpt.decode("utf-8", errors="replace"),
    }
