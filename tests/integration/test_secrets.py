"""Secrets as a value or a Secrets Manager ARN (moto), cached with a max age."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from psycopg.conninfo import conninfo_to_dict
from taskmill.db.credentials import database_from_settings
from taskmill.errors import DependencyUnavailable, SettingsError
from taskmill.secrets import Secret, secrets_manager_client
from taskmill.secrets_http import SecretsManagerHttp
from taskmill.settings import DatabaseSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_plain_value_is_used_as_it_is() -> None:
    assert Secret("X", value="local").get() == "local"
    with pytest.raises(SettingsError, match="X is not configured"):
        Secret("X").get()


def test_an_arn_is_read_once_then_again_after_its_max_age(aws: None) -> None:
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="key", SecretString="first")["ARN"]
    clock = Clock()
    secret = Secret("KEY", arn=arn, max_age_seconds=300, clock=clock)
    assert secret.get() == "first"
    client.put_secret_value(SecretId=arn, SecretString="rotated")
    clock.now = 299
    assert secret.get() == "first"  # cached: no call per use
    clock.now = 300
    assert secret.get() == "rotated"
    client.put_secret_value(SecretId=arn, SecretString="again")
    secret.invalidate()
    assert secret.get() == "again"


def test_secrets_manager_trouble_is_a_dependency_error(aws: None) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
    with pytest.raises(DependencyUnavailable, match="did not return KEY"):
        Secret("KEY", arn=missing).get()


def test_the_database_follows_a_rotated_password(aws: None, database_url: str) -> None:
    """The cached secret is re-read after a refused connect, not only after its max age."""
    parts = conninfo_to_dict(database_url)
    secret: dict[str, Any] = {
        "host": parts.get("host"),
        "port": parts.get("port", 5432),
        "username": parts.get("user"),
        "password": parts.get("password") or "",
        "dbname": "no_such_database",  # what a stale secret looks like: the connect fails
    }
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="db", SecretString=json.dumps(secret))["ARN"]
    settings = DatabaseSettings(db_secret_arn=arn, db_sslmode="disable")
    db = database_from_settings(settings, application_name="test")
    with pytest.raises(DependencyUnavailable):
        db.execute("SELECT 1")
    client.put_secret_value(
        SecretId=arn, SecretString=json.dumps({**secret, "dbname": parts["dbname"]})
    )
    assert db.execute("SELECT 1 AS ok") == [{"ok": 1}]
    db.close()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server: Secrets Manager over real HTTP, as the boto3-free client speaks it."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def in_lambda(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment Lambda gives a function (credentials as variables), with the
    endpoint pointed at moto; returns a boto3 client to set secrets up with."""
    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": "taskmill-test-api",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")


def test_in_lambda_secrets_are_read_without_boto3(in_lambda: Any) -> None:
    client = secrets_manager_client()
    assert isinstance(client, SecretsManagerHttp)
    assert secrets_manager_client() is client  # one connection for the container's secrets
    jwt = in_lambda.create_secret(Name="jwt-http", SecretString="k" * 48)["ARN"]
    db = in_lambda.create_secret(Name="db-http", SecretString='{"host": "h"}')["ARN"]
    assert Secret("JWT", arn=jwt).get() == "k" * 48
    assert json.loads(Secret("DB", arn=db).get()) == {"host": "h"}
    in_lambda.put_secret_value(SecretId=jwt, SecretString="rotated" * 8)
    secret = Secret("JWT", arn=jwt)
    assert secret.get() == "rotated" * 8


def test_in_lambda_a_missing_secret_is_a_dependency_error(in_lambda: Any) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
    with pytest.raises(DependencyUnavailable, match="did not return KEY"):
        Secret("KEY", arn=missing).get()
