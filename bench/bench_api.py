"""API handler figures: create-job and get-job latency (in-process, local Postgres, moto SQS),
SQL round trips and SQS calls per create, and cold start of the API and authorizer handlers
(fresh process: import + container init, median of 7)."""

from __future__ import annotations

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

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
COLD_STARTS = 7
COLD_START = """
import time
started = time.perf_counter()
import {module} as handler
handler.{init}()
print((time.perf_counter() - started) * 1000)
"""
# The authorizer's cold start includes verifying its first token: verification is the whole
# of its work, so a lazily imported JWT library must not hide from the figure.
AUTHORIZER_COLD_START = """
import time
started = time.perf_counter()
import functions.api.authorizer as handler
from taskmill.auth.tokens import issue_access_token
config = handler.container_config()
token, _ = issue_access_token(config, user_id="u", session_id="s", role="user")
handler.check({"authorizationToken": "Bearer " + token,
               "methodArn": "arn:aws:execute-api:us-east-1:1:a/v1/GET/v1/jobs"}, config)
print((time.perf_counter() - started) * 1000)
"""


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


def cold_start(script: str) -> float:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",  # connections are lazy
        "TASKMILL_JWT_SECRET": "c" * 48,
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Taskmill",
        **{
            f"TASKMILL_{kind}_URL_{p}": f"https://sqs.us-east-1.amazonaws.com/1/{kind}-{p}"
            for kind in ("QUEUE", "DLQ")
            for p in ("HIGH", "NORMAL", "LOW")
        },
    }
    times = []
    for _ in range(COLD_STARTS):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


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


def latency(server_url: str) -> None:
    import boto3
    from moto import mock_aws
    from taskmill.db.migrate import migrate

    from local.postgres import create_database
    from local.queues import create_queues

    url = create_database(server_url, f"bench_api_{os.getpid()}")
    migrate(url)
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    with mock_aws():
        sqs = boto3.client("sqs")
        client = api_client(url, sqs, create_queues(sqs, "bench"))
        db, queue = client.services.db, client.services.queue
        sink = open(os.devnull, "w")  # noqa: SIM115 - the EMF lines the handler prints
        stdout, sys.stdout = sys.stdout, sink
        try:
            create_ms, get_ms, trips, calls, ids = [], [], [], [], []
            for _ in range(REQUESTS):
                before_trips, before_calls = db.round_trips, queue.calls
                started = time.perf_counter()
                response = client.post("/v1/jobs", {"type": "noop", "tags": ["bench"]})
                create_ms.append((time.perf_counter() - started) * 1000)
                trips.append(db.round_trips - before_trips)
                calls.append(queue.calls - before_calls)
                assert response.status == 201, response.body
                ids.append(response.body["id"])
            for job_id in ids:
                started = time.perf_counter()
                assert client.get(f"/v1/jobs/{job_id}").status == 200
                get_ms.append((time.perf_counter() - started) * 1000)
        finally:
            sys.stdout = stdout
            sink.close()
    print(
        f"create job: median {statistics.median(create_ms):.2f} ms, "
        f"p99 {percentile(create_ms, 0.99):.2f} ms "
        f"({REQUESTS} requests, in-process handler incl. the authorizer step)"
    )
    print(
        f"get job:    median {statistics.median(get_ms):.2f} ms, "
        f"p99 {percentile(get_ms, 0.99):.2f} ms"
    )
    print(
        f"per create: SQL round trips max {max(trips)} (median {statistics.median(trips):.0f}), "
        f"SQS calls max {max(calls)}"
    )


def main() -> None:
    from local.postgres import embedded_postgres

    url = os.environ.get("DATABASE_URL")
    if url:
        latency(url)
    else:
        with (
            tempfile.TemporaryDirectory() as tmp,
            embedded_postgres(Path(tmp), keep_data=False) as server,
        ):
            latency(server)
    api = cold_start(COLD_START.format(module="functions.api.handler", init="container_app"))
    print(
        f"cold start functions.api.handler: median {api:.0f} ms "
        f"(fresh process, import + init, median of {COLD_STARTS})"
    )
    authorizer = cold_start(AUTHORIZER_COLD_START)
    print(
        f"cold start functions.api.authorizer: median {authorizer:.0f} ms "
        f"(fresh process, import + init + first verification, median of {COLD_STARTS})"
    )
    for module in HANDLERS:
        loaded = modules_loaded(module)
        own = [m for m in loaded if m == "taskmill" or m.startswith("taskmill.")]
        psycopg = any(m.startswith("psycopg") for m in loaded)
        print(
            f"import {module}: {len(own)} taskmill modules, "
            f"psycopg {'loaded' if psycopg else 'not loaded'}"
        )
    print(
        json.dumps(
            {"targets": "<= 2 SQL round trips and 1 SQS call per create; cold start <= 450 ms"}
        )
    )


if __name__ == "__main__":
    main()
