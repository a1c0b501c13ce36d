"""A container's connection that the server ended while it sat idle (a database restart or
failover, `pg_terminate_backend`, RDS Proxy's idle timeout) is replaced before the next
statement is sent, so the invocation that finds it so does not fail; one ended inside a
transaction still fails that transaction."""

from __future__ import annotations

import pytest
from taskmill.db import Database
from taskmill.errors import DependencyUnavailable

from tests.support.backends import terminate_backend


def _backend_pid(db: Database) -> int:
    return int(db.execute("SELECT pg_backend_pid() AS pid")[0]["pid"])


def _end_the_connection_inside_a_transaction(db: Database, database_url: str) -> None:
    with db.transaction() as tx:
        pid = int(tx.execute("SELECT pg_backend_pid() AS pid")[0]["pid"])
        terminate_backend(database_url, pid)
        # Must not run on a new connection, outside the transaction it belongs to.
        tx.execute("SELECT 1")


def test_a_connection_ended_while_idle_is_replaced_before_the_next_statement(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        first = _backend_pid(db)
        terminate_backend(database_url, first)
        assert db.execute("SELECT 41 + 1 AS answer") == [{"answer": 42}]
        assert _backend_pid(db) != first
    finally:
        db.close()


def test_a_pipeline_and_a_transaction_get_a_live_connection_too(database_url: str) -> None:
    db = Database(database_url)
    try:
        terminate_backend(database_url, _backend_pid(db))
        assert db.pipelined([("SELECT 1 AS one", None)]) == [[{"one": 1}]]
        terminate_backend(database_url, _backend_pid(db))
        with db.transaction() as tx:
            assert tx.execute("SELECT 2 AS two") == [{"two": 2}]
    finally:
        db.close()


def test_a_connection_ended_inside_a_transaction_fails_that_transaction(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        with pytest.raises(DependencyUnavailable):
            _end_the_connection_inside_a_transaction(db, database_url)
        # The next call gets a new connection.
        assert db.execute("SELECT 3 AS three") == [{"three": 3}]
    finally:
        db.close()
