"""Where the database URL comes from: a plain URL locally, the RDS secret in AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from psycopg.conninfo import make_conninfo

from taskmill.db.connection import Database
from taskmill.secrets import Secret
from taskmill.settings import DatabaseSettings


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


def database_secret(settings: DatabaseSettings) -> Secret:
    return Secret.from_settings("DATABASE_URL", settings.database_url, settings.db_secret_arn)


def conninfo_source(settings: DatabaseSettings, secret: Secret | None = None) -> Callable[[], str]:
    """Where to connect: the URL, or (in AWS) the RDS secret, read through the secret's
    cache at each connect so a rotated password is picked up."""
    source = secret or database_secret(settings)
    if settings.database_url is not None:
        return source.get

    def conninfo_from_secrets_manager() -> str:
        return conninfo_from_secret(
            json.loads(source.get()), host=settings.db_proxy_host, sslmode=settings.db_sslmode
        )

    return conninfo_from_secrets_manager


def database_from_settings(
    settings: DatabaseSettings, *, application_name: str, secret: Secret | None = None
) -> Database:
    """A `Database` that opens its connection on first use. A failed connect forgets the
    cached secret, so a password rotated since it was read is re-read on the next try."""
    source = secret or database_secret(settings)
    return Database(
        conninfo_source(settings, source),
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        application_name=application_name,
        on_connect_error=source.invalidate,
    )
