"""A database as a deployment left it before a given migration: for the tests of what a
migration does to the rows an older version wrote."""

from __future__ import annotations

import psycopg
from taskmill.db.migrate import available_migrations


def migrate_below(conn: psycopg.Connection, version: int) -> None:
    """Apply and record every migration below `version`, as `migrate` would have."""
    conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for migration in available_migrations():
        if migration.version >= version:
            continue
        conn.execute(migration.sql.encode())
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
            (migration.version, migration.name),
        )
