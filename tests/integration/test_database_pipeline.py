"""`Database.pipelined`: statements in one round trip and one transaction, on real Postgres."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

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


class _WithAnotherThreadBetween(Sequence[tuple[Any, Any]]):
    """Two statements; between sending the first and the second, `between` runs on another
    thread (given a second to finish: it may instead wait for the first thread to be done)."""

    def __init__(self, first: tuple[Any, Any], second: tuple[Any, Any], between: Any) -> None:
        self._statements = [first, second]
        self._between = between
        self.thread: threading.Thread | None = None

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: Any) -> Any:
        return self._statements[index]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        yield self._statements[0]
        self.thread = threading.Thread(target=self._between)
        self.thread.start()
        self.thread.join(timeout=1)
        yield self._statements[1]


def test_another_threads_statement_is_neither_swallowed_nor_rolled_back_with_the_pipeline(
    counter: Database,
) -> None:
    # The worker's Database is shared by threads: job bodies report progress on it, and the
    # local stack's pollers all invoke the one container worker. Another thread's statement
    # must not join a pipeline's implicit transaction (its rows read as none, its write
    # rolled back when the pipeline fails) but run on its own, before or after it.
    seen: dict[str, Any] = {}

    def insert() -> None:
        seen["rows"] = counter.execute("INSERT INTO counter VALUES (3, 3) RETURNING n")

    statements = _WithAnotherThreadBetween(
        ("UPDATE counter SET n = 99 WHERE id = %s", (1,)),
        ("INSERT INTO counter VALUES (2, NULL)", None),
        insert,
    )
    with pytest.raises(InvalidInput):
        counter.pipelined(statements)
    assert statements.thread is not None
    statements.thread.join()
    assert seen["rows"] == [{"n": 3}]
    assert counter.execute("SELECT id, n FROM counter ORDER BY id") == [
        {"id": 1, "n": 0},
        {"id": 3, "n": 3},
    ]


def test_another_threads_statement_waits_for_a_transaction_instead_of_joining_it(
    counter: Database,
) -> None:
    seen: dict[str, Any] = {}

    def insert() -> None:
        seen["rows"] = counter.execute("INSERT INTO counter VALUES (3, 3) RETURNING n")

    other = threading.Thread(target=insert)

    def transaction_that_fails() -> None:
        with counter.transaction() as tx:
            tx.execute("UPDATE counter SET n = 99 WHERE id = %s", (1,))
            other.start()
            other.join(timeout=1)
            tx.execute("INSERT INTO counter VALUES (2, NULL)")

    with pytest.raises(InvalidInput):
        transaction_that_fails()
    other.join()
    assert seen["rows"] == [{"n": 3}]
    assert counter.execute("SELECT id, n FROM counter ORDER BY id") == [
        {"id": 1, "n": 0},
        {"id": 3, "n": 3},
    ]
