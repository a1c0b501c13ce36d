"""Experiment for docs/PERFORMANCE.md ("What would still move it"): what a lazily loaded
`context.job` could save the worker per batch of ten. The claim returns whole `jobs` rows
(`RETURNING jobs.*`, ~45 columns) and builds a `Job` model from each; a lazy context would
return only what the worker's own per-job path reads and fetch the rest on a body's first
look at `context.job`.

Rows, per batch of ten just-claimed `noop` jobs on the bench's table, in interleaved rounds:
- `whole rows, validated`: `SELECT jobs.*` of the ten ids, each row `Job.model_validate`d (as
  the claim does today; the claim's own server work is the same in both designs).
- `worker's columns only`: the same ten ids, only the 13 columns the worker's path reads
  (id, type, payload, priority, status, attempts, max_attempts, timeout_seconds, backoff,
  lease_token, correlation_id, queued_at, started_at), left as dicts.
- `whole rows, model_construct`: whole rows built with `Job.model_construct` (no validation),
  the "cheaper row construction" lever.

Not part of `make bench` (it measures a part, not the platform). Run it with
`.venv/bin/python bench/experiments/claim_row_width.py`; BENCH_ROUNDS as in bench_worker.py.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_worker as bw
from taskmill.db.connection import Database
from taskmill.db.migrate import migrate
from taskmill.jobs.model import Job
from taskmill.jobs.store import JobStore

from taskmill_local.postgres import create_database, embedded_postgres

ROUNDS = bw.ROUNDS
BATCHES = 2_000  # timed batches per row and round, after 200 warm ones
WHOLE = "SELECT * FROM jobs WHERE id = ANY (%(ids)s)"
NARROW = """SELECT id, type, payload, priority, status, attempts, max_attempts, timeout_seconds,
    backoff_base_seconds, lease_token, correlation_id, queued_at, started_at
    FROM jobs WHERE id = ANY (%(ids)s)"""


def ms_per_batch(work: Callable[[], object]) -> float:
    for _ in range(200):
        work()
    started = time.perf_counter()
    for _ in range(BATCHES):
        work()
    return (time.perf_counter() - started) / BATCHES * 1_000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp), keep_data=False) as s:
        url = create_database(s, "width")
        migrate(url)
        db = Database(url)
        ids = bw.taskmill_jobs(url, 10)
        # Claimed, as the worker's rows are when it reads them: running, leased, started.
        assert len(JobStore(db).claim_batch(ids, lease_seconds=600).claimed) == len(ids)
        params = {"ids": ids}
        whole: list[dict[str, Any]] = db.execute(WHOLE, params)
        rows: dict[str, Callable[[], object]] = {
            "whole rows, validated": lambda: [
                Job.model_validate(r) for r in db.execute(WHOLE, params)
            ],
            "worker's columns only": lambda: db.execute(NARROW, params),
            "whole rows, model_construct": lambda: [
                Job.model_construct(**r) for r in db.execute(WHOLE, params)
            ],
            "validate only (no query)": lambda: [Job.model_validate(r) for r in whole],
            "model_construct only (no query)": lambda: [Job.model_construct(**r) for r in whole],
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(ROUNDS):
            for name, work in rows.items():
                times[name].append(ms_per_batch(work))
        db.close()
    today = times["whole rows, validated"]
    print(f"ten claimed rows read back, ms per batch, median of {ROUNDS} interleaved rounds")
    print("(against today: the median of each round's difference, so a slow round cancels out)")
    for name, values in times.items():
        paired = statistics.median(v - t for v, t in zip(values, today, strict=True))
        print(
            f"  {name:<34}{statistics.median(values):>7.3f} ms  {paired:>+7.3f} ms vs today"
            f"  {[round(v, 3) for v in values]}"
        )


if __name__ == "__main__":
    main()
