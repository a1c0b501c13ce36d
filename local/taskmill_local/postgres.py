"""Embedded Postgres (pgserver) for the local stack and the tests."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class EmbeddedPostgres:
    """A pgserver Postgres with its data in `data_dir`.

    `keep_data=False` (tests) deletes the data when stopped; otherwise a later start finds
    the same data (`make run`). `restart_if_dead()` brings the server back after it was
    killed (`kill -9`, the OOM killer): the local stack's watchdog calls it every second.
    """

    def __init__(self, data_dir: Path, *, keep_data: bool = True) -> None:
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(data_dir)
        try:
            self._server = pgserver.get_server(
                data_dir, cleanup_mode="stop" if keep_data else "delete"
            )
        except BaseException:
            # Interrupted (Ctrl-C reaches `pg_ctl start` too) or failed after the server
            # started: pgserver made no handle to stop it with.
            stop_leftover(data_dir)
            raise
        self.url = self._server.get_uri()

    def alive(self) -> bool:
        return bool(self._server.get_postmaster_info().is_running())

    def restart_if_dead(self) -> bool:
        """Start the server again if its process is gone; True if it had to."""
        if self.alive():
            return False
        with self._server._lock:  # pgserver's own inter-process lock around starts
            self._server.ensure_postgres_running()
        return True

    def stop(self) -> None:
        self._server.cleanup()


def forget_dead_handles(data_dir: Path) -> None:
    """pgserver stops its server when the last process that asked for it lets go, counting
    them in `.handle_pids.json`; a process killed with `kill -9` stays counted forever, and
    then nobody stops the server. Drop the pids of processes that are gone."""
    from pgserver.postgres_server import PostgresServer

    path = data_dir / ".handle_pids.json"
    if not path.exists():
        return
    with PostgresServer._lock:
        try:
            pids = [int(pid) for pid in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if _process_exists(pid)]
        if alive != pids:
            path.write_text(json.dumps(alive))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_leftover(data_dir: Path) -> bool:
    """Stop a server running on `data_dir` that no handle knows about; True if there was one."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir)
    if info is None or not info.is_running():
        return False
    user = "pgserver" if os.geteuid() == 0 else None  # as pgserver runs it under root
    with PostgresServer._lock, contextlib.suppress(subprocess.SubprocessError, OSError):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=30)
    return True


@contextmanager
def embedded_postgres(data_dir: Path, *, keep_data: bool = True) -> Iterator[str]:
    """Start (or reuse) an embedded Postgres for the block; yield its URL."""
    server = EmbeddedPostgres(data_dir, keep_data=keep_data)
    try:
        yield server.url
    finally:
        server.stop()


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
