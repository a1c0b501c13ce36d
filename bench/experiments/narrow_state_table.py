"""Experiment for the worker's next structural change (docs/PERFORMANCE.md, "What would move
it"): how fast can two bare UPDATEs per batch of ten go on a narrow table that holds only the
state the hot path changes, against the same two UPDATEs on Taskmill's wide `jobs` table?

Not part of `make bench` (it measures a design, not the platform). Run it with
`.venv/bin/python bench/experiments/narrow_state_table.py`; BENCH_JOBS and BENCH_ROUNDS as in
bench_worker.py. Interleaved rounds, medians, on one embedded Postgres.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_worker as bw
import psycopg
from taskmill.db.migrate import migrate

from taskmill_local.postgres import create_database, embedded_postgres

JOBS = int(os.environ.get("BENCH_JOBS", "4000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))

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


def two_updates(url: str, table: str, ids: list[object]) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for start in range(0, len(ids), 10):
            batch = ids[start : start + 10]
            conn.execute(
                f"UPDATE {table} SET status = 'running', attempts = attempts + 1, "
                "lease_token = gen_random_uuid(), lease_until = now() + interval '60 s', "
                "updated_at = now() WHERE id = ANY (%s) AND status = 'queued' RETURNING id",
                (batch,),
            ).fetchall()
            conn.execute(
                f"UPDATE {table} SET status = 'succeeded', lease_token = NULL, "
                "lease_until = NULL, updated_at = now() "
                "WHERE id = ANY (%s) AND status = 'running' RETURNING id",
                (batch,),
            ).fetchall()
        return len(ids) / (time.perf_counter() - started)


def main() -> None:
    rates: dict[str, list[float]] = {"jobs (wide)": [], "job_state (narrow)": []}
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp), keep_data=False) as s:
        url = create_database(s, "narrow")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(NARROW)
        for _ in range(ROUNDS):
            ids = bw.taskmill_jobs(url, JOBS)
            rates["jobs (wide)"].append(two_updates(url, "jobs", ids))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO job_state (id, status) SELECT unnest(%s::uuid[]), 'queued'",
                    (ids,),
                )
                conn.execute("ANALYZE job_state")
            rates["job_state (narrow)"].append(two_updates(url, "job_state", ids))
    print(f"two bare UPDATEs per batch of ten, {JOBS} jobs, median of {ROUNDS} rounds:")
    for name, values in rates.items():
        rounds = [round(v) for v in values]
        print(f"  {name:<20}{statistics.median(values):>9,.0f} jobs/s  {rounds}")


if __name__ == "__main__":
    main()
