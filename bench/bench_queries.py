"""List and sweep queries on a 1M-row `jobs` table (the store's own SQL, timed in-process).

One million jobs across 20 owners, half of them one owner's, in the mix a long-lived
deployment has: mostly succeeded, a few queued, running, waiting, scheduled, failed and
cancelled, some tagged. Each query runs BENCH_QUERY_RUNS times (median and max printed);
statements that change rows run in a transaction that is rolled back, so every run sees the
same table.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from summary import add_row
from taskmill.db import Database
from taskmill.db.migrate import migrate
from taskmill.jobs.model import JobStatus
from taskmill.jobs.stats import job_stats
from taskmill.jobs.store import JobFilter, JobStore

from taskmill_local.postgres import create_database, embedded_postgres

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("BENCH_QUERY_RUNS", "20"))

FILL = """
WITH owners AS (SELECT id FROM users ORDER BY email),
numbered AS (SELECT array_agg(id ORDER BY id) AS ids FROM owners)
INSERT INTO jobs (id, owner_id, type, payload, priority, status, max_attempts, timeout_seconds,
                  backoff_base_seconds, backoff_max_seconds, run_at, tags, created_at,
                  updated_at, queued_at, started_at, finished_at, lease_token, lease_until,
                  attempts, last_error, depends_on)
SELECT gen_random_uuid(),
       CASE WHEN g %% 2 = 0 THEN n.ids[1] ELSE n.ids[2 + g %% 19] END,
       (ARRAY['noop', 'http.request', 'email.send', 'sleep'])[1 + g %% 4],
       '{}'::jsonb, (ARRAY['high', 'normal', 'low'])[1 + g %% 3],
       s.status, 3, 60, 2, 300,
       CASE WHEN s.status = 'scheduled' THEN now() + interval '2 days' ELSE t END,
       CASE WHEN g %% 50 = 0 THEN ARRAY['nightly'] ELSE '{}' END,
       t, t, t,
       CASE WHEN s.status IN ('running', 'succeeded', 'failed') THEN t END,
       CASE WHEN s.status IN ('succeeded', 'failed', 'cancelled') THEN t + interval '1 second' END,
       CASE WHEN s.status = 'running' THEN gen_random_uuid() END,
       CASE WHEN s.status = 'running' THEN now() + interval '1 minute' END,
       CASE WHEN s.status IN ('running', 'succeeded', 'failed') THEN 1 ELSE 0 END,
       CASE WHEN s.status = 'failed' THEN 'boom' END,
       '{}'::uuid[]
FROM generate_series(1, %(rows)s) g, numbered n,
-- A healthy backlog: queued, running and waiting jobs are recent; the rest spans months.
LATERAL (SELECT CASE WHEN g %% 1000 BETWEEN 960 AND 977
                     THEN now() - make_interval(secs => (g %% 600))
                     ELSE now() - make_interval(secs => (%(rows)s - g) * 2.0) END AS t) tt,
LATERAL (SELECT CASE
    WHEN g %% 1000 < 960 THEN 'succeeded' WHEN g %% 1000 < 970 THEN 'queued'
    WHEN g %% 1000 < 973 THEN 'running' WHEN g %% 1000 < 978 THEN 'waiting'
    WHEN g %% 1000 < 983 THEN 'scheduled' WHEN g %% 1000 < 993 THEN 'failed'
    ELSE 'cancelled' END AS status) s
"""


def fill(url: str) -> Any:
    db = Database(url, statement_timeout_ms=3_600_000)
    for i in range(20):
        db.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), %s, 'x')",
            (f"owner{i:02d}@bench.io",),
        )
    started = time.perf_counter()
    db.execute(FILL, {"rows": ROWS})
    # Waiting jobs wait on a job that is still queued (their dependency is live).
    db.execute(
        "UPDATE jobs w SET depends_on = ARRAY[q.id], has_dependents = false FROM ("
        "SELECT id FROM jobs WHERE status = 'queued' LIMIT 1) q WHERE w.status = 'waiting'"
    )
    db.execute(
        "UPDATE jobs SET has_dependents = true WHERE id IN "
        "(SELECT DISTINCT unnest(depends_on) FROM jobs WHERE status = 'waiting')"
    )
    db.execute("VACUUM ANALYZE jobs")
    print(f"filled {ROWS:,} jobs in {time.perf_counter() - started:.0f} s")
    owner = db.execute("SELECT id FROM users ORDER BY email LIMIT 1")[0]["id"]
    db.close()
    return owner


def timed(db: Database, work: Callable[[], Any], *, writes: bool) -> tuple[float, float]:
    times = []
    for _ in range(RUNS):
        conn = db.connection()
        if writes:
            conn.autocommit = False
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
        if writes:
            conn.rollback()
            conn.autocommit = True
    return statistics.median(times), max(times)


def main() -> None:
    url_env = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        context = embedded_postgres(Path(tmp), keep_data=False) if not url_env else None
        server_url = context.__enter__() if context else url_env
        assert server_url
        try:
            url = create_database(server_url, f"bench_queries_{os.getpid()}")
            migrate(url)
            run(url)
        finally:
            if context:
                context.__exit__(None, None, None)


def run(url: str) -> None:
    owner = fill(url)
    db = Database(url)
    store = JobStore(db)
    page = store.list_jobs(JobFilter(owner_id=owner), limit=50)
    reads: list[tuple[str, Callable[[], Any]]] = [
        ("list own, newest first", lambda: store.list_jobs(JobFilter(owner_id=owner))),
        (
            "list own, next page",
            lambda: store.list_jobs(JobFilter(owner_id=owner), cursor=page.next_cursor),
        ),
        (
            "list own by a rare status (failed)",
            lambda: store.list_jobs(JobFilter(owner_id=owner, status=JobStatus.FAILED)),
        ),
        (
            "list own by status running",
            lambda: store.list_jobs(JobFilter(owner_id=owner, status=JobStatus.RUNNING)),
        ),
        (
            "list own by status queued",
            lambda: store.list_jobs(JobFilter(owner_id=owner, status=JobStatus.QUEUED)),
        ),
        ("list own by type", lambda: store.list_jobs(JobFilter(owner_id=owner, type="email.send"))),
        ("list own by tag", lambda: store.list_jobs(JobFilter(owner_id=owner, tag="nightly"))),
        ("admin list, newest first", lambda: store.list_jobs(JobFilter())),
        (
            "admin list by a rare status (cancelled)",
            lambda: store.list_jobs(JobFilter(status=JobStatus.CANCELLED)),
        ),
        ("quota: unfinished jobs of the big owner", lambda: store.count_unfinished(owner)),
        (
            "DLQ reconciliation: failed jobs",
            lambda: store.failed_jobs(priority="normal", limit=500),
        ),
        ("sweep: expired leases", lambda: store.expired_leases(limit=500)),
    ]
    writes: list[tuple[str, Callable[[], Any]]] = [
        ("sweep: release due scheduled", lambda: store.release_due_scheduled(limit=500)),
        ("sweep: release waiting", lambda: store.release_waiting(limit=500)),
        ("sweep: cancel waiting on failed", lambda: store.cancel_waiting_on_failed(limit=500)),
        (
            "sweep: unsent after grace",
            lambda: store.pending_sends(older_than_seconds=30, limit=500),
        ),
        (
            "sweep: queued without a message",
            lambda: store.requeue_stale(older_than_seconds=1800, limit=500),
        ),
        (
            "sweep: pending webhooks",
            lambda: store.pending_webhooks(older_than_seconds=30, limit=500),
        ),
        (
            "sweep: retention (500 rows)",
            lambda: store.delete_finished(older_than_days=30, limit=500),
        ),
    ]
    print(f"list and sweep queries on a {ROWS:,}-row jobs table, ms (median / max of {RUNS}):")
    slowest: tuple[float, str] = (0.0, "")
    for name, work, is_write in [(n, w, False) for n, w in reads] + [
        (n, w, True) for n, w in writes
    ]:
        median, worst = timed(db, work, writes=is_write)
        print(f"  {name:<42}{median:>8.2f}{worst:>9.2f}")
        if "rare status" in name:
            add_row(f"queries, {ROWS:,} rows", name, f"{median:.2f} ms median", "<= 10 ms")
        slowest = max(slowest, (median, name))
    add_row(
        f"queries, {ROWS:,} rows",
        f"slowest list/sweep query of {len(reads) + len(writes)}",
        f"{slowest[0]:.2f} ms ({slowest[1]})",
    )
    # The admin figures scan the table (no index on `finished_at`, which every success would
    # write): three scans a call computed now.
    for hours in (1, 24):
        median, worst = timed(db, partial(job_stats, db, window_hours=hours), writes=False)
        name = f"GET /v1/stats?window_hours={hours}"
        print(f"  {name:<42}{median:>8.2f}{worst:>9.2f}")
        add_row(f"queries, {ROWS:,} rows", name, f"{median:.0f} ms median")
    # The console's Queues page polls every 5 s accepting figures up to 5 s old: a poll that
    # finds them kept (the age accepted here is an hour, so every run finds them).
    polled = partial(job_stats, db, window_hours=1, max_age_seconds=3600)
    median, worst = timed(db, polled, writes=False)
    name = "GET /v1/stats, figures kept (max_age_seconds)"
    print(f"  {name:<42}{median:>8.2f}{worst:>9.2f}")
    add_row(f"queries, {ROWS:,} rows", name, f"{median:.2f} ms median")
    db.close()


if __name__ == "__main__":
    main()
