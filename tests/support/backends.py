"""Ending a Postgres backend from outside, as a database restart, a failover or an operator
would."""

from __future__ import annotations

import time

import psycopg


def terminate_backend(database_url: str, pid: int) -> None:
    """End backend `pid` from another connection and wait until it is gone; its goodbye
    then waits, unread, on its client's socket."""
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(500):
            gone = admin.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", (pid,)
            ).fetchone()
            if gone and gone[0]:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not end")
