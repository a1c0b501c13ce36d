"""Worker throughput for `noop` jobs: the in-process handler on batches of ten.

Jobs are created in Postgres (as `queued`, already sent) and the SQS events are built
directly in the shape Lambda delivers, so the figure is the worker's own cost (claim, run,
record, release dependents) and not moto's. Prints jobs/s and SQL round trips per batch.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taskmill.db import Database
from taskmill.db.migrate import migrate
from taskmill.jobs.model import NewJob
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.queue.messages import message_body
from taskmill.queue.sqs import JobQueue
from taskmill.settings import WorkerSettings
from taskmill.worker.runner import Worker
from taskmill.worker.services import PlatformServices

from functions.worker.handler import process_event
from local.postgres import create_database, embedded_postgres
from tests.support.lambda_events import FakeLambdaContext

JOBS = int(os.environ.get("BENCH_JOBS", "6000"))
# Lambda runs one handler per concurrent invocation; the deployed `high` queue allows 10.
CONCURRENCY = [int(n) for n in os.environ.get("BENCH_CONCURRENCY", "1,2,4").split(",")]
BATCH = 10
ARN = "arn:aws:sqs:us-east-1:123456789012:bench-jobs-normal"


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


def main() -> None:
    url_env = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        context = embedded_postgres(Path(tmp), keep_data=False) if not url_env else None
        server_url = context.__enter__() if context else url_env
        assert server_url
        try:
            run(server_url)
        finally:
            if context:
                context.__exit__(None, None, None)


def create_jobs(url: str) -> list[Any]:
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
    )
    ids: list[Any] = []
    for start in range(0, JOBS, 500):
        created = store.create_many(owner, [spec] * min(500, JOBS - start), actor="bench")
        ids.extend(r.job.id for r in created)
    store.mark_enqueued(ids)
    # What autovacuum would have done by now on a live system: without statistics the
    # planner picks a bitmap scan over every queued job for each 10-job claim.
    db.execute("ANALYZE jobs")
    db.close()
    return ids


def work(url: str, events: list[dict[str, Any]], results: Any) -> None:
    """One concurrent 'Lambda invocation stream': its own container, connection and worker."""
    db = Database(url)
    store = JobStore(db)
    # The same names as ARN's queue: the worker knows a record's queue by its ARN.
    base = "https://sqs.us-east-1.amazonaws.com/123456789012/bench-jobs"
    urls: dict[str, Any] = {}
    for p in ("high", "normal", "low"):
        urls[f"queue_url_{p}"] = f"{base}-{p}"
        urls[f"dlq_url_{p}"] = f"{base}-{p}-dlq"
    settings = WorkerSettings(database_url=url, **urls)
    queue = JobQueue(settings, client_factory=UnusedSqs)
    worker = Worker(store, queue, build_registry(settings), PlatformServices(settings))
    round_trips = []
    # The EMF lines the handler prints are part of its cost; they go to a buffer, not the screen.
    sink = io.StringIO()
    for event in events:
        before = db.round_trips
        with contextlib.redirect_stdout(sink):
            response = process_event(event, FakeLambdaContext(), worker)
        round_trips.append(db.round_trips - before)
        assert not response["batchItemFailures"]
    results.extend(round_trips)
    db.close()


def run(server_url: str) -> None:
    import multiprocessing

    url = create_database(server_url, f"bench_worker_{os.getpid()}")
    migrate(url)
    print(
        f"noop jobs through the in-process worker handler, batches of {BATCH}, events built "
        "directly in Lambda's SQS shape (no SQS in the loop), local Postgres:"
    )
    for concurrency in CONCURRENCY:
        ids = create_jobs(url)
        events = [
            {"Records": [record(i) for i in ids[s : s + BATCH]]} for s in range(0, len(ids), BATCH)
        ]
        with multiprocessing.Manager() as manager:
            results = manager.list()
            workers = [
                multiprocessing.Process(target=work, args=(url, events[n::concurrency], results))
                for n in range(concurrency)
            ]
            started = time.perf_counter()
            for process in workers:
                process.start()
            for process in workers:
                process.join()
            elapsed = time.perf_counter() - started
            round_trips = list(results)
        db = Database(url)
        done = db.execute(
            "SELECT count(*) AS n FROM jobs WHERE status = 'succeeded' AND id = ANY (%s)", (ids,)
        )[0]["n"]
        db.close()
        assert done == len(ids), f"only {done} of {len(ids)} succeeded"
        print(
            f"  {concurrency} concurrent invocation(s): {len(ids)} jobs in {elapsed:.2f} s = "
            f"{len(ids) / elapsed:,.0f} jobs/s; SQL round trips per batch: median "
            f"{statistics.median(round_trips):.0f}, max {max(round_trips)}"
        )


if __name__ == "__main__":
    main()
