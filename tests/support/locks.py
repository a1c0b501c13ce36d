"""Race tests on two real connections: knowing that one backend waits for another's lock."""

from __future__ import annotations

import threading

from taskmill.db import Database


def waits_for_a_lock(observer: Database, pid: int, thread: threading.Thread) -> bool:
    """True once the backend `pid` (the one `thread` drives) waits for a lock; False if
    `thread` ended first. Polls `pg_stat_activity` (no sleep: Postgres says when it waits)
    on `observer`, a connection of its own."""
    while thread.is_alive():
        [row] = observer.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        )
        if row["wait_event_type"] == "Lock":
            return True
    return False
