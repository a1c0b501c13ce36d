"""The boto3-free Secrets Manager client: its signature is botocore's, byte for byte; it is
chosen only where Lambda's environment makes it safe; it retries what boto3 would retry."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import pytest
from taskmill.secrets_http import (
    AwsCallFailed,
    Credentials,
    SecretsManagerHttp,
    credentials_from_environment,
    sign,
)

NOW = datetime(2026, 11, 23, 12, 34, 56, tzinfo=UTC)
BODY = b'{"SecretId": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt-AbCdEf"}'


def botocore_authorization(
    url: str, credentials: Credentials, region: str, body: bytes = BODY
) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
    )
    signer = SigV4Auth(
        BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token),
        "secretsmanager",
        region,
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        signer.add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDGV4YW1wbGV0b2tlbg=="])
@pytest.mark.parametrize(
    ("url", "host"),
    [
        (
            "https://secretsmanager.eu-west-1.amazonaws.com/",
            "secretsmanager.eu-west-1.amazonaws.com",
        ),
        ("http://127.0.0.1:18231/", "127.0.0.1:18231"),
    ],
)
def test_the_signature_is_botocores(token: str | None, url: str, host: str) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ours = sign(
        host=host,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
        body=BODY,
        credentials=credentials,
        region="eu-west-1",
        service="secretsmanager",
        now=NOW,
    )
    theirs = botocore_authorization(url, credentials, "eu-west-1")
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20261123T123456Z"
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token") == token


LAMBDA = {
    "AWS_LAMBDA_FUNCTION_NAME": "taskmill-dev-api",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKID",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
    "AWS_SESSION_TOKEN": "token",
}


def test_used_in_lambda_only_and_never_where_boto3_must_decide() -> None:
    client = SecretsManagerHttp.from_environment(LAMBDA)
    assert client is not None
    assert client.endpoint == "https://secretsmanager.eu-west-1.amazonaws.com"
    outside = {k: v for k, v in LAMBDA.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    assert SecretsManagerHttp.from_environment(outside) is None
    no_keys = {k: v for k, v in LAMBDA.items() if k != "AWS_SECRET_ACCESS_KEY"}
    assert SecretsManagerHttp.from_environment(no_keys) is None
    for flag in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):
        assert SecretsManagerHttp.from_environment({**LAMBDA, flag: "true"}) is None
    china = SecretsManagerHttp.from_environment({**LAMBDA, "AWS_REGION": "cn-north-1"})
    assert china is not None
    assert china.endpoint == "https://secretsmanager.cn-north-1.amazonaws.com.cn"
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        local = SecretsManagerHttp.from_environment({**LAMBDA, variable: "http://127.0.0.1:5"})
        assert local is not None
        assert local.endpoint == "http://127.0.0.1:5"


def test_credentials_come_from_the_environment_and_never_print_the_key() -> None:
    credentials = credentials_from_environment(LAMBDA)
    assert credentials == Credentials("AKID", "wJalrXUtnFEMI", "token")
    assert "wJalrXUtnFEMI" not in repr(credentials)
    assert credentials_from_environment({}) is None


class FakeSecretsManager(BaseHTTPRequestHandler):
    """Answers from the server's `answers` list, one per request; records what it got."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        server: Any = self.server
        length = int(self.headers["Content-Length"])
        server.requests.append((dict(self.headers.items()), json.loads(self.rfile.read(length))))
        status, payload = server.answers.pop(0)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        # Closing without saying so, as an endpoint does to a connection left idle.
        self.close_connection = bool(getattr(server, "drop_connections", False))

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def fake() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), FakeSecretsManager)
    server.requests, server.answers = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client_of(server: Any, pauses: list[float]) -> SecretsManagerHttp:
    return SecretsManagerHttp(
        region="eu-west-1",
        endpoint=f"http://127.0.0.1:{server.server_address[1]}",
        credentials=lambda: Credentials("AKID", "secret", "token"),
        sleep=pauses.append,
    )


def test_a_secret_is_read_with_one_signed_call(fake: Any) -> None:
    fake.answers = [(200, {"SecretString": "s3cret", "Name": "jwt"})]
    pauses: list[float] = []
    answer = client_of(fake, pauses).get_secret_value(SecretId="arn:jwt")
    assert answer["SecretString"] == "s3cret"
    [(headers, body)] = fake.requests
    assert body == {"SecretId": "arn:jwt"}
    assert headers["X-Amz-Target"] == "secretsmanager.GetSecretValue"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert headers["X-Amz-Security-Token"] == "token"
    assert pauses == []


def test_a_server_error_or_throttling_is_tried_once_more_after_a_short_pause(fake: Any) -> None:
    fake.answers = [
        (503, {"__type": "ServiceUnavailable"}),
        (200, {"SecretString": "a"}),
        (400, {"__type": "com.amazon#ThrottlingException", "message": "slow down"}),
        (200, {"SecretString": "b"}),
    ]
    pauses: list[float] = []
    client = client_of(fake, pauses)
    assert client.get_secret_value(SecretId="x")["SecretString"] == "a"
    assert client.get_secret_value(SecretId="x")["SecretString"] == "b"
    assert len(fake.requests) == 4
    assert len(pauses) == 2
    assert all(0 <= p <= 1 for p in pauses)


def test_a_kept_alive_connection_the_endpoint_closed_is_reopened_at_once(fake: Any) -> None:
    fake.drop_connections = True
    fake.answers = [(200, {"SecretString": "a"}), (200, {"SecretString": "b"})]
    pauses: list[float] = []
    client = client_of(fake, pauses)
    assert client.get_secret_value(SecretId="x")["SecretString"] == "a"
    assert client.get_secret_value(SecretId="y")["SecretString"] == "b"
    assert [body["SecretId"] for _, body in fake.requests] == ["x", "y"]
    assert pauses == []  # not a failed attempt: no backoff


def test_one_connection_serves_the_containers_secrets(fake: Any) -> None:
    fake.answers = [(200, {"SecretString": "a"}), (200, {"SecretString": "b"})]
    client = client_of(fake, [])
    client.get_secret_value(SecretId="x")
    first = client._connection
    client.get_secret_value(SecretId="y")
    assert first is not None
    assert client._connection is first


def test_a_refusal_is_not_retried_and_says_why(fake: Any) -> None:
    fake.answers = [(400, {"__type": "ResourceNotFoundException", "message": "no such secret"})]
    pauses: list[float] = []
    with pytest.raises(AwsCallFailed, match="ResourceNotFoundException") as raised:
        client_of(fake, pauses).get_secret_value(SecretId="gone")
    assert raised.value.status == 400
    assert len(fake.requests) == 1
    assert pauses == []


def test_two_attempts_at_most_when_nothing_answers() -> None:
    with socket_that_refuses() as port:
        pauses: list[float] = []
        client = SecretsManagerHttp(
            region="eu-west-1",
            endpoint=f"http://127.0.0.1:{port}",
            credentials=lambda: Credentials("AKID", "secret"),
            sleep=pauses.append,
        )
        with pytest.raises(AwsCallFailed, match="unreachable"):
            client.get_secret_value(SecretId="x")
        assert len(pauses) == 1


@contextmanager
def socket_that_refuses() -> Iterator[int]:
    """A port nothing listens on (bound, never listening, so connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
