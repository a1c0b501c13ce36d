from __future__ import annotations

import threading

import psycopg
from taskmill.db.migrate import available_migrations, migrate

from local.postgres import create_database, drop_database


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
