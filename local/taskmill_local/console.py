"""The web console's static files at /console on the local API's origin: what S3 and
CloudFront serve in AWS, with the same security headers, and a config.json that points the
console at this origin."""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path

# The checkout's console/ (two levels up), or the copy an installed wheel carries (setup.py).
_CHECKOUT_CONSOLE = Path(__file__).resolve().parents[2] / "console"
CONSOLE_DIR = (
    _CHECKOUT_CONSOLE
    if (_CHECKOUT_CONSOLE / "index.html").is_file()
    else Path(__file__).resolve().parent / "console_static"
)
PREFIX = "/console"

# Same policy as the CloudFront response headers policy (taskmill_cdk/console.py), with the API
# on this origin: nothing is loaded from anywhere else, no inline script or style.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The local stack's API is this origin: an empty apiUrl means "the page's own".
LOCAL_CONFIG = json.dumps({"apiUrl": ""}).encode()


@dataclass(frozen=True)
class StaticAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _answer(status: int, content_type: str, body: bytes, cache: str) -> StaticAnswer:
    headers = {"Content-Type": content_type, "Cache-Control": cache, **SECURITY_HEADERS}
    return StaticAnswer(status, headers, body)


def serve(path: str, root: Path = CONSOLE_DIR) -> StaticAnswer:
    """The answer to GET `path` (under /console). Files are read from `root` on every
    request (edit and reload); nothing outside it is served."""
    if path == PREFIX:
        # Relative asset URLs resolve against /console/, so send the browser there.
        answer = _answer(308, "text/plain; charset=utf-8", b"", "no-cache")
        return StaticAnswer(308, {**answer.headers, "Location": PREFIX + "/"}, b"")
    relative = path[len(PREFIX) + 1 :] or "index.html"
    if relative == "config.json":
        return _answer(200, "application/json", LOCAL_CONFIG, "no-store")
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return _answer(404, "text/plain; charset=utf-8", b"not found\n", "no-cache")
    content_type = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
    # No-cache: the browser revalidates, so an edited file shows on the next reload.
    return _answer(200, content_type or "application/octet-stream", target.read_bytes(), "no-cache")
