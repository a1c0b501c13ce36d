"""Secrets Manager's GetSecretValue over HTTPS, signed with Signature Version 4: the one AWS
call every function makes at start-up, without boto3.

Importing boto3 and creating a client (service model, endpoint rules) costs 110-250 ms of a
cold start, measured from the bundle as deployed (`bench/bench_cold_start.py`), for a call
that is one signed POST. This client makes that POST with the standard library. It is used
in Lambda, where the function's credentials are always in the environment; anywhere else
(a profile, SSO, an instance role, FIPS or dual-stack endpoints) `taskmill.secrets` uses
boto3 as before. Timeouts and retries are the platform's (`taskmill.aws`): 2 s to connect,
5 s to read, 2 attempts, a jittered pause under 1 s between them.

The signature is checked against botocore's signer in `tests/unit/test_secrets_http.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from taskmill.aws import CONNECT_TIMEOUT_SECONDS, MAX_ATTEMPTS, READ_TIMEOUT_SECONDS

SERVICE = "secretsmanager"
TARGET = "secretsmanager.GetSecretValue"
CONTENT_TYPE = "application/x-amz-json-1.1"
# Answers worth a second attempt (standard retry mode's transient and throttling errors).
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
# What a kept-alive connection the other end has closed raises on its next use.
CLOSED_BY_PEER = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)


class AwsCallFailed(Exception):
    """Secrets Manager refused the call or could not be reached."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, secret_key='**********')"


def credentials_from_environment(environ: Mapping[str, str]) -> Credentials | None:
    access_key = environ.get("AWS_ACCESS_KEY_ID")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        return None
    return Credentials(access_key, secret_key, environ.get("AWS_SESSION_TOKEN") or None)


def default_endpoint(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{SERVICE}.{region}.{suffix}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    *,
    host: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """The headers of a signed `POST /` (no query string): `headers` plus Host, X-Amz-Date,
    X-Amz-Security-Token (temporary credentials) and Authorization. Every header is signed."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {**headers, "Host": host, "X-Amz-Date": amz_date}
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    canonical = {name.lower(): " ".join(value.strip().split()) for name, value in signed.items()}
    names = sorted(canonical)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + credentials.secret_key).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return signed


class SecretsManagerHttp:
    """The `get_secret_value(SecretId=...)` of a boto3 Secrets Manager client, and nothing
    else. One connection, kept alive and shared by the secrets of a container."""

    def __init__(
        self,
        *,
        region: str,
        endpoint: str | None = None,
        credentials: Callable[[], Credentials | None] = lambda: credentials_from_environment(
            os.environ
        ),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint or default_endpoint(region)
        url = urlsplit(self.endpoint)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ValueError(f"not an endpoint URL: {endpoint!r}")
        self.region = region
        self._secure = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port
        # The Host header carries the port only when it is not the scheme's default.
        self._host_header = url.netloc.rpartition("@")[2]
        self._credentials = credentials
        self._clock = clock
        self._sleep = sleep
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SecretsManagerHttp | None:
        """The client Lambda's environment allows, or None where boto3 must decide (outside
        Lambda, no credentials in the environment, FIPS or dual-stack endpoints asked for)."""
        if not environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            return None
        if credentials_from_environment(environ) is None:
            return None
        if any(
            environ.get(flag, "").lower() == "true"
            for flag in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
        ):
            return None
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if not region:
            return None
        endpoint = environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or environ.get(
            "AWS_ENDPOINT_URL"
        )
        return cls(
            region=region,
            endpoint=endpoint,
            credentials=lambda: credentials_from_environment(environ),
        )

    def get_secret_value(self, *, SecretId: str) -> dict[str, Any]:
        body = json.dumps({"SecretId": SecretId}).encode()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._call(body)
            except AwsCallFailed as exc:
                retryable = exc.status is None or exc.status in RETRYABLE_STATUSES
                if not (retryable or exc.code in THROTTLING_CODES) or attempt == MAX_ATTEMPTS:
                    raise
            # Standard retry mode's first backoff: a random pause of up to 1 s.
            self._sleep(random.uniform(0, 1))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")

    def _call(self, body: bytes) -> dict[str, Any]:
        credentials = self._credentials()
        if credentials is None:
            raise AwsCallFailed("no AWS credentials in the environment", code="NoCredentials")
        headers = sign(
            host=self._host_header,
            headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET},
            body=body,
            credentials=credentials,
            region=self.region,
            service=SERVICE,
            now=self._clock(),
        )
        with self._lock:
            reused = self._connection is not None
            try:
                try:
                    status, payload = self._exchange(body, headers)
                except CLOSED_BY_PEER:
                    if not reused:
                        raise
                    # A kept-alive connection the endpoint has closed since: once more on a
                    # new one, within the same attempt (the call only reads). Timeouts are
                    # not retried here, so a call stays within taskmill.aws's worst case.
                    self._close()
                    status, payload = self._exchange(body, headers)
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                raise AwsCallFailed(f"Secrets Manager unreachable: {exc!r}") from exc
        try:
            answer = json.loads(payload) if payload else {}
        except ValueError:
            answer = {}
        if status == 200 and isinstance(answer, dict):
            return answer
        code = str(answer.get("__type", "")).rpartition("#")[2] if isinstance(answer, dict) else ""
        message = answer.get("message") or answer.get("Message") if isinstance(answer, dict) else ""
        raise AwsCallFailed(
            f"GetSecretValue answered {status} {code}: {message or ''}".strip(),
            code=code or None,
            status=status,
        )

    def _exchange(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = self._connect()
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        status, payload = response.status, response.read()
        if response.will_close:
            self._close()
        return status, payload

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            connection: http.client.HTTPConnection
            if self._secure:
                import ssl  # only for HTTPS (always, in AWS)

                connection = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    context=ssl.create_default_context(),
                )
            else:
                connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=CONNECT_TIMEOUT_SECONDS
                )
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(READ_TIMEOUT_SECONDS)
            self._connection = connection
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
