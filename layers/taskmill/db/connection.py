"""One lazily created Postgres connection per Lambda container, reconnecting when stale."""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.rows import DictRow, dict_row

from taskmill.errors import Conflict, DependencyUnavailable, InvalidInput, LockTimeout, NotFound

Connection = psycopg.Connection[DictRow]
Connector = Callable[[], Connection]


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn psycopg errors into domain errors; the only place that knows SQLSTATEs."""
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        raise Conflict("a record with the same unique value already exists") from exc
    except pg_errors.ForeignKeyViolation as exc:
        raise NotFound("a referenced record does not exist") from exc
    except (pg_errors.CheckViolation, pg_errors.NotNullViolation) as exc:
        raise InvalidInput("a value is outside what the database accepts") from exc
    except (pg_errors.InvalidTextRepresentation, pg_errors.NumericValueOutOfRange) as exc:
        raise InvalidInput("a value has the wrong format") from exc
    except pg_errors.DivisionByZero:
        raise  # our own arithmetic, not a client's data: a bug that must stay a 500
    except (psycopg.DataError, UnicodeEncodeError) as exc:
        # SQLSTATE class 22 (data exception), and the driver's own refusals before sending:
        # a NUL character (text and jsonb cannot hold one), an unpaired surrogate (not
        # UTF-8), a value out of a type's range. The API refuses these at the edge already;
        # this keeps any path it missed a 400 rather than a 500.
        raise InvalidInput("a value cannot be stored (for example a NUL character)") from exc
    except pg_errors.LockNotAvailable as exc:
        raise LockTimeout("the database did not grant a lock in time") from exc
    except pg_errors.QueryCanceled as exc:
        raise DependencyUnavailable("the database did not answer in time") from exc
    except psycopg.OperationalError as exc:
        raise DependencyUnavailable("the database is unreachable") from exc


def _rows(cur: psycopg.Cursor[DictRow]) -> list[dict[str, Any]]:
    """The rows of a statement that returns some, else none. Asks the result's status, not
    `cur.description`, which builds a column object per column on every call (the worker's
    statements return ~45 columns). cProfile put that at ~7 % of a noop batch; an in-process
    A/B (4 pairs, 2026-11-24) found no difference beyond the machine's noise."""
    result = cur.pgresult
    if result is None or result.status != pq.ExecStatus.TUPLES_OK:
        return []
    return list(cur.fetchall())


def _ended_while_idle(conn: Connection) -> bool:
    """Whether the server ended `conn` while it sat idle between statements: a restart,
    `pg_terminate_backend`, RDS Proxy closing an idle client. The server's goodbye (a
    FATAL message, then end of file) is then waiting on the socket, where an idle
    connection has nothing to read, so one poll of the socket tells, without a round trip.
    Found this way, the connection is replaced before anything is sent on it: the statement
    runs on the new one, where sending it and finding out would fail the caller's whole
    invocation. Only between transactions: a connection ended inside one fails it. A host
    that vanished without a word leaves nothing to read; its first statement fails."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


class Transaction:
    """The statements of one transaction; errors propagate to `Database.transaction`."""

    def __init__(self, db: Database, conn: Connection) -> None:
        self._db = db
        self.connection = conn

    def execute(self, query: Any, params: Any = None) -> list[dict[str, Any]]:
        return self._db._run(self.connection, query, params)


class Database:
    """Owns the container's connection. Collaborators receive a `Database`, never a URL.

    The connection is in autocommit mode: single statements commit on their own (every
    state change is one conditional statement) and multi-statement work uses
    `transaction()`.

    Threads share it (job bodies report progress while the worker heartbeats; the local
    gateway serves requests on threads), and psycopg locks the connection per statement
    only: a statement sent by another thread during a transaction or a pipeline would run
    inside it (rolled back with it, its rows lost in a pipeline). So each of `execute`,
    `transaction` and `pipelined` has the connection to itself until it is done
    (`_held`); the lock is reentrant, so the store's statements inside its own
    `transaction()` still join it.
    """

    def __init__(
        self,
        conninfo: str | Callable[[], str],
        *,
        connect_timeout: int = 5,
        statement_timeout_ms: int = 15_000,
        application_name: str = "taskmill",
        on_connect_error: Callable[[], None] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._on_connect_error = on_connect_error
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms
        self._application_name = application_name
        self._conn: Connection | None = None
        self._lock = threading.RLock()
        # Counted for benchmarks: the figure the API and worker targets are stated in.
        self.round_trips = 0

    def _open(self) -> Connection:
        conninfo = self._conninfo() if callable(self._conninfo) else self._conninfo
        try:
            return self._connect(conninfo)
        except DependencyUnavailable:
            if self._on_connect_error is not None:
                self._on_connect_error()
            raise

    def _connect(self, conninfo: str) -> Connection:
        with translate_errors():
            return psycopg.connect(
                conninfo,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=self._connect_timeout,
                application_name=self._application_name,
                options=f"-c statement_timeout={self._statement_timeout_ms}",
            )

    def connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.broken or _ended_while_idle(conn):
            if conn is not None:
                conn.close()
            conn = self._conn = self._open()
        return conn

    @contextmanager
    def _held(self) -> Iterator[Connection]:
        """The connection, this thread's alone until the block ends; psycopg errors leave
        as domain errors, and a connection that failed is dropped (a stale or broken one is
        replaced on the next call)."""
        with self._lock:
            conn = self.connection()
            try:
                with translate_errors():
                    yield conn
            except DependencyUnavailable:
                self._discard()
                raise

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction on the shared connection; psycopg errors leave as domain errors.

        BEGIN and COMMIT are a round trip each, so hot paths prefer one statement.
        """
        with self._held() as conn, conn.transaction():
            self.round_trips += 2
            yield Transaction(self, conn)

    def execute(self, query: Any, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement (its own transaction) and return its rows, if any."""
        with self._held() as conn:
            return self._run(conn, query, params)

    def pipelined(self, statements: Sequence[tuple[Any, Any]]) -> list[list[dict[str, Any]]]:
        """Run `statements` in order in one round trip and one transaction, and return each
        one's rows.

        They are sent in pipeline mode with no BEGIN and a single Sync at the end, so the
        server runs them as one implicit transaction: committed at the Sync if all succeed,
        rolled back if any fails (PostgreSQL's protocol documentation, "Pipelining"). Each
        statement still takes its own snapshot when it starts (read committed), so a lock
        taken by one is held, and everything committed before it was granted is visible,
        when the next one runs.
        """
        with self._held() as conn:
            with conn.pipeline():
                cursors = [conn.execute(query, params) for query, params in statements]
            self.round_trips += 1
            return [_rows(cur) for cur in cursors]

    def _run(self, conn: Connection, query: Any, params: Any) -> list[dict[str, Any]]:
        cur = conn.execute(query, params)
        self.round_trips += 1
        return _rows(cur)

    def _discard(self) -> None:
        # A stale or broken connection (RDS Proxy idle timeout, failover) is replaced on the
        # next call instead of failing every later invocation of this container.
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._discard()
