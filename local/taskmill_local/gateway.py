"""An API Gateway emulation: HTTP in, REST proxy event to the real authorizer and API
handlers, HTTP out (status, headers, base64 bodies), with an authorizer cache like API
Gateway's (per token, TTL)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from taskmill.api.gateway_responses import (
    ACCESS_DENIED,
    MIN_COMPRESSION_BYTES,
    TOO_LARGE,
    UNAUTHORIZED,
    UNAVAILABLE,
    GatewayError,
)
from taskmill.api.public import is_public
from taskmill.auth.authorizer import AuthorizerDenied

from taskmill_local import console
from taskmill_local.lambda_runtime import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
STAGE = "local"
API_ID = "local"
ARN_PREFIX = f"arn:aws:execute-api:local:000000000000:{API_ID}/{STAGE}"
# The methods the API serves (API Gateway's ANY, less HEAD, which no route answers).
SERVED_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
ALLOW = ", ".join(SERVED_METHODS)
_CONTENT_LENGTH = re.compile(r"[0-9]+")
logger = logging.getLogger("taskmill_local.gateway")

# What the gateway answers itself when the HTTP framing is wrong. In AWS, API Gateway's own
# front door answers these; here they come in the same envelope as every other error, and
# the connection is closed after them (where a body ends is unknown).
BAD_CONTENT_LENGTH = GatewayError(
    400, "invalid_request", "Content-Length must be one non-negative whole number"
)
INCOMPLETE_BODY = GatewayError(
    400, "invalid_request", "the body is shorter than its Content-Length (or stopped arriving)"
)
LENGTH_REQUIRED = GatewayError(
    411, "length_required", "send the body with a Content-Length (no Transfer-Encoding)"
)
METHOD_NOT_ALLOWED = GatewayError(405, "method_not_allowed", f"the API serves {ALLOW}")
# http.server's own refusals (see `RequestHandler.send_error`), by status.
_SERVER_CODES = {
    414: "uri_too_long",
    431: "headers_too_large",
    505: "http_version_not_supported",
}


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header names gzip with a quality above zero (API Gateway
    does not compress for `*` or no header)."""
    for coding in accept_encoding.split(","):
        name, _, parameters = coding.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name.strip().lower() in ("gzip", "x-gzip") and quality > 0:
            return True
    return False


def header(headers: dict[str, str], name: str) -> str:
    """A request header's value whatever case the client spelt its name in (names are
    case-insensitive, and HTTP/2 clients send them all in lower case); "" when absent."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")


def _compressed(request_headers: dict[str, str], headers: dict[str, str], data: bytes) -> bytes:
    """What API Gateway does with minimumCompressionSize set: gzip an answer of at least
    MIN_COMPRESSION_BYTES for a client that asks for gzip, unless it is encoded already."""
    accept = header(request_headers, "Accept-Encoding")
    if (
        len(data) < MIN_COMPRESSION_BYTES
        or not accepts_gzip(accept)
        or any(name.lower() == "content-encoding" for name in headers)
    ):
        return data
    headers["Content-Encoding"] = "gzip"
    return gzip.compress(data, compresslevel=6)


class AuthorizerCache:
    """API Gateway's per-token cache of authorizer answers (the stage's TTL, 60 s), bounded:
    every distinct token is an entry, so a client sending junk tokens would otherwise grow
    it without end. Least recently used entries go first, and tokens are kept as digests,
    so an entry costs the same however long the token."""

    def __init__(self, ttl_seconds: float = 60, max_entries: int = 1024) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> tuple[bool, dict[str, Any] | None]:
        key = self._key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, entry[1]

    def put(self, token: str, policy: dict[str, Any] | None) -> None:
        key = self._key(token)
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, policy)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def _allows(policy: dict[str, Any], method: str, path: str) -> bool:
    arn = f"{ARN_PREFIX}/{method}{path}"
    allowed = False
    for statement in policy.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource")
        for resource in [resources] if isinstance(resources, str) else resources or []:
            prefix = resource.split("*", 1)[0]
            if arn.startswith(prefix) or resource == arn:
                if statement.get("Effect") == "Deny":
                    return False
                allowed = True
    return allowed


def rest_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    authorizer: dict[str, Any] | None,
    source_ip: str = "127.0.0.1",
    multi_headers: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """`headers`: one value per name, the last one sent (as API Gateway's `headers`);
    `multi_headers`: every value of each (its `multiValueHeaders`), when some came twice."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    text_types = ("json", "text", "xml", "x-www-form-urlencoded")
    is_text = not body or any(t in header(headers, "Content-Type") for t in text_types)
    if is_text and body:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            is_text = False  # passed on as base64; the API refuses what is not UTF-8
    request_id = str(uuid.uuid4())
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers or {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": parts.path,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "accountId": "000000000000",
            "apiId": API_ID,
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": header(headers, "User-Agent") or None},
            "authorizer": authorizer,
        },
        "body": (body.decode() if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


class Gateway:
    def __init__(
        self,
        api: Handler,
        authorizer: Handler,
        *,
        host: str,
        port: int,
        max_body_bytes: int = 10 * 1024 * 1024,
        read_timeout_seconds: float = 30.0,
        cors_preflight: bool = True,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.api = api
        # Whether API Gateway would answer OPTIONS itself, without the authorizer: it does
        # when the API has CORS origins (a mock preflight on every resource); without them
        # an OPTIONS is one more method of the protected ANY, as here.
        self.cors_preflight = cors_preflight
        # The API's CORS origins, for the errors the gateway answers itself (API Gateway's
        # gateway responses carry them too: infra/taskmill_cdk/api.py).
        self.cors_origins = tuple(cors_origins)
        self.authorizer = authorizer
        self.cache = AuthorizerCache()
        # Lambda gives a container one event at a time, and the handlers rely on it (the
        # resolver keeps the current event and route on the app). Connections are served on
        # threads of their own here, so each function is entered by one of them at a time:
        # one container per function, as a stage with little traffic has.
        self._api_lock = threading.Lock()
        self._authorizer_lock = threading.Lock()
        self.max_body_bytes = max_body_bytes
        # How long a body may stop arriving before the request is answered 400: a client
        # that sends less than its Content-Length must not hold a thread forever.
        self.read_timeout_seconds = read_timeout_seconds
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                # One line per request with TASKMILL_LOG_LEVEL=debug; silent otherwise.
                logger.debug("%s %s", self.address_string(), format % args)

            def _serve(self) -> None:
                if console.is_console(urlsplit(self.path).path):
                    gateway.serve_console(self)
                else:
                    gateway.serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

            def _not_served(self) -> None:
                gateway.refuse(self, METHOD_NOT_ALLOWED, {"Allow": ALLOW})

            def do_HEAD(self) -> None:
                if console.is_console(urlsplit(self.path).path):
                    gateway.serve_console(self)
                else:
                    self._not_served()

            # Methods HTTP defines that no route serves: 405 (unknown ones too, below).
            do_TRACE = do_CONNECT = _not_served

            def send_error(
                self, code: int, message: str | None = None, explain: str | None = None
            ) -> None:
                # http.server's own refusals (a malformed request line or header, an unknown
                # method, an unsupported version), in the envelope instead of an HTML page.
                if self.request_version == "HTTP/0.9":
                    self.request_version = "HTTP/1.0"  # else no status line would be written
                if code == HTTPStatus.NOT_IMPLEMENTED:
                    # A method no handler knows (http.server's 501): a client's mistake, a 4xx
                    # like API Gateway's answer to a method no route has, and no 5xx to count
                    # against the API's alarms.
                    self._not_served()
                    return
                reason = message or self.responses.get(code, ("the request is invalid",))[0]
                gateway.refuse(
                    self, GatewayError(code, _SERVER_CODES.get(code, "invalid_request"), reason)
                )

        self.server = ThreadingHTTPServer((host, port), RequestHandler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="gateway", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve_console(self, request: BaseHTTPRequestHandler) -> None:
        """The console's static files (CloudFront and S3 in AWS): GET and HEAD only, no
        authorizer (the files are public; the data behind them is not)."""
        if request.command not in ("GET", "HEAD"):
            self.refuse(
                request,
                GatewayError(405, "method_not_allowed", "the console serves GET and HEAD"),
                {"Allow": "GET, HEAD"},
            )
            return
        answer = console.serve(urlsplit(request.path).path)
        self._reply(request, answer.status, answer.headers, answer.body)

    def _authorize(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any] | None]:
        token = header(headers, "Authorization")
        if not token:
            return 401, None
        hit, policy = self.cache.get(token)
        if not hit:
            event = {
                "type": "TOKEN",
                "authorizationToken": token,
                "methodArn": f"{ARN_PREFIX}/{method}{path}",
            }
            try:
                with self._authorizer_lock:
                    policy = self.authorizer(event, LocalContext("taskmill-authorizer", 10))
            except AuthorizerDenied:
                policy = None
            self.cache.put(token, policy)
        if policy is None:
            return 401, None
        if not _allows(policy, method, path):
            return 403, None
        return 200, {**policy.get("context", {}), "principalId": policy.get("principalId")}

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        method = request.command
        path = urlsplit(request.path).path
        # As API Gateway: the last value of a header sent twice in `headers`, all of them in
        # `multiValueHeaders` (the API refuses a repeated Idempotency-Key rather than guess).
        headers = {k: v for k, v in request.headers.items()}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            multi_headers.setdefault(name, []).append(value)
        if "Transfer-Encoding" in request.headers:
            self.refuse(request, LENGTH_REQUIRED)
            return
        lengths = request.headers.get_all("Content-Length") or []
        if len(lengths) > 1 or not all(_CONTENT_LENGTH.fullmatch(v.strip()) for v in lengths):
            self.refuse(request, BAD_CONTENT_LENGTH)
            return
        length = int(lengths[0]) if lengths else 0
        if length > self.max_body_bytes:
            self.refuse(request, TOO_LARGE)
            return
        body = self._read_body(request, length)
        if body is None:
            self.refuse(request, INCOMPLETE_BODY)
            return
        try:
            response = self._invoke(request, method, path, headers, body, multi_headers)
        except Exception:
            # The Lambda boundary: API Gateway answers a failed authorizer or function
            # invocation itself (its DEFAULT_5XX response), so the client gets that answer
            # here too instead of a dropped connection; the stack trace goes to the log.
            logger.exception("a handler failed")
            self.refuse(request, UNAVAILABLE)
            return
        if response is None:
            return
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(str(v) for v in values)
        payload = response.get("body") or ""
        data = (
            base64.b64decode(payload) if response.get("isBase64Encoded") else str(payload).encode()
        )
        data = _compressed(headers, out_headers, data)
        self._reply(request, int(response.get("statusCode", 502)), out_headers, data)

    def _invoke(
        self,
        request: BaseHTTPRequestHandler,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        multi_headers: dict[str, list[str]] | None = None,
    ) -> dict[str, Any] | None:
        """The API function's answer, or None when the authorizer step answered already."""
        authorizer = None
        if not is_public(method, path) and not (method == "OPTIONS" and self.cors_preflight):
            status, authorizer = self._authorize(method, path, headers)
            if status != 200:
                error = UNAUTHORIZED if status == 401 else ACCESS_DENIED
                self._reply(
                    request,
                    status,
                    {"Content-Type": "application/json", **self._cors(request)},
                    error.body().encode(),
                )
                return None
        # The peer's address, as API Gateway reports it (login throttling keys on it).
        event = rest_event(
            method,
            request.path,
            headers,
            body,
            authorizer,
            source_ip=request.client_address[0],
            multi_headers=multi_headers,
        )
        with self._api_lock:
            return self.api(event, LocalContext("taskmill-api", 29))

    def _read_body(self, request: BaseHTTPRequestHandler, length: int) -> bytes | None:
        """The body, or None if the client sent less than `length` and stopped."""
        if not length:
            return b""
        request.connection.settimeout(self.read_timeout_seconds)
        try:
            body = request.rfile.read(length)
        except TimeoutError:
            return None
        finally:
            # Idle keep-alive connections wait as long as before.
            request.connection.settimeout(None)
        return body if len(body) == length else None

    def refuse(
        self,
        request: BaseHTTPRequestHandler,
        error: GatewayError,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer `error` in the envelope and close the connection: after a framing error
        the rest of the stream cannot be trusted to start a request."""
        self._reply(
            request,
            error.status,
            {
                "Content-Type": "application/json",
                **self._cors(request),
                **(headers or {}),
                "Connection": "close",
            },
            error.body().encode(),
        )

    def _cors(self, request: BaseHTTPRequestHandler) -> dict[str, str]:
        """The CORS headers of an error the gateway answers itself, so a browser app on an
        allowed origin reads the envelope (a 401 that says to sign in again) instead of a
        bare CORS failure. None for another origin."""
        # A request line too malformed to parse leaves no headers to read.
        headers = getattr(request, "headers", None)
        origin = headers.get("Origin") if headers is not None else None
        if not origin or not self.cors_origins:
            return {}
        if "*" in self.cors_origins:
            return {"Access-Control-Allow-Origin": "*"}
        if origin in self.cors_origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":  # a HEAD answer has headers only
            request.wfile.write(body)
