"""API handler figures: create-job and get-job latency (in-process, local Postgres, moto SQS),
SQL round trips and SQS calls per create, and what each handler module imports.

Cold starts are `bench/bench_cold_start.py`'s: timed from the bundle as deployed (no dev
venv, no bytecode the bundle lacks, secrets read through the deployed path). This file used
to time them from the dev venv, whose bytecode made them look ~1.7x faster than Lambda's."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from summary import add_row  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
HANDLERS = (
    "functions.api.handler",
    "functions.api.authorizer",
    "functions.worker.handler",
    "functions.retry.sweep",
    "functions.retry.redrive",
    "functions.retry.ecs_events",
    "functions.migrations.handler",
)
MODULES_LOADED = """
import json, sys
import {module}
print(json.dumps(sorted(m for m in sys.modules if m == "taskmill" or m.startswith(
    ("taskmill.", "psycopg")))))
"""


def modules_loaded(module: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", MODULES_LOADED.format(module=module)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class ConstantTimeSqs:
    """An SQS client that answers at once: the API's own cost without the queue's."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent += len(Entries)
        return {
            "Successful": [
                {"Id": e["Id"], "MessageId": str(n), "MD5OfMessageBody": ""}
                for n, e in enumerate(Entries)
            ],
            "Failed": [],
        }


def api_client(url: str, sqs: Any, queue_urls: dict[str, str], logger: Any = None) -> Any:
    """The API handler's app and services (as its container builds them) on the migrated
    database `url`, sending through the SQS client `sqs` to `queue_urls` (TASKMILL_* names),
    behind a `tests.support.apigw.ApiClient` signed in as a new bench user."""
    from taskmill.api.app import create_app
    from taskmill.api.services import ApiServices
    from taskmill.auth.passwords import hash_password
    from taskmill.auth.tokens import TokenConfig
    from taskmill.db import Database
    from taskmill.jobtypes.defaults import build_registry
    from taskmill.queue.sqs import JobQueue
    from taskmill.settings import ApiSettings, JobTypeSettings
    from taskmill.users.store import UserStore

    from tests.support.apigw import ApiClient

    urls: dict[str, Any] = {
        name.removeprefix("TASKMILL_").lower(): value for name, value in queue_urls.items()
    }
    settings = ApiSettings(database_url=url, jwt_secret="k" * 48, max_unfinished_jobs=10**7, **urls)
    db = Database(url)
    queue = JobQueue(settings, client_factory=lambda: sqs)
    services = ApiServices(
        settings,
        db,
        queue,
        build_registry(JobTypeSettings()),
        TokenConfig("k" * 48, "taskmill", "taskmill-api"),
        logger or logging.getLogger("bench"),
    )
    client = ApiClient(create_app(services), services)
    email = f"bench-{os.getpid()}-{time.monotonic_ns()}@example.com"
    UserStore(db).create(email, hash_password("bench password"))
    client.login(email, "bench password")
    return client


def latency(server_url: str, sqs_mode: str) -> dict[str, list[float]]:
    """Timings in ms per operation through the in-process API handler (the authorizer step
    included), with `sqs_mode` "stub" (ConstantTimeSqs) or "moto" (moto's SQS in process, with
    the local stack's fixes applied)."""
    import boto3
    from moto import mock_aws
    from taskmill.db.migrate import migrate

    from taskmill_local import moto_fast
    from taskmill_local.postgres import create_database
    from taskmill_local.queues import create_queues

    moto_fast.apply()
    url = create_database(server_url, f"bench_api_{sqs_mode}_{os.getpid()}")
    migrate(url)
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    timings: dict[str, list[float]] = {
        "create": [],
        "batch of 100": [],
        "get": [],
        "list (50)": [],
    }
    with mock_aws():
        moto_sqs = boto3.client("sqs")
        sqs = moto_sqs if sqs_mode == "moto" else ConstantTimeSqs()
        client = api_client(url, sqs, create_queues(moto_sqs, "bench"))
        db, queue = client.services.db, client.services.queue
        sink = open(os.devnull, "w")  # noqa: SIM115 - the EMF lines the handler prints
        stdout, sys.stdout = sys.stdout, sink
        trips, calls, ids = [], [], []

        def timed(name: str, call: Any, *args: Any) -> Any:
            started = time.perf_counter()
            answer = call(*args)
            timings[name].append((time.perf_counter() - started) * 1000)
            return answer

        try:
            for n in range(REQUESTS):
                before_trips, before_calls = db.round_trips, queue.calls
                response = timed(
                    "create", client.post, "/v1/jobs", {"type": "noop", "tags": ["bench"]}
                )
                trips.append(db.round_trips - before_trips)
                calls.append(queue.calls - before_calls)
                assert response.status == 201, response.body
                ids.append(response.body["id"])
                if n % 3 == 0:
                    batch = {"jobs": [{"type": "noop"}] * 100}
                    response = timed("batch of 100", client.post, "/v1/jobs/batch", batch)
                    assert response.status == 201, response.body
            for job_id in ids:
                assert timed("get", client.get, f"/v1/jobs/{job_id}").status == 200
                answer = timed("list (50)", client.get, "/v1/jobs?limit=50")
                assert answer.status == 200, answer.body
        finally:
            sys.stdout = stdout
            sink.close()
    db.close()
    if sqs_mode == "stub":
        print(
            f"per create: SQL round trips max {max(trips)} (median "
            f"{statistics.median(trips):.0f}), SQS calls max {max(calls)}"
        )
        add_row(
            "API",
            "SQL round trips / SQS calls per create",
            f"{max(trips)} / {max(calls)}",
            "<= 2 / 1",
        )
    return timings


def print_latency(results: dict[str, dict[str, list[float]]]) -> None:
    print(
        f"API handler in process (authorizer step included), {REQUESTS} creates, "
        f"{len(next(iter(results.values()))['batch of 100'])} batches, ms:"
    )
    print(f"  {'operation':<16}{'SQS':<22}{'median':>8}{'p99':>8}")
    for mode, timings in results.items():
        label = "constant-time stub" if mode == "stub" else "local SQS (moto)"
        for name, values in timings.items():
            median, p99 = statistics.median(values), percentile(values, 0.99)
            print(f"  {name:<16}{label:<22}{median:>8.2f}{p99:>8.2f}")
            add_row("API", f"{name}, SQS {label}", f"median {median:.2f} ms, p99 {p99:.2f} ms")


def main() -> None:
    from taskmill_local.postgres import embedded_postgres

    url = os.environ.get("DATABASE_URL")
    with contextlib.ExitStack() as stack:
        if not url:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            url = stack.enter_context(embedded_postgres(Path(tmp), keep_data=False))
        # Interleaved halves would need two live app instances; the modes run back to back
        # on one server instead, the stub first (its figure is the one the targets are in).
        print_latency({mode: latency(url, mode) for mode in ("stub", "moto")})
    for module in HANDLERS:
        loaded = modules_loaded(module)
        own = [m for m in loaded if m == "taskmill" or m.startswith("taskmill.")]
        psycopg = any(m.startswith("psycopg") for m in loaded)
        print(
            f"import {module}: {len(own)} taskmill modules, "
            f"psycopg {'loaded' if psycopg else 'not loaded'}"
        )
    print(json.dumps({"targets": "<= 2 SQL round trips and 1 SQS call per create"}))
    print("cold starts as deployed: bench/bench_cold_start.py")


if __name__ == "__main__":
    main()
