"""Experiment for the worker's next structural change (docs/PERFORMANCE.md, "What would move
it"): how fast can a batch of ten go on a narrow table that holds only the state the hot path
changes, with and without the job event each transition must write, against the same
statements on Taskmill's wide `jobs` table, Taskmill's worker itself, pgqueuer and the
ceiling, all in one interleaved run?

Rows (one consumer, batches of ten, no Python around the statements unless said):
- `jobs (wide), bare`: two bare UPDATEs per batch on `jobs` (to running, to succeeded).
- `job_state (narrow), bare`: the same two UPDATEs on a six-column state table.
- `job_state (narrow) + events`: each UPDATE also writes one compact `job_events` row per job
  in the same statement (as Taskmill's transitions do): the floor of any design that keeps
  an event per transition on this table layout.
- `taskmill worker`: the worker handler as `make bench` runs it.
- `pgqueuer b10`, `ceiling`: the anchors of issue 13 (bench_worker.py).

Not part of `make bench` (it measures a design, not the platform). Run it with
`.venv/bin/python bench/experiments/narrow_state_table.py`; BENCH_JOBS and BENCH_ROUNDS as in
bench_worker.py (pgqueuer comes from requirements-bench.txt, which `make bench` installs).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_worker as bw
import psycopg
from taskmill.db.migrate import migrate

from taskmill_local.postgres import create_database, embedded_postgres

JOBS = bw.JOBS
ROUNDS = bw.ROUNDS

# What a claim and a result change, and the one index the hot path needs (the sweep's lease
# scan); listings by status would read the wide table, written at creation and at the end.
NARROW = """
CREATE TABLE job_state (
    id          uuid PRIMARY KEY,
    status      text NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    lease_token uuid,
    lease_until timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX job_state_running_lease_idx ON job_state (lease_until) WHERE status = 'running';
"""

CLAIM = """UPDATE {table} SET status = 'running', attempts = attempts + 1,
    lease_token = gen_random_uuid(), lease_until = now() + interval '60 s', updated_at = now()
    WHERE id = ANY (%(ids)s) AND status = 'queued' RETURNING id, status, attempts"""
SUCCEED = """UPDATE {table} SET status = 'succeeded', lease_token = NULL, lease_until = NULL,
    updated_at = now() WHERE id = ANY (%(ids)s) AND status = 'running'
    RETURNING id, status, attempts"""
# Taskmill's compact event row (taskmill.jobs.store._EVENTS without a detail).
WITH_EVENTS = """WITH changed AS ({update}), events AS (
    INSERT INTO job_events (job_id, to_status, actor, attempt)
    SELECT c.id, c.status, 'worker', c.attempts FROM changed c)
SELECT id FROM changed"""


def two_statements(url: str, table: str, ids: list[object], *, events: bool) -> float:
    claim, succeed = CLAIM.format(table=table), SUCCEED.format(table=table)
    if events:
        claim = WITH_EVENTS.format(update=claim)
        succeed = WITH_EVENTS.format(update=succeed)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for start in range(0, len(ids), 10):
            batch = {"ids": ids[start : start + 10]}
            assert len(conn.execute(claim, batch).fetchall()) == len(batch["ids"])
            assert len(conn.execute(succeed, batch).fetchall()) == len(batch["ids"])
        return len(ids) / (time.perf_counter() - started)


def narrow_ids(url: str) -> list[object]:
    ids = bw.taskmill_jobs(url, JOBS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO job_state (id, status) SELECT unnest(%s::uuid[]), 'queued'", (ids,)
        )
        conn.execute("ANALYZE job_state")
    return ids


def main() -> None:
    try:
        import pgqueuer  # noqa: F401
    except ImportError:
        sys.exit("pgqueuer is missing: pip install -r requirements-bench.txt (make bench does)")
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp), keep_data=False) as s:
        url = create_database(s, "narrow")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(NARROW)
        pgq_url, ceiling_url = create_database(s, "pgq"), create_database(s, "ceiling")
        bw.pgqueuer_install(pgq_url)
        with psycopg.connect(ceiling_url, autocommit=True) as conn:
            conn.execute(bw.CEILING_SCHEMA)
        rows: dict[str, Callable[[], float]] = {
            "jobs (wide), bare": lambda: two_statements(
                url, "jobs", bw.taskmill_jobs(url, JOBS), events=False
            ),
            "job_state (narrow), bare": lambda: two_statements(
                url, "job_state", narrow_ids(url), events=False
            ),
            "job_state (narrow) + events": lambda: two_statements(
                url, "job_state", narrow_ids(url), events=True
            ),
            "taskmill worker": lambda: JOBS / bw.taskmill_run(s, url, "narrow", 1).seconds,
            "pgqueuer b10": lambda: JOBS / bw.pgqueuer_run(s, pgq_url, "pgq", 10).seconds,
            "ceiling": lambda: JOBS / bw.ceiling_run(s, ceiling_url, "ceiling").seconds,
        }
        rates: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(ROUNDS):
            for name, run in rows.items():
                rates[name].append(run())
    pgq = statistics.median(rates["pgqueuer b10"])
    ceiling = statistics.median(rates["ceiling"])
    print(f"one consumer, batches of ten, {JOBS} jobs, median of {ROUNDS} interleaved rounds:")
    print(f"  {'':<30}{'jobs/s':>9} {'ms/batch':>9} {'vs pgqueuer':>12} {'vs ceiling':>11}")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(
            f"  {name:<30}{rate:>9,.0f} {10_000 / rate:>9.2f} {rate / pgq:>11.2f}x"
            f" {rate / ceiling:>10.2f}x  {[round(v) for v in values]}"
        )
    print(
        f"  1.5x pgqueuer b10 needs {1.5 * pgq:,.0f} jobs/s ({10_000 / (1.5 * pgq):.2f} ms/batch)"
    )


if __name__ == "__main__":
    main()
