"""Where the database URL comes from: a plain URL locally, the RDS secret in AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from psycopg.conninfo import make_conninfo

from taskmill.db.connection import Database
from taskmill.settings import DatabaseSettings


def default_secrets_client() -> Any:
    import boto3

    return boto3.client("secretsmanager")


def conninfo_from_secret(secret: dict[str, Any], *, host: str | None, sslmode: str) -> str:
    """Build a conninfo from the RDS-generated secret; `host` replaces its host when the
    functions go through RDS Proxy."""
    return make_conninfo(
        host=host or secret["host"],
        port=str(secret.get("port", 5432)),
        user=secret["username"],
        password=secret["password"],
        dbname=secret.get("dbname", "taskmill"),
        sslmode=sslmode,
    )


def conninfo_source(
    settings: DatabaseSettings,
    secrets_client_factory: Callable[[], Any] = default_secrets_client,
) -> Callable[[], str]:
    """Where to connect: the URL, or (in AWS) the RDS secret read at each call, so a rotated
    password is picked up by the next connect."""
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        return lambda: url
    arn = settings.db_secret_arn

    def conninfo_from_secrets_manager() -> str:
        response = secrets_client_factory().get_secret_value(SecretId=arn)
        return conninfo_from_secret(
            json.loads(response["SecretString"]),
            host=settings.db_proxy_host,
            sslmode=settings.db_sslmode,
        )

    return conninfo_from_secrets_manager


def database_from_settings(
    settings: DatabaseSettings,
    *,
    application_name: str,
    secrets_client_factory: Callable[[], Any] = default_secrets_client,
) -> Database:
    """A `Database` that opens its connection on first use."""
    conninfo = conninfo_source(settings, secrets_client_factory)
    return Database(
        conninfo,
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        application_name=application_name,
    )
