"""`Database.pipelined`: statements in one round trip and one transaction, on real Postgres."""

from __future__ import annotations

import psycopg
import pytest
from taskmill.db import Database
from taskmill.errors import InvalidInput


@pytest.fixture
def counter(db: Database) -> Database:
    db.execute("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)")
    db.execute("INSERT INTO counter VALUES (1, 0)")
    return db


def test_statements_run_in_order_in_one_round_trip(counter: Database) -> None:
    before = counter.round_trips
    first, second = counter.pipelined(
        [
            ("UPDATE counter SET n = n + 1 WHERE id = %s RETURNING n", (1,)),
            ("UPDATE counter SET n = n * 10 WHERE id = %s RETURNING n", (1,)),
        ]
    )
    assert (first, second) == ([{"n": 1}], [{"n": 10}])
    assert counter.round_trips - before == 1


def test_a_failing_statement_rolls_back_the_ones_before_it(counter: Database) -> None:
    with pytest.raises(InvalidInput):
        counter.pipelined(
            [
                ("UPDATE counter SET n = 99 WHERE id = %s", (1,)),
                ("INSERT INTO counter VALUES (2, NULL)", None),
            ]
        )
    assert counter.execute("SELECT n FROM counter WHERE id = 1") == [{"n": 0}]
    # The connection is usable afterwards.
    assert counter.pipelined([("SELECT 1 AS one", None)]) == [[{"one": 1}]]


def test_a_lock_taken_by_one_statement_is_held_by_the_next_and_released_at_the_end(
    counter: Database, database_url: str
) -> None:
    _, held_by_second = counter.pipelined(
        [
            ("SELECT count(pg_advisory_xact_lock(%s)) AS locked", (4242,)),
            (
                "SELECT count(*) AS locks FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
                None,
            ),
        ]
    )
    assert held_by_second == [{"locks": 1}]
    with psycopg.connect(database_url, autocommit=True) as other:
        row = other.execute("SELECT pg_try_advisory_xact_lock(4242)").fetchone()
    assert row == (True,)
