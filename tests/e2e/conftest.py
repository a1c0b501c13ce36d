"""The local stack as a user runs it (`python -m taskmill_local.stack`), in a subprocess on ports
it binds itself and a temporary data directory, talked to over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@e2e.test"
ADMIN_PASSWORD = "e2e-admin-password"


@contextmanager
def closed_port() -> Iterator[int]:
    """A port where nothing answers while the block runs: bound and held, never listening,
    so a connection is refused and no other process (another xdist worker's stack) can
    start listening there meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


class Http:
    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else None

    def login(self, email: str, password: str) -> None:
        status, body = self.call("POST", "/v1/auth/login", {"email": email, "password": password})
        assert status == 200, body
        self.token = body["access_token"]

    def wait_for(self, job_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.call("GET", f"/v1/jobs/{job_id}")
            assert status == 200, body
            if body["status"] in statuses or time.monotonic() > deadline:
                return body
            time.sleep(0.1)


@contextmanager
def live_redrive_task(data_dir: Path, priority: str) -> Iterator[str]:
    """A background DLQ redrive of `priority` that is running as far as the stack knows, as
    one whose chunk is still at work would be (a real one finishes in moments locally): a
    row in the stack's own Postgres, failed again on the way out so it blocks no later
    redrive of the priority."""
    import psycopg
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir / "pgdata")
    assert info is not None, "the stack's Postgres is running"
    with psycopg.connect(info.get_uri(database="taskmill"), autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO redrive_tasks (id, priority, criteria, status) "
            "VALUES (gen_random_uuid(), %s, '{}', 'running') RETURNING id",
            (priority,),
        ).fetchone()
        assert row is not None
        try:
            yield str(row[0])
        finally:
            conn.execute(
                "UPDATE redrive_tasks SET status = 'failed', finished_at = now() WHERE id = %s",
                (row[0],),
            )


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    port: int
    log: Path  # its output

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def stack_env(
    data_dir: Path, env: dict[str, str] | None = None, *, port: int = 0
) -> dict[str, str]:
    """The environment of a `python -m taskmill_local.stack` on `data_dir`. Its API and its SQS
    listen on ports the stack binds itself (0: any free one; it writes the API's URL to
    `<data_dir>/api.url`) unless `port` or `env` name one: a port chosen here and bound there
    later could be taken by another test's stack in between."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL")},
        "TASKMILL_DATA_DIR": str(data_dir),
        "TASKMILL_PORT": str(port),
        "TASKMILL_SQS_PORT": "0",
        "TASKMILL_ADMIN_EMAIL": ADMIN_EMAIL,
        "TASKMILL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }


def wait_until_healthy(
    process: subprocess.Popen[Any], data_dir: Path, log: Path, timeout: float = 90
) -> str:
    """The URL of the stack `process` runs on `data_dir`, once its API answers healthy: read
    from the `api.url` it writes after binding its port, so it is this stack's own."""
    url_file = data_dir / "api.url"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log.read_text()[-3000:])
        if url_file.exists():
            url = url_file.read_text().strip()
            try:
                with urllib.request.urlopen(url + "/v1/health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the local stack did not become healthy in {timeout:.0f} s")


def start_stack(
    data_dir: Path, env: dict[str, str] | None = None, *, port: int = 0
) -> RunningStack:
    """Start `python -m taskmill_local.stack`; `env` adds variables (an SQS endpoint of the test's
    own, job modules, shorter recovery periods). `port` 0 (the default): any free port."""
    env = stack_env(data_dir, env, port=port)
    data_dir.mkdir(parents=True, exist_ok=True)
    # A file left by a stack that was killed names a port that is no longer ours.
    (data_dir / "api.url").unlink(missing_ok=True)
    fd, log_name = tempfile.mkstemp(prefix="stack-", suffix=".log", dir=data_dir.parent)
    log = Path(log_name)
    with os.fdopen(fd, "w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "taskmill_local.stack"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = wait_until_healthy(process, data_dir, log)
    return RunningStack(process, url, data_dir, int(urlsplit(url).port or 0), log)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    running = start_stack(data_dir)
    yield running
    if running.process.poll() is None:
        running.stop()


@pytest.fixture
def http(stack: RunningStack) -> Http:
    return Http(stack.url)
