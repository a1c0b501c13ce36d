"""Experiment for docs/PERFORMANCE.md: the worker handler's own Python cost per batch of ten
`noop` jobs, with Postgres taken out. The store answers the claim with canned rows (built and
validated into `Job` models as a real claim's are) and the success with `Finished` rows; the
rest is the handler as deployed: records parsed, bodies run on the pool threads that enforce
timeouts, outcomes recorded, metrics flushed (EMF to a buffer).

Not part of `make bench` (it measures a part, not the platform). Run it with
`.venv/bin/python bench/experiments/worker_python_cost.py`; `--profile` adds a cProfile of one
pass, sorted by own time. No database or network is used.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_worker as bw
from taskmill.jobs.model import Finished, Job, JobStatus
from taskmill.jobs.store import Claim

from functions.worker.handler import process_event
from tests.support.lambda_events import FakeLambdaContext

BATCHES = 300
PASSES = 7


def claimed_row(job_id: UUID) -> dict[str, Any]:
    """What `RETURNING jobs.*` gives for a just-claimed noop job."""
    now = datetime.now(UTC)
    return {
        "id": job_id, "owner_id": uuid4(), "type": "noop", "payload": {}, "priority": "normal",
        "status": "running", "external": False, "attempts": 1, "max_attempts": 1,
        "timeout_seconds": 10, "backoff_base_seconds": 1.0, "backoff_max_seconds": 1.0,
        "run_at": now, "idempotency_key": None, "idempotency_hash": None, "depends_on": [],
        "webhook_url": None, "name": None, "description": None, "tags": [], "limit_keys": [],
        "progress": 0, "progress_message": None, "result": None, "last_error": None,
        "correlation_id": None, "send_pending": False, "webhook_pending": False,
        "cancel_requested": False, "lease_token": uuid4(), "lease_until": now,
        "redrive_count": 0, "lost_leases": 0, "has_dependents": False, "external_ref": None,
        "parent_id": None, "queued_at": now, "created_at": now, "updated_at": now,
        "started_at": now, "finished_at": None,
    }  # fmt: skip


class CannedStore:
    """The two statements of a noop batch, answered without Postgres; anything else the
    handler asked for would be a finding."""

    def claim_batch(self, job_ids: list[UUID], **_: Any) -> Claim:
        return Claim([Job.model_validate(claimed_row(i)) for i in job_ids], [])

    def succeed_batch(self, outcomes: list[tuple[UUID, UUID, Any]], **_: Any) -> list[Finished]:
        return [Finished(i, JobStatus.SUCCEEDED, False, False) for i, _, _ in outcomes]

    def clear_webhook_pending(self, job_ids: list[UUID]) -> int:
        assert not job_ids
        return 0

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a noop batch called JobStore.{name}")


def main() -> None:
    worker, _ = bw.taskmill_worker("postgresql://unused")  # never connects
    worker.store = worker.outcomes.store = CannedStore()
    events = [{"Records": [bw.record(uuid4()) for _ in range(10)]} for _ in range(BATCHES)]
    sink = io.StringIO()

    def one_pass() -> float:
        started = time.perf_counter()
        for event in events:
            with contextlib.redirect_stdout(sink):
                assert not process_event(event, FakeLambdaContext(), worker)["batchItemFailures"]
        return (time.perf_counter() - started) / BATCHES * 1000

    one_pass()  # warm: the pool's threads, imports, caches
    figures = [one_pass() for _ in range(PASSES)]
    print(
        f"worker handler without Postgres, batch of ten noop jobs: "
        f"median {statistics.median(figures):.3f} ms per batch over {PASSES} passes of "
        f"{BATCHES} batches {[round(f, 3) for f in figures]}"
    )
    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        profile.runcall(one_pass)
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


if __name__ == "__main__":
    main()
