"""Versioned SQL migrations shipped in the package, applied once under an advisory lock.

Two Lambdas cold-starting together (or the deploy-time migration function racing a
laptop) both call `migrate`; the advisory lock serialises them and the second finds
nothing left to do.

Each migration runs with a short `lock_timeout`. A migration that needs a lock a long
transaction holds (an `ALTER TABLE jobs` behind a slow report) would otherwise wait for it
indefinitely, and Postgres queues every later request for that table behind the waiting one:
the API's and the workers' queries would stop until the long transaction ended. Giving up
after a few seconds lets them through; the migration is retried with backoff and, still
blocked, fails naming itself so the deploy can be run again at a quieter moment.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import cast

import psycopg

from taskmill.db.connection import translate_errors
from taskmill.errors import LockTimeout

# Arbitrary but fixed: "taskmill" in ASCII, truncated to a bigint.
MIGRATION_LOCK_KEY = 0x7461736B6D696C6C
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_TIMEOUT_MS = 3000
LOCK_ATTEMPTS = 5
# Waits between attempts: 1, 2, 4, 8 s; with 3 s per attempt a blocked migration fails
# after about 30 s, well inside the deploy-time function's 5 minutes.
LOCK_BACKOFF_SECONDS = 1.0
# How long a run waits for another run's migration lock before it gives up, naming who holds
# it: below the deploy-time function's 5 minutes, which otherwise ended the wait in a timeout
# with no word of why (an orphaned run's statement goes on in Postgres after its process died).
RUN_LOCK_WAIT_SECONDS = 240.0
RUN_LOCK_POLL_SECONDS = 0.5
RUN_LOCK_REPORT_SECONDS = 15.0


class MigrationBlocked(RuntimeError):
    """A migration could not take its locks in any attempt; nothing of it was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("taskmill.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migration files share a version number")
    return sorted(found, key=lambda m: m.version)


def migrate(
    conninfo: str,
    *,
    migrations: Sequence[Migration] | None = None,
    lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    attempts: int = LOCK_ATTEMPTS,
    backoff_seconds: float = LOCK_BACKOFF_SECONDS,
    run_lock_wait_seconds: float = RUN_LOCK_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    logger: logging.Logger | None = None,
) -> list[int]:
    """Apply pending migrations; returns the versions this call applied. Raises
    `MigrationBlocked` when one of them could not take its locks (the ones before it stay
    applied)."""
    log = logger or logging.getLogger("taskmill.migrations")
    applied_now: list[int] = []
    with translate_errors(), psycopg.connect(conninfo, autocommit=True) as conn:
        _take_run_lock(conn, run_lock_wait_seconds, sleep, log)
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
            recorded = {cast(int, version): cast(str, name) for version, name in rows}
            done = set(recorded)
            pending = available_migrations() if migrations is None else list(migrations)
            _warn_if_ahead(log, recorded, {m.version for m in pending})
            for migration in pending:
                if migration.version in done:
                    continue
                for attempt in range(1, attempts + 1):
                    try:
                        _apply(conn, migration, lock_timeout_ms)
                        break
                    except LockTimeout as exc:
                        label = f"{migration.version:04d}_{migration.name}"
                        if attempt == attempts:
                            raise MigrationBlocked(
                                f"migration {label} could not take its locks in {attempts} "
                                f"attempts of {lock_timeout_ms} ms: a long transaction holds "
                                "a table it changes (see pg_locks); nothing of it was applied"
                            ) from exc
                        delay = backoff_seconds * 2 ** (attempt - 1)
                        log.warning(
                            "migration %s waited %d ms for a lock; retrying in %.1f s",
                            label,
                            lock_timeout_ms,
                            delay,
                        )
                        sleep(delay)
                applied_now.append(migration.version)
        finally:
            # A lost connection took its session lock with it; unlocking on it would raise
            # and hide why the migration failed.
            if not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def _take_run_lock(
    conn: psycopg.Connection[tuple[object, ...]],
    wait_seconds: float,
    sleep: Callable[[float], None],
    log: logging.Logger,
) -> None:
    """The session's migration lock, once another run (another cold start, a laptop, an
    orphaned run whose statement Postgres is still finishing) lets go; past `wait_seconds`,
    `MigrationBlocked` naming the backend that holds it."""
    waited = 0.0
    reported = 0.0
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
        if row is not None and row[0]:
            return
        holder = _run_lock_holder(conn)
        if waited >= wait_seconds:
            raise MigrationBlocked(
                f"another migration run has held the migration lock for over {wait_seconds:.0f} s "
                f"({holder}); nothing was applied: let it finish, or end that backend "
                "(pg_terminate_backend) if its process is gone, then deploy again"
            )
        if waited >= reported:
            log.warning("waiting for another migration run to finish (%s)", holder)
            reported += RUN_LOCK_REPORT_SECONDS
        sleep(RUN_LOCK_POLL_SECONDS)
        waited += RUN_LOCK_POLL_SECONDS


def _run_lock_holder(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute(
        """SELECT a.pid, a.state, a.query_start, left(a.query, 80)
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND ((l.classid::bigint << 32) | l.objid::bigint) = %s""",
        (MIGRATION_LOCK_KEY,),
    ).fetchone()
    if row is None:
        return "its backend could not be seen"
    pid, state, since, query = row
    return f"backend pid {pid}, {state} since {since}: {query!s}"


def _warn_if_ahead(log: logging.Logger, recorded: dict[int, str], known: set[int]) -> None:
    """A database a newer release migrated (a rollback of the code, an older checkout run
    on the same data) is left as it is: refusing would fail the rollback itself, whose
    deploy-time migration runs this older code. It is said, naming what this code does not
    know, since the code now runs against a schema it was not written for."""
    newer = sorted(version for version in recorded if version not in known)
    if newer:
        log.warning(
            "the database has migrations this code does not know (%s): a newer release "
            "migrated it, and this one may fail on its schema; run that release or a later one",
            ", ".join(f"{version:04d}_{recorded[version]}" for version in newer),
        )


def _apply(
    conn: psycopg.Connection[tuple[object, ...]], migration: Migration, lock_timeout_ms: int
) -> None:
    """One migration in one transaction; the rollback runs before the error is translated."""
    with translate_errors(), conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
        conn.execute(migration.sql.encode())
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
            (migration.version, migration.name),
        )
