"""Worker throughput for `noop` jobs, side by side on one embedded Postgres.

Systems, one consumer each, in interleaved rounds (the machine's speed drifts; ratios within
a round hold):
- Taskmill: the in-process worker handler on batches of ten. Jobs are created in Postgres (as
  `queued`, already sent) and the SQS events are built directly in the shape Lambda delivers,
  so the figure is the worker's own cost (claim, run, record, follow-ups) and not moto's.
- pgqueuer (installed for the bench only, `requirements-bench.txt`): its QueueManager in
  drain mode, batch 10 and batch 100, an async no-op entrypoint.
- the ceiling: a minimal loop on a one-table queue (claim 10 rows with `FOR UPDATE SKIP
  LOCKED`, mark them done; two commits per batch), what Postgres allows with no features.

Per system: jobs/s (median of the rounds), WAL bytes and commits per job (read from
`pg_current_wal_lsn()` and `pg_stat_database` around each run), and for Taskmill the SQL round
trips per batch. Set BENCH_JOBS, BENCH_ROUNDS, BENCH_CONCURRENCY to change the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from summary import add_row
from taskmill.db import Database
from taskmill.db.migrate import migrate
from taskmill.flow.limits import LimitSpec, LimitStore
from taskmill.jobs.model import NewJob
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.queue.messages import message_body
from taskmill.queue.sqs import JobQueue
from taskmill.settings import WorkerSettings
from taskmill.worker.runner import Worker
from taskmill.worker.services import PlatformServices

from functions.worker.handler import process_event
from taskmill_local.postgres import create_database, embedded_postgres
from tests.support.lambda_events import FakeLambdaContext

JOBS = int(os.environ.get("BENCH_JOBS", "4000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
# Extra Taskmill rows with several concurrent invocations (Lambda runs one handler per
# invocation; the deployed `high` queue allows 10).
CONCURRENCY = [int(n) for n in os.environ.get("BENCH_CONCURRENCY", "4").split(",") if n]
# Which systems to run (comma-separated: taskmill, limits (Taskmill with a limit key),
# floor (Taskmill's two statements without the handler), bare (two bare UPDATEs on its jobs
# table), pgqueuer, ceiling).
SYSTEMS = set(
    os.environ.get("BENCH_SYSTEMS", "taskmill,limits,floor,bare,pgqueuer,ceiling").split(",")
)
BATCH = 10
# The key every job of the "limits" row holds.
LIMITED_KEY = "bench:all"
ARN = "arn:aws:sqs:us-east-1:123456789012:bench-jobs-normal"


@dataclass
class Run:
    seconds: float
    wal_bytes: int
    commits: int
    round_trips: list[int] = field(default_factory=list)


@dataclass
class Row:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [JOBS / run.seconds for run in self.runs]


# ---- measuring ------------------------------------------------------------------------------


def _counters(admin_url: str, dbname: str) -> tuple[int, int]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, "
            "(SELECT xact_commit FROM pg_stat_database WHERE datname = %s)",
            (dbname,),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def measured(admin_url: str, dbname: str, work: Callable[[], list[int] | None]) -> Run:
    """Run `work`, timing it and reading WAL and commits around it. Backends report their
    commit counts when they exit (or about once a second): the work closes its connections
    and the reading waits for the report."""
    wal0, commits0 = _counters(admin_url, dbname)
    started = time.perf_counter()
    trips = work() or []
    seconds = time.perf_counter() - started
    time.sleep(1.2)
    wal1, commits1 = _counters(admin_url, dbname)
    return Run(seconds, wal1 - wal0, commits1 - commits0, trips)


# ---- Taskmill -------------------------------------------------------------------------------


class UnusedSqs:
    """Noop batches never call SQS; anything else would be a finding."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the noop path called SQS {name}")


def record(job_id: Any) -> dict[str, Any]:
    return {
        "messageId": str(uuid4()),
        "receiptHandle": str(uuid4()),
        "body": message_body(job_id),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {"job_type": {"stringValue": "noop", "dataType": "String"}},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-1",
    }


def taskmill_jobs(url: str, count: int = JOBS, *, limited: bool = False) -> list[Any]:
    """`count` noop jobs of a new owner, queued and marked sent (as after the API's send).
    `limited`: each holds a key with a limit no batch reaches (the admission claim's cost)."""
    db = Database(url)
    store = JobStore(db)
    owner = uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'x')",
        (owner, f"{owner}@x.io"),
    )
    spec = NewJob(
        type="noop",
        payload={},
        priority="normal",
        max_attempts=1,
        timeout_seconds=10,
        backoff_base_seconds=1,
        backoff_max_seconds=1,
        limit_keys=[LIMITED_KEY] if limited else [],
    )
    if limited:
        LimitStore(db).put(LIMITED_KEY, LimitSpec(concurrency=1_000_000), actor="bench")
    jobs: list[Any] = []
    for start in range(0, count, 500):
        created = store.create_many(owner, [spec] * min(500, count - start), actor="bench")
        jobs.extend(r.job for r in created)
    store.mark_enqueued(jobs)
    ids = [job.id for job in jobs]
    # What autovacuum would have done by now on a live system.
    db.execute("ANALYZE jobs")
    db.close()
    return ids


def taskmill_worker(url: str, logger: Any = None) -> tuple[Worker, Database]:
    """The worker a Lambda container builds (its own connection), SQS unused (noop jobs)."""
    db = Database(url)
    base = "https://sqs.us-east-1.amazonaws.com/123456789012/bench-jobs"
    urls: dict[str, Any] = {}
    for p in ("high", "normal", "low"):
        urls[f"queue_url_{p}"] = f"{base}-{p}"
        urls[f"dlq_url_{p}"] = f"{base}-{p}-dlq"
    settings = WorkerSettings(database_url=url, **urls)
    worker = Worker(
        JobStore(db),
        JobQueue(settings, client_factory=UnusedSqs),
        build_registry(settings),
        PlatformServices(settings),
        logger=logger,
    )
    return worker, db


def taskmill_consumer(url: str, events: list[dict[str, Any]], results: Any) -> None:
    """One 'Lambda invocation stream': its own container, connection and worker."""
    worker, db = taskmill_worker(url)
    trips = []
    sink = io.StringIO()  # the EMF lines the handler prints are part of its cost
    for event in events:
        before = db.round_trips
        with contextlib.redirect_stdout(sink):
            response = process_event(event, FakeLambdaContext(), worker)
        trips.append(db.round_trips - before)
        assert not response["batchItemFailures"]
    results.extend(trips)
    db.close()


def taskmill_run(
    admin_url: str, url: str, dbname: str, consumers: int, *, limited: bool = False
) -> Run:
    ids = taskmill_jobs(url, limited=limited)
    events = [{"Records": [record(i) for i in ids[s : s + BATCH]]} for s in range(0, JOBS, BATCH)]

    def work() -> list[int]:
        with multiprocessing.Manager() as manager:
            results = manager.list()
            processes = [
                multiprocessing.Process(
                    target=taskmill_consumer, args=(url, events[n::consumers], results)
                )
                for n in range(consumers)
            ]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            return list(results)

    run = measured(admin_url, dbname, work)
    assert_all_succeeded(url, ids)
    return run


def assert_all_succeeded(url: str, ids: list[Any]) -> None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM jobs WHERE status = 'succeeded' AND id = ANY (%s)", (ids,)
        ).fetchone()
    assert row is not None
    assert row[0] == JOBS, f"only {row[0]} of {JOBS} succeeded"


def taskmill_floor_run(admin_url: str, url: str, dbname: str) -> Run:
    """Taskmill's two statements alone: `JobStore.claim_batch` then `succeed_many` per batch
    of ten, with no handler, records, bodies or metrics. What the worker could reach if its
    Python cost nothing; the rest of a batch is the handler's own cost."""
    ids = taskmill_jobs(url)

    def work() -> list[int]:
        db = Database(url)
        store = JobStore(db)
        trips = []
        for start in range(0, JOBS, BATCH):
            before = db.round_trips
            batch = ids[start : start + BATCH]
            # As the worker calls it: each message's queue, for the claim's priority check.
            claim = store.claim_batch(batch, lease_seconds=60, queues=["normal"] * len(batch))
            store.succeed_many(
                [(job.id, job.lease_token, None) for job in claim.claimed if job.lease_token],
                actor="bench",
            )
            trips.append(db.round_trips - before)
        db.close()
        return trips

    run = measured(admin_url, dbname, work)
    assert_all_succeeded(url, ids)
    return run


def taskmill_bare_run(admin_url: str, url: str, dbname: str) -> Run:
    """Two bare UPDATEs per batch of ten on Taskmill's `jobs` table (to running, to
    succeeded; ids returned, no events, no lease check): what the table itself costs, with
    its row width and indexes, whatever the statements around it do."""
    ids = taskmill_jobs(url)

    def work() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for start in range(0, JOBS, BATCH):
                batch = ids[start : start + BATCH]
                conn.execute(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
                    "lease_token = gen_random_uuid(), updated_at = now() "
                    "WHERE id = ANY (%s) AND status = 'queued' RETURNING id",
                    (batch,),
                ).fetchall()
                conn.execute(
                    "UPDATE jobs SET status = 'succeeded', lease_token = NULL, "
                    "finished_at = now(), updated_at = now() "
                    "WHERE id = ANY (%s) AND status = 'running' RETURNING id",
                    (batch,),
                ).fetchall()

    return measured(admin_url, dbname, work)


# ---- pgqueuer --------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> dict[str, Any]:
    """asyncpg takes the same server as keyword arguments (a unix socket directory host)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    return {
        "host": parts.get("host"),
        "port": int(parts.get("port") or 5432),
        "user": parts.get("user"),
        "database": parts.get("dbname"),
    }


def pgqueuer_run(admin_url: str, url: str, dbname: str, batch: int) -> Run:
    import asyncpg
    from pgqueuer import QueueManager
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    async def enqueue() -> None:
        conn = await asyncpg.connect(**_asyncpg_dsn(url))
        try:
            queries = Queries(AsyncpgDriver(conn))
            for start in range(0, JOBS, 500):
                n = min(500, JOBS - start)
                await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
        finally:
            await conn.close()

    async def drain() -> None:
        conn = await asyncpg.connect(**_asyncpg_dsn(url))
        try:
            manager = QueueManager(Queries(AsyncpgDriver(conn)))
            done = 0

            @manager.entrypoint("noop")
            async def noop(job: Any) -> None:
                # Stop once the last job ran: drain mode's own exit waits for a dequeue
                # timeout, which would be timed as work.
                nonlocal done
                done += 1
                if done == JOBS:
                    manager.shutdown.set()

            await manager.run(batch_size=batch, mode=QueueExecutionMode.continuous)
        finally:
            await conn.close()

    asyncio.run(enqueue())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    run = measured(admin_url, dbname, lambda: asyncio.run(drain()) or None)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()
    assert row is not None
    assert row[0] == 0, f"pgqueuer left {row[0]} jobs"
    # pgqueuer moves finished jobs to its log: empty it so rounds start alike.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE pgqueuer_log")
    return run


def pgqueuer_install(url: str) -> None:
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    async def install() -> None:
        conn = await asyncpg.connect(**_asyncpg_dsn(url))
        try:
            await Queries(AsyncpgDriver(conn)).install()
        finally:
            await conn.close()

    asyncio.run(install())


# ---- the ceiling: a minimal loop -------------------------------------------------------------

CEILING_SCHEMA = """
CREATE TABLE q (id bigserial PRIMARY KEY, status text NOT NULL, payload jsonb NOT NULL);
CREATE INDEX q_queued ON q (id) WHERE status = 'queued';
"""


def ceiling_run(admin_url: str, url: str, dbname: str) -> Run:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE q")
        conn.execute(
            "INSERT INTO q (status, payload) SELECT 'queued', '{}' FROM generate_series(1, %s)",
            (JOBS,),
        )
        conn.execute("ANALYZE q")

    def work() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                ids = [
                    row[0]
                    for row in conn.execute(
                        "WITH picked AS MATERIALIZED (SELECT id FROM q WHERE status = 'queued' "
                        "ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED) "
                        "UPDATE q SET status = 'running' FROM picked WHERE q.id = picked.id "
                        "RETURNING q.id"
                    ).fetchall()
                ]
                if not ids:
                    return
                conn.execute("UPDATE q SET status = 'done' WHERE id = ANY (%s)", (ids,))

    return measured(admin_url, dbname, work)


# ---- the table -------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    url_env = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        context = embedded_postgres(Path(tmp), keep_data=False) if not url_env else None
        server_url = context.__enter__() if context else url_env
        assert server_url
        try:
            run_all(server_url)
        finally:
            if context:
                context.__exit__(None, None, None)


def run_all(server_url: str) -> None:
    try:
        import pgqueuer  # noqa: F401
    except ImportError:
        pgqueuer_available = False
    else:
        pgqueuer_available = "pgqueuer" in SYSTEMS
    suffix = os.getpid()
    names = {k: f"bench_{k}_{suffix}" for k in ("taskmill", "pgqueuer", "ceiling")}
    urls = {k: create_database(server_url, name) for k, name in names.items()}
    migrate(urls["taskmill"])
    with psycopg.connect(urls["ceiling"], autocommit=True) as conn:
        conn.execute(CEILING_SCHEMA)
    if pgqueuer_available:
        pgqueuer_install(urls["pgqueuer"])
    rows = {
        name: Row(name)
        for name in (
            "taskmill b10",
            "taskmill b10 limits",
            "taskmill b10 SQL only",
            "taskmill table, bare",
            "pgqueuer b10",
            "pgqueuer b100",
        )
    }
    rows["ceiling b10"] = Row("ceiling b10")
    for consumers in CONCURRENCY:
        rows[f"taskmill b10 x{consumers}"] = Row(f"taskmill b10 x{consumers}")
    for _ in range(ROUNDS):
        if "taskmill" in SYSTEMS:
            rows["taskmill b10"].runs.append(
                taskmill_run(server_url, urls["taskmill"], names["taskmill"], 1)
            )
        if "limits" in SYSTEMS:
            rows["taskmill b10 limits"].runs.append(
                taskmill_run(server_url, urls["taskmill"], names["taskmill"], 1, limited=True)
            )
        if "floor" in SYSTEMS:
            rows["taskmill b10 SQL only"].runs.append(
                taskmill_floor_run(server_url, urls["taskmill"], names["taskmill"])
            )
        if "bare" in SYSTEMS:
            rows["taskmill table, bare"].runs.append(
                taskmill_bare_run(server_url, urls["taskmill"], names["taskmill"])
            )
        if pgqueuer_available:
            for batch in (10, 100):
                rows[f"pgqueuer b{batch}"].runs.append(
                    pgqueuer_run(server_url, urls["pgqueuer"], names["pgqueuer"], batch)
                )
        if "ceiling" in SYSTEMS:
            rows["ceiling b10"].runs.append(
                ceiling_run(server_url, urls["ceiling"], names["ceiling"])
            )
        for consumers in CONCURRENCY if "taskmill" in SYSTEMS else []:
            rows[f"taskmill b10 x{consumers}"].runs.append(
                taskmill_run(server_url, urls["taskmill"], names["taskmill"], consumers)
            )
    print_table(rows, pgqueuer_available)


def print_table(rows: dict[str, Row], pgqueuer_available: bool) -> None:
    def rate(name: str) -> float:
        return median(rows[name].rates) if rows[name].runs else float("nan")

    peer = rate("pgqueuer b10") if pgqueuer_available else float("nan")
    ceiling = rate("ceiling b10") if rows["ceiling b10"].runs else float("nan")
    print(
        f"worker, noop jobs, one consumer unless xN, {JOBS} jobs per run, median of {ROUNDS} "
        "interleaved rounds, one embedded Postgres 16 (default durability):"
    )
    print(
        f"  {'system':<22}{'jobs/s':>9}{'vs pgqueuer b10':>17}{'vs ceiling':>12}"
        f"{'WAL B/job':>11}{'commits/job':>13}{'SQL trips/batch':>17}"
    )
    for name, row in rows.items():
        if not row.runs:
            if name.startswith("pgqueuer") and "pgqueuer" in SYSTEMS:
                print(f"  {name:<22}  (not run: pgqueuer is not installed; `make bench` does it)")
            continue
        jobs_s = median(row.rates)
        wal = median([run.wal_bytes / JOBS for run in row.runs])
        commits = median([run.commits / JOBS for run in row.runs])
        trips = [t for run in row.runs for t in run.round_trips]
        trip_text = f"{statistics.median(trips):.0f} (max {max(trips)})" if trips else "-"
        print(
            f"  {name:<22}{jobs_s:>9,.0f}{jobs_s / peer:>16.2f}x{jobs_s / ceiling:>11.2f}x"
            f"{wal:>11,.0f}{commits:>13.2f}{trip_text:>17}"
        )
        summary_row(name, jobs_s, peer, ceiling, wal, commits, trip_text)
    print(
        "  (pgqueuer: its QueueManager on asyncpg until the last job ran, async no-op "
        "entrypoint; ceiling: the minimal loop, claim 10 with FOR UPDATE SKIP LOCKED then "
        "mark done, 2 commits per batch; limits: every job holds a key with a concurrency "
        "limit no batch reaches, so each claim is the admission claim; SQL only: Taskmill's "
        "claim and success statements called directly, no handler; bare updates: two plain "
        "UPDATEs per batch on Taskmill's jobs table, no events, what the table allows)"
    )


TARGETS = {
    "taskmill b10": ">= 1.5x pgqueuer b10; >= 0.35x ceiling; <= 1,200 WAL B/job; "
    "<= 2 commits/batch",
    "taskmill b10 limits": "every job holds a limited key: at most 1 statement more per batch",
    "taskmill b10 SQL only": "(no target: the handler's Python cost is the gap to taskmill b10)",
    "taskmill table, bare": "(no target: the floor of any worker on this table)",
}


def summary_row(
    name: str, jobs_s: float, peer: float, ceiling: float, wal: float, commits: float, trips: str
) -> None:
    figure = f"{jobs_s:,.0f} jobs/s"
    if not name.startswith("pgqueuer"):
        figure += f" = {jobs_s / peer:.2f}x pgqueuer b10 = {jobs_s / ceiling:.2f}x ceiling"
    figure += f"; {wal:,.0f} WAL B/job; {commits * 10:.1f} commits/batch"
    if trips != "-":
        figure += f"; {trips} SQL trips/batch"
    add_row("worker (noop, batch 10)", name, figure, TARGETS.get(name, ""))


if __name__ == "__main__":
    main()
