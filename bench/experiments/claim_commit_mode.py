"""Experiment for docs/PERFORMANCE.md: would an asynchronous commit of the claim pay?

The claim's commit need not wait for its WAL to reach disk for the database to stay
consistent: if Postgres crashed before the flush, the claim would be lost as a whole (the job
`queued` again, its attempt unspent) while its SQS message is still undeleted, and every later
synchronous commit (the success, a failure, a heartbeat) flushes the WAL up to itself, the
claim included. But the body has started by then: after such a crash it runs again under the
same attempt number, which SPEC's "a job body runs once per attempt" rules out (see
docs/PERFORMANCE.md, where the variant is measured and not adopted). This measures what it
would save.

1. One durable commit against one `synchronous_commit = off` commit (a one-row UPDATE, 1,000
   per pass, interleaved passes).
2. The worker's two statements alone per batch of ten (`claim_batch` then `succeed_batch`, as
   in `worker_statement_costs.py`), as shipped against a claim whose statement turns
   `synchronous_commit` off for its own transaction (`set_config(..., true)` in a CTE), in
   BENCH_ROUNDS interleaved rounds of BENCH_JOBS jobs.

Not part of `make bench`. Run it with `.venv/bin/python bench/experiments/claim_commit_mode.py`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_worker as bw
import psycopg
import worker_statement_costs
from taskmill.db.connection import Database
from taskmill.db.migrate import migrate
from taskmill.jobs import store as job_store
from taskmill.jobs.store import JobStore

from taskmill_local.postgres import create_database, embedded_postgres

COMMITS_PER_PASS = 1_000
PASSES = 5
SHIPPED_CLAIM = job_store._FAST_CLAIM
# The shipped claim with one more CTE, joined into the candidates so it runs once.
ASYNC_CLAIM = SHIPPED_CLAIM.replace(
    "WITH cand AS MATERIALIZED (",
    "WITH commit_mode AS MATERIALIZED (\n"
    "    SELECT set_config('synchronous_commit', 'off', true)\n), cand AS MATERIALIZED (",
    1,
).replace("    FROM jobs j\n    WHERE j.id", "    FROM commit_mode, jobs j\n    WHERE j.id", 1)
assert ASYNC_CLAIM.count("commit_mode") == 2


def commit_costs(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE commit_probe (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO commit_probe VALUES (1, 0)")
        update = "UPDATE commit_probe SET n = n + 1 WHERE id = 1"

        def durable() -> None:
            conn.execute(update)

        def asynchronous() -> None:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")
                conn.execute(update)

        def durable_in_transaction() -> None:
            # The same round trips as `asynchronous`, so the difference is the flush wait.
            with conn.transaction():
                conn.execute("SELECT 1")
                conn.execute(update)

        runs: dict[str, list[float]] = {"durable, autocommit": []}
        probes = {"durable, BEGIN/SELECT/COMMIT": durable_in_transaction}
        probes["synchronous_commit off, BEGIN/SET/COMMIT"] = asynchronous
        runs.update({name: [] for name in probes})
        for _ in range(PASSES):
            for name, probe in [("durable, autocommit", durable), *probes.items()]:
                started = time.perf_counter()
                for _ in range(COMMITS_PER_PASS):
                    probe()
                runs[name].append((time.perf_counter() - started) * 1000 / COMMITS_PER_PASS)
    print(f"== one commit, {PASSES} interleaved passes of {COMMITS_PER_PASS:,}")
    for name, values in runs.items():
        print(f"  {name:42} median {statistics.median(values):.3f} ms")


@contextmanager
def claim_statement(sql: str) -> Iterator[None]:
    job_store._FAST_CLAIM = sql
    try:
        yield
    finally:
        job_store._FAST_CLAIM = SHIPPED_CLAIM


def check_variant(url: str) -> None:
    """The variant must turn the setting off for the claim's transaction only."""
    ids = bw.taskmill_jobs(url, 10)
    db = Database(url)
    with claim_statement(ASYNC_CLAIM), db.transaction() as tx:
        assert len(JobStore(db).claim_batch(ids, lease_seconds=60).claimed) == 10
        assert tx.execute("SHOW synchronous_commit")[0]["synchronous_commit"] == "off"
    assert db.execute("SHOW synchronous_commit")[0]["synchronous_commit"] == "on"
    db.close()


def two_statements(url: str, claim_sql: str) -> float:
    with claim_statement(claim_sql):
        return worker_statement_costs.two_statements(url, [])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp), keep_data=False) as s:
        url = create_database(s, "claim_commit_mode")
        migrate(url)
        commit_costs(url)
        check_variant(url)
        modes = {"claim waits for its flush (shipped)": SHIPPED_CLAIM}
        modes["claim commits asynchronously"] = ASYNC_CLAIM
        runs: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(bw.ROUNDS):
            for mode, sql in modes.items():
                runs[mode].append(two_statements(url, sql))
        print(f"\n== the two statements alone, {bw.JOBS:,} jobs, {bw.ROUNDS} interleaved rounds")
        for mode, values in runs.items():
            print(
                f"  {mode:38} median {statistics.median(values):.3f} ms per batch "
                f"{[round(v, 3) for v in values]}"
            )
        shipped, variant = (statistics.median(v) for v in runs.values())
        print(f"  saved: {shipped - variant:.3f} ms per batch ({shipped / variant:.2f}x)")


if __name__ == "__main__":
    main()
