"""Shared fixtures: one Postgres per session, one migrated template, a clone per test.

Tests use DATABASE_URL when it is set (any Postgres the user has, with CREATEDB), else an
embedded pgserver started for the session and deleted after it.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from taskmill.db import Database
from taskmill.db.migrate import migrate
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.queue.sqs import JobQueue
from taskmill.settings import JobTypeSettings, QueueSettings, load_settings

from taskmill_local.postgres import create_database, drop_database, embedded_postgres

_counter = itertools.count()

# Under `make test` (pytest-xdist, `--dist loadfile`) the tests of one module run on one
# worker, so its module-scoped local stack starts once; the tests under these directories
# also share one worker, so their session-scoped fixtures (the infrastructure tests' synths:
# the bundled one costs ~20 s) run once instead of once per worker.
_ONE_WORKER_DIRECTORIES = ("tests/infrastructure/",)
# Most workers xdist's `-n auto` starts: each runs its own Postgres and its own local stacks,
# and beyond four the longest modules, not the worker count, set the time.
MAX_AUTO_WORKERS = 4


@pytest.hookimpl(optionalhook=True)  # an xdist hook: `-p no:xdist` must still work
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with each of `_ONE_WORKER_DIRECTORIES` as one unit of work.

    Not `xdist_group` marks with `--dist loadgroup`: xdist 3.8 puts the group into
    `item._nodeid`, which pytest 9 no longer reads, so the marks group nothing."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = str(super()._split_scope(nodeid))
            return next((d for d in _ONE_WORKER_DIRECTORIES if module.startswith(d)), module)

    return ModuleScheduling(config, log)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: `-p no:xdist` must still work
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # the user's own count: xdist reads it
    return max(1, min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0))))


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    with embedded_postgres(Path(tmp_path_factory.mktemp("pgdata")), keep_data=False) as url:
        # A throwaway test server need not survive a power cut; cloning a database per test
        # is dominated by fsync otherwise.
        with psycopg.connect(url, autocommit=True) as conn:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = off")
            conn.execute("SELECT pg_reload_conf()")
        yield url


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """A database migrated once per session; each test clones it."""
    name = f"taskmill_template_{os.getpid()}"
    drop_database(postgres_server_url, name)
    url = create_database(postgres_server_url, name)
    migrate(url)
    yield name
    drop_database(postgres_server_url, name)


@pytest.fixture
def database_url(postgres_server_url: str, template_database: str) -> Iterator[str]:
    name = f"taskmill_test_{os.getpid()}_{next(_counter)}"
    url = create_database(postgres_server_url, name, template=template_database)
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS API, with fake credentials so nothing can reach a real account."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def aws_clients() -> Callable[..., Any]:
    """boto3 clients made once per session and used under each test's own `mock_aws`.

    moto intercepts every client made after it is imported, whichever mock is active, and
    each mock starts from empty AWS state; but it also resets boto3's default session, so a
    client made inside each test's mock costs ~50 ms (the service model loaded again), times
    some 600 tests. Outside a mock a client has the fake credentials: it reaches nothing."""
    import boto3

    return functools.cache(boto3.client)


@pytest.fixture
def sqs(aws: None, aws_clients: Callable[..., Any]) -> Any:
    return aws_clients("sqs")


@pytest.fixture
def queue_env(sqs: Any) -> dict[str, str]:
    """The queues and DLQs as the cloud has them; the variables the functions read."""
    from taskmill_local.queues import create_queues

    return create_queues(sqs, "test")


@pytest.fixture
def queue_settings(queue_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> QueueSettings:
    for name, value in queue_env.items():
        monkeypatch.setenv(name, value)
    return load_settings(QueueSettings)


@pytest.fixture
def job_queue(queue_settings: QueueSettings, sqs: Any) -> JobQueue:
    # moto's short polls see every visible message, so a DLQ scan's closing long poll would
    # only wait out its second on the emptied queue (`tests.support.sqs_sampling` answers
    # as AWS does, for the tests of that).
    return JobQueue(queue_settings, client_factory=lambda: sqs, dead_letter_wait_seconds=0)


@pytest.fixture
def job_registry() -> JobTypeRegistry:
    """The registry every deployment has (the built-in types)."""
    return build_registry(JobTypeSettings())
