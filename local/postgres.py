"""Embedded Postgres (pgserver) for the local stack and the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@contextmanager
def embedded_postgres(data_dir: Path, *, keep_data: bool = True) -> Iterator[str]:
    """Start (or reuse) a Postgres server with its data in `data_dir`; yield its URL.

    The server is stopped when the block exits; with `keep_data=False` its data directory
    is deleted too (tests), otherwise a later start finds the same data (`make run`).
    """
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop" if keep_data else "delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def with_database(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname", "postgres"))


def create_database(url: str, dbname: str, *, template: str | None = None) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY WAL_LOG").format(
                sql.Identifier(dbname), sql.Identifier(template)
            )
        conn.execute(query)
    return with_database(url, dbname)


def drop_database(url: str, dbname: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def ensure_database(url: str, dbname: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    return with_database(url, dbname) if exists else create_database(url, dbname)
