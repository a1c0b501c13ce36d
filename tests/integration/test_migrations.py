from __future__ import annotations

import threading
from uuid import UUID

import psycopg
import pytest
from taskmill.db.migrate import available_migrations, migrate
from taskmill.errors import DependencyUnavailable

from taskmill_local.postgres import create_database, drop_database
from tests.support.old_schema import migrate_below


def _as_before(conn: psycopg.Connection, version: int) -> UUID:
    """Make the database a deployment from before migration `version` left: every migration
    below it applied and recorded, and one user, whose id is returned."""
    migrate_below(conn, version)
    owner = conn.execute(
        "INSERT INTO users (id, email, password_hash) "
        "VALUES (gen_random_uuid(), 'old@x.io', 'h') RETURNING id"
    ).fetchone()
    assert owner is not None
    return owner[0]


def test_migrations_apply_once_when_two_runners_race(postgres_server_url: str) -> None:
    url = create_database(postgres_server_url, "taskmill_migration_race")
    try:
        results: list[list[int]] = []
        barrier = threading.Barrier(2)

        def run() -> None:
            barrier.wait()
            results.append(migrate(url))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        every_version = [m.version for m in available_migrations()]
        assert sorted(results, key=len) == [[], every_version]
        with psycopg.connect(url) as conn:
            recorded = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [row[0] for row in recorded] == every_version
        assert migrate(url) == []
    finally:
        drop_database(postgres_server_url, "taskmill_migration_race")


def test_email_is_unique_case_insensitively(db) -> None:
    from taskmill.errors import Conflict

    db.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), 'Ann@x.io', 'h')"
    )
    try:
        db.execute(
            "INSERT INTO users (id, email, password_hash) "
            "VALUES (gen_random_uuid(), 'ann@X.IO', 'h')"
        )
    except Conflict:
        pass
    else:
        raise AssertionError("a second account with the same e-mail was accepted")


def test_the_hot_path_migration_keeps_jobs_and_their_history(postgres_server_url: str) -> None:
    """0010 rebuilds `jobs` and compacts `job_events`: a deployment's jobs and histories must
    read back the same through the store afterwards."""
    from taskmill.db import Database
    from taskmill.jobs.model import JobStatus
    from taskmill.jobs.store import JobStore

    url = create_database(postgres_server_url, "taskmill_migration_0010")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            owner = _as_before(conn, 10)
            job = conn.execute(
                "INSERT INTO jobs (id, owner_id, type, priority, status, attempts, max_attempts, "
                "timeout_seconds, backoff_base_seconds, backoff_max_seconds, tags, result, "
                "finished_at, last_error) VALUES (gen_random_uuid(), %s, 'noop', 'high', "
                "'succeeded', 2, 3, 10, 1, 1, ARRAY['a'], '{\"x\": 1}', now(), NULL) RETURNING id",
                (owner,),
            ).fetchone()
            assert job is not None
            for from_status, to_status, detail in (
                (None, "queued", "{}"),
                ("queued", "running", '{"attempt": 1}'),
                ("running", "queued", '{"attempt": 1, "error": "boom"}'),
                ("queued", "running", '{"attempt": 2}'),
                ("running", "succeeded", '{"attempt": 2}'),
            ):
                conn.execute(
                    "INSERT INTO job_events (job_id, from_status, to_status, actor, detail) "
                    "VALUES (%s, %s, %s, 'worker', %s)",
                    (job[0], from_status, to_status, detail),
                )
        assert 10 in migrate(url)
        db = Database(url)
        try:
            store = JobStore(db)
            kept = store.get(job[0])
            assert (kept.status, kept.priority.value, kept.tags, kept.result) == (
                JobStatus.SUCCEEDED,
                "high",
                ["a"],
                {"x": 1},
            )
            assert [
                (e["from_status"], e["to_status"], e["detail"]) for e in store.events(job[0])
            ] == [
                (None, "queued", {}),
                ("queued", "running", {"attempt": 1}),
                ("running", "queued", {"attempt": 1, "error": "boom"}),
                ("queued", "running", {"attempt": 2}),
                ("running", "succeeded", {"attempt": 2}),
            ]
        finally:
            db.close()
    finally:
        drop_database(postgres_server_url, "taskmill_migration_0010")


def test_schedules_stored_before_time_zones_keep_firing_in_utc(postgres_server_url: str) -> None:
    """0013 adds `timezone`: a schedule that existed before it reads back as a UTC schedule
    and the sweep's next fire time for it is the same UTC time as before."""
    from datetime import UTC, datetime

    from taskmill.db import Database
    from taskmill.schedules.cron import CronExpression
    from taskmill.schedules.store import ScheduleStore

    url = create_database(postgres_server_url, "taskmill_migration_0013")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            owner = _as_before(conn, 13)
            schedule = conn.execute(
                "INSERT INTO schedules (id, owner_id, name, cron, job_template, next_fire_at) "
                "VALUES (gen_random_uuid(), %s, 'old', '0 3 * * *', '{\"type\": \"noop\"}', "
                "'2026-11-01T03:00:00Z') RETURNING id",
                (owner,),
            ).fetchone()
            assert schedule is not None
        assert 13 in migrate(url)
        db = Database(url)
        try:
            kept = ScheduleStore(db).get(schedule[0])
            assert (kept.cron, kept.timezone) == ("0 3 * * *", "UTC")
            cron = CronExpression.parse(kept.cron, kept.timezone)
            assert cron.next_after(kept.next_fire_at) == datetime(2026, 11, 2, 3, tzinfo=UTC)
        finally:
            db.close()
    finally:
        drop_database(postgres_server_url, "taskmill_migration_0013")


def test_a_migration_blocked_by_a_long_transaction_gives_up_and_lets_queries_through(
    database_url: str,
) -> None:
    """A long transaction holds `jobs`; a migration altering it must not wait for it
    indefinitely (every later query of `jobs` would queue behind the waiting ALTER): it gives
    up, retries, then fails naming itself, and a reader that queued behind it gets its answer
    while the long transaction still runs. Once that ends, the migration applies."""
    from taskmill.db.migrate import Migration, MigrationBlocked

    probe = Migration(9999, "probe_column", "ALTER TABLE jobs ADD COLUMN probe integer")
    pending = [*available_migrations(), probe]
    holder = psycopg.connect(database_url)
    holder.execute("SELECT count(*) FROM jobs")  # opens a transaction holding ACCESS SHARE
    failures: list[MigrationBlocked] = []
    waits: list[float] = []

    def run_migration() -> None:
        try:
            migrate(
                database_url,
                migrations=pending,
                lock_timeout_ms=1500,
                attempts=2,
                backoff_seconds=0.01,
                sleep=waits.append,
            )
        except MigrationBlocked as exc:
            failures.append(exc)

    migration = threading.Thread(target=run_migration)
    try:
        with psycopg.connect(database_url, autocommit=True) as watcher:
            migration.start()
            for _ in range(2000):
                waiting = watcher.execute(
                    "SELECT 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock' "
                    "AND relation = 'jobs'::regclass"
                ).fetchone()
                if waiting or not migration.is_alive():
                    break
                threading.Event().wait(0.005)
            assert waiting, "the migration never waited for the lock"
        # Generous: without a lock timeout this reader waits for the long transaction, which
        # ends only after the migration does.
        with psycopg.connect(
            database_url, autocommit=True, options="-c statement_timeout=60000"
        ) as reader:
            assert reader.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
        migration.join()
        assert len(failures) == 1
        assert "9999_probe_column" in str(failures[0])
        assert waits == [0.01]
    finally:
        holder.rollback()
        holder.close()
        migration.join()
    assert migrate(database_url, migrations=pending) == [9999]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(probe) FROM jobs").fetchone() == (0,)


def test_a_migration_whose_connection_dies_reports_why(database_url: str) -> None:
    """The server ends the migration's connection mid-way (a failover, an operator's
    pg_terminate_backend): the error says so, not that releasing the lock failed on the dead
    connection; nothing of the migration is recorded, and the next run applies the rest."""
    from taskmill.db.migrate import Migration

    killed = Migration(9998, "connection_ends", "SELECT pg_terminate_backend(pg_backend_pid())")
    with pytest.raises(DependencyUnavailable) as info:
        migrate(database_url, migrations=[*available_migrations(), killed])
    assert "terminating connection" in str(info.value.__cause__)
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert (
            conn.execute("SELECT 1 FROM schema_migrations WHERE version = 9998").fetchone() is None
        )
    assert migrate(database_url) == []


def test_a_database_a_newer_release_migrated_is_left_alone_and_said(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A rollback of the code (its deploy-time migration runs the older release) or an older
    checkout's `make run` on the same data: nothing is applied or refused (refusing would
    fail the rollback), and the log names the migrations this code does not know."""
    import logging

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (9990, 'from_a_newer_release')"
        )
    with caplog.at_level(logging.WARNING, logger="taskmill.migrations"):
        assert migrate(database_url) == []
    [record] = [r for r in caplog.records if r.name == "taskmill.migrations"]
    assert "9990_from_a_newer_release" in record.getMessage()
    caplog.clear()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 9990")
    with caplog.at_level(logging.WARNING, logger="taskmill.migrations"):
        assert migrate(database_url) == []
    assert not [r for r in caplog.records if r.name == "taskmill.migrations"]


def test_a_run_behind_another_runs_lock_gives_up_naming_who_holds_it(
    postgres_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock wait had no end: a deploy behind an orphaned run (its process killed, its
    statement still going on in Postgres) waited until the function timed out, saying nothing."""
    from taskmill.db.migrate import MIGRATION_LOCK_KEY, MigrationBlocked

    url = create_database(postgres_server_url, "taskmill_migration_lock_wait")
    try:
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            [holder] = other.execute("SELECT pg_backend_pid()").fetchone() or [None]
            waits: list[float] = []
            with pytest.raises(MigrationBlocked, match=f"backend pid {holder}"):
                migrate(url, run_lock_wait_seconds=3, sleep=waits.append)
            assert sum(waits) == pytest.approx(3)
            assert f"waiting for another migration run to finish (backend pid {holder}" in (
                caplog.text
            )
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT to_regclass('jobs')").fetchone() == (None,)
        every_version = [m.version for m in available_migrations()]
        assert migrate(url) == every_version  # the holder gone, the next run goes ahead
    finally:
        drop_database(postgres_server_url, "taskmill_migration_lock_wait")


def test_the_report_digest_column_is_added_without_rewriting_jobs(postgres_server_url: str) -> None:
    """0018 adds `jobs.report_digest` to a table that may hold millions of rows: nullable and
    without a default, it changes the catalog only (the table keeps its file, its rows read
    back as they were)."""
    url = create_database(postgres_server_url, "taskmill_migration_0018")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            owner = _as_before(conn, 18)
            conn.execute(
                "INSERT INTO jobs (id, owner_id, type, priority, status, attempts, max_attempts, "
                "timeout_seconds, backoff_base_seconds, backoff_max_seconds, result, finished_at) "
                "SELECT gen_random_uuid(), %s, 'noop', 'normal', 'succeeded', 1, 3, 10, 1, 1, "
                "'1', now() FROM generate_series(1, 1000)",
                (owner,),
            )
            query = "SELECT pg_relation_filenode('jobs') AS f"
            before = conn.execute(query).fetchone()
            assert 18 in migrate(url)
            assert conn.execute(query).fetchone() == before
            rows = conn.execute(
                "SELECT count(*), count(report_digest) FROM jobs WHERE status = 'succeeded'"
            ).fetchone()
            assert rows == (1000, 0)
    finally:
        drop_database(postgres_server_url, "taskmill_migration_0018")
