"""A peek of a full page of dead letters (`GET /v1/dlq/{priority}?limit=500`): how long
`dlq.peek` takes and how many SQS calls it makes, on in-process moto 5.2.5 (as released and
with `taskmill_local.moto_fast`) and an embedded Postgres holding the letters' failed jobs.

The peek must answer well inside API Gateway's 29 s. Each run reads every letter (hidden
while it reads), ends with a long poll that waits `DEAD_LETTER_WAIT_SECONDS`
(`taskmill.queue.sqs`) on the empty queue, reads the DLQ's count, and shows the letters
again; the next run sees the same DLQ.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from summary import add_row
from taskmill.db import Database
from taskmill.db.migrate import migrate
from taskmill.jobs.store import JobStore
from taskmill.queue.sqs import JobQueue
from taskmill.recovery import dlq
from taskmill.settings import QueueSettings
from taskmill.topology import Priority

from taskmill_local.postgres import create_database, embedded_postgres

LETTERS = int(os.environ.get("BENCH_DLQ_LETTERS", "499"))
RUNS = int(os.environ.get("BENCH_DLQ_RUNS", "2"))


def failed_jobs(db: Database, count: int) -> JobStore:
    owner = uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, 'dlq@bench.io', 'x')", (owner,)
    )
    db.execute(
        "INSERT INTO jobs (id, owner_id, type, payload, priority, status, max_attempts, "
        "timeout_seconds, backoff_base_seconds, backoff_max_seconds, run_at, attempts, "
        "finished_at, last_error) "
        "SELECT gen_random_uuid(), %s, 'noop', '{}', 'normal', 'failed', 1, 60, 2, 300, now(), "
        "1, now(), repeat('boom ', 200) FROM generate_series(1, %s)",
        (owner, count),
    )
    return JobStore(db)


def measure(label: str, store: JobStore) -> None:
    import boto3
    from moto import mock_aws

    from taskmill_local.queues import create_queues

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        settings = QueueSettings.model_validate(
            {
                name.removeprefix("TASKMILL_").lower(): url
                for name, url in create_queues(sqs, "bench").items()
            }
        )
        queue = JobQueue(settings, client_factory=lambda: sqs)
        jobs = store.failed_jobs(priority="normal", limit=LETTERS)
        queue.dead_letter_many(jobs, "attempts_exhausted")
        times: list[float] = []
        for _ in range(RUNS):
            queue.calls = 0
            started = time.perf_counter()
            peek = dlq.peek(store, queue, Priority.NORMAL, limit=500)
            times.append(time.perf_counter() - started)
            assert len(peek.messages) == LETTERS
            assert peek.complete == (LETTERS < 500)
        median = statistics.median(times)
        print(
            f"  {label:<24} {median:6.2f} s median, {max(times):6.2f} s max, "
            f"{queue.calls} SQS calls, {len(peek.messages)} letters, complete={peek.complete}"
        )
        add_row("DLQ", f"peek of {LETTERS} letters ({label})", f"{median:.2f} s", "< 29 s")


def main() -> None:
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_postgres(Path(tmp), keep_data=False) as server,
    ):
        url = create_database(server, f"bench_dlq_{os.getpid()}")
        migrate(url)
        db = Database(url)
        store = failed_jobs(db, LETTERS)
        print(f"peek of a DLQ of {LETTERS} letters, {RUNS} runs each:")
        measure("moto as released", store)
        from taskmill_local import moto_fast

        moto_fast.apply()
        measure("moto_fast", store)
        db.close()


if __name__ == "__main__":
    main()
