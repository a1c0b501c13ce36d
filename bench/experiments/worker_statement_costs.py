"""Experiment for docs/PERFORMANCE.md: where the worker's two statements spend their time.

1. `EXPLAIN (ANALYZE, BUFFERS)` of the fast claim and of the batch success, taken after 100
   warm batches on the bench's 3,000-job table (each inside a transaction that is rolled
   back, so the table is as the worker left it): server execution per node and planning.
2. The two statements alone (`JobStore.claim_batch` then `succeed_batch`, no handler) per
   batch of ten, interleaved over BENCH_ROUNDS rounds, with Postgres's default plan cache
   mode (psycopg prepares a statement after five runs; Postgres keeps a generic plan when it
   is no dearer) against `force_custom_plan` (planned on every run) and
   `force_generic_plan`: what planning would cost if the statements were not prepared.

Not part of `make bench` (it measures a part, not the platform). Run it with
`.venv/bin/python bench/experiments/worker_statement_costs.py`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, LiteralString

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_worker as bw
from taskmill.db.connection import Database
from taskmill.db.migrate import migrate
from taskmill.flow.holds import PAUSE_HOLD_SECONDS
from taskmill.jobs import store as job_store
from taskmill.jobs.store import LEASE_SLACK_SECONDS, JobStore

from taskmill_local.postgres import create_database, embedded_postgres

BATCH = 10
NORMAL = ["normal"] * BATCH  # the queue of each message of a batch, as the worker passes it
WARM_BATCHES = 100
PLAN_MODES: dict[str, list[LiteralString]] = {
    "default (prepared after 5 runs)": [],
    "force_generic_plan": ["SET plan_cache_mode = force_generic_plan"],
    "force_custom_plan": ["SET plan_cache_mode = force_custom_plan"],
}


def explain(db: Database, sql: LiteralString, params: dict[str, Any]) -> list[str]:
    conn = db.connection()
    conn.execute("BEGIN")
    try:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, SUMMARY) " + sql, params).fetchall()
    finally:
        conn.execute("ROLLBACK")
    return [str(next(iter(row.values()))) for row in rows]


def show_plans(url: str) -> None:
    ids = bw.taskmill_jobs(url)
    db = Database(url)
    store = JobStore(db)
    for start in range(0, WARM_BATCHES * BATCH, BATCH):
        claim = store.claim_batch(ids[start : start + BATCH], lease_seconds=60, queues=NORMAL)
        store.succeed_batch([(j.id, j.lease_token, None) for j in claim.claimed if j.lease_token])
    batch = ids[WARM_BATCHES * BATCH : (WARM_BATCHES + 1) * BATCH]
    claim_params = job_store._params(
        "worker",
        ids=batch,
        slack=LEASE_SLACK_SECONDS,
        lease=60.0,
        owner_default=None,
        now=None,
        external=False,
        max_claims=None,
        queues=NORMAL,
        pause_hold=PAUSE_HOLD_SECONDS,
    )
    print("== the fast claim (EXPLAIN ANALYZE, rolled back)")
    print("\n".join(explain(db, job_store._FAST_CLAIM, claim_params)))
    claim = store.claim_batch(batch, lease_seconds=60, queues=NORMAL)
    outcomes = [(j.id, j.lease_token, None) for j in claim.claimed if j.lease_token]
    print("\n== the batch success (EXPLAIN ANALYZE, rolled back)")
    print(
        "\n".join(explain(db, job_store._BATCH_SUCCESS, job_store._succeed_params(outcomes, "w")))
    )
    db.close()


def two_statements(url: str, setup: list[LiteralString]) -> float:
    """Milliseconds per batch of ten for the two statements alone, on a fresh connection."""
    ids = bw.taskmill_jobs(url)
    db = Database(url)
    for statement in setup:
        db.execute(statement)
    store = JobStore(db)
    started = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        claim = store.claim_batch(ids[start : start + BATCH], lease_seconds=60, queues=NORMAL)
        done = store.succeed_batch(
            [(j.id, j.lease_token, None) for j in claim.claimed if j.lease_token]
        )
        assert len(done) == len(claim.claimed) == len(ids[start : start + BATCH])
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed / (len(ids) / BATCH) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp), keep_data=False) as s:
        url = create_database(s, "statement_costs")
        migrate(url)
        show_plans(url)
        runs: dict[str, list[float]] = {mode: [] for mode in PLAN_MODES}
        for _ in range(bw.ROUNDS):
            for mode, setup in PLAN_MODES.items():
                runs[mode].append(two_statements(url, setup))
        print(f"\n== the two statements alone, {bw.JOBS} jobs, {bw.ROUNDS} interleaved rounds")
        for mode, values in runs.items():
            print(
                f"  {mode:34} median {statistics.median(values):.3f} ms per batch "
                f"{[round(v, 3) for v in values]}"
            )


if __name__ == "__main__":
    main()
