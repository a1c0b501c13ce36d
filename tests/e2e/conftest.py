"""The local stack as a user runs it (`python -m taskmill_local.stack`), in a subprocess on a free
port and a temporary data directory, talked to over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@e2e.test"
ADMIN_PASSWORD = "e2e-admin-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    port: int

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def stack_env(data_dir: Path, port: int, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `python -m taskmill_local.stack` on `data_dir` and `port` (its SQS on a
    free port of its own, unless `env` says otherwise)."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL")},
        "TASKMILL_DATA_DIR": str(data_dir),
        "TASKMILL_PORT": str(port),
        "TASKMILL_SQS_PORT": str(free_port()),
        "TASKMILL_ADMIN_EMAIL": ADMIN_EMAIL,
        "TASKMILL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }


def start_stack(data_dir: Path, port: int, env: dict[str, str] | None = None) -> RunningStack:
    """Start `python -m taskmill_local.stack`; `env` adds variables (an SQS endpoint of the test's
    own, job modules, shorter recovery periods)."""
    env = stack_env(data_dir, port, env)
    log = open(data_dir.parent / f"stack-{port}.log", "a")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "taskmill_local.stack"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((data_dir.parent / f"stack-{port}.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(url + "/v1/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return RunningStack(process, url, data_dir, port)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the local stack did not become healthy in 90 s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    running = start_stack(data_dir, free_port())
    yield running
    if running.process.poll() is None:
        running.stop()


@pytest.fixture
def http(stack: RunningStack) -> Http:
    return Http(stack.url)
