"""Which addresses the platform may send HTTP requests to (the SSRF guard of `http.request`
and `webhook.deliver`, and of `webhook_url` at job creation).

Pure: no sockets and no DNS here, so the API can check a URL without importing an HTTP
client. The worker resolves a host once, checks every address with `refusal`, and connects
to one of those very addresses (`taskmill.jobtypes.http_request`), so a DNS answer that
changes between the check and the connection (rebinding) cannot lead elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Special-purpose IPv6 ranges that carry (or reach) an IPv4 address, refused whatever the
# address inside: the translating router connects to the embedded IPv4 address, which may be
# the metadata endpoint or a private one (64:ff9b::a9fe:a9fe is 169.254.169.254).
_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(network), reason)
    for network, reason in (
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::/96", "IPv4-compatible"),
        ("64:ff9b::/96", "NAT64"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("2002::/16", "6to4"),
        ("2001::/32", "Teredo"),
        ("100::/64", "discard-only"),
        ("fec0::/10", "site-local"),
    )
)
# The cloud metadata endpoints, named in refusals so an operator sees what was attempted.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# The forms of an IPv4 address that inet_aton (and so most resolvers) accept besides the
# dotted quad: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x): 2852039166,
# 0251.0376.0251.0376, 0xa9fea9fe and 169.254.43518 are all 169.254.169.254.
_INET_ATON_FORM = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)


class DestinationRefused(ValueError):
    """The URL may not be requested; `str(error)` says why (safe to show its owner)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to ask for."""

    scheme: str
    host: str  # as written in the URL (brackets removed): the Host header, SNI, certificate
    port: int
    path: str  # path and query, as sent in the request line
    address: Address | None  # the host as an IP address, if it is one in any spelling


def refusal(address: Address) -> str | None:
    """Why the platform must not connect to `address`, or None if it may."""
    if address in METADATA_ADDRESSES:
        return "the cloud metadata endpoint"
    if isinstance(address, ipaddress.IPv6Address):
        for network, reason in _REFUSED_V6:
            if address in network:
                return reason
        if address.scope_id:
            return "scoped (link-local)"
    for check, reason in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, check):
            return reason
    # What remains is global unless it is special-purpose: shared address space
    # (100.64.0.0/10), documentation and benchmarking ranges, and the like.
    return None if address.is_global else "not globally reachable"


def literal_address(host: str) -> Address | None:
    """The host as an IP address if it is one in any spelling resolvers accept, else None."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _INET_ATON_FORM.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def parse(url: str) -> Target:
    """The parts of an http(s) URL the platform will request, or `DestinationRefused`."""
    parts: SplitResult = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"only http and https URLs are allowed, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("credentials in the URL are not supported; send a header")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused("the URL's port is not valid") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    host = parts.hostname
    if not host.isascii() and literal_address(host) is None:
        # An international name: resolved, checked and named (Host, SNI) in its ASCII form.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise DestinationRefused("the URL's host is not a valid name") from None
    return Target(parts.scheme, host, port, path, literal_address(host))


def check_address(host: str, address: Address) -> None:
    reason = refusal(address)
    if reason is not None:
        raise DestinationRefused(
            f"{host} is a non-public address ({address}: {reason}); "
            "set TASKMILL_HTTP_ALLOW_PRIVATE to allow it"
        )


def check_url(url: str, *, allow_private: bool) -> Target:
    """What can be decided without DNS: the scheme, and a host that is an IP address (in any
    spelling) or a name reserved for this machine (`localhost`)."""
    target = parse(url)
    if allow_private:
        return target
    if target.address is not None:
        check_address(target.host, target.address)
    name = target.host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise DestinationRefused(
            f"{target.host} is this machine; set TASKMILL_HTTP_ALLOW_PRIVATE to allow it"
        )
    return target
