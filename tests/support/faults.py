"""Fault injection on real processes: the local stack, its embedded Postgres, an SQS endpoint
in a process of its own; and a flow of jobs submitted while they fail."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ROOT, Http
from tests.support.invariants import Ledger, submit_batch

# ---- processes -------------------------------------------------------------------------


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (2nd field) is in parentheses and may hold spaces: split after it.
    return int(stat.rsplit(")", 1)[1].split()[1])


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def postgres_pids(pgdata: Path) -> list[int]:
    """Every process of the embedded server of `pgdata`: the postmaster it names and the
    backends and auxiliary processes it forked."""
    postmaster = postmaster_pid(pgdata)
    children = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent_of(int(entry.name)) == postmaster
    ]
    return [postmaster, *children]


@contextlib.contextmanager
def frozen(find_pids: Callable[[], list[int]]) -> Iterator[None]:
    """SIGSTOP the processes `find_pids` names for the block, SIGCONT them after it whatever
    happens. Asked again until it names no new one: a process forked between the listing and
    the stop of its parent is stopped too."""
    stopped: list[int] = []
    try:
        while new := [pid for pid in find_pids() if pid not in stopped]:
            for pid in new:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def stop_postgres(pgdata: Path) -> None:
    """Stop an embedded server a killed stack left behind (fast shutdown, then SIGKILL)."""
    try:
        pid = postmaster_pid(pgdata)
    except (OSError, ValueError, IndexError):
        return
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on port {port} after {timeout} s")
        time.sleep(0.1)


class SqsServer:
    """A moto server in a process of its own, so a test can freeze (SIGSTOP) and kill it and
    start a new one on the same port (the queue URLs the stack knows stay valid).

    The first start listens on a port the server binds itself (port 0), read from the line
    it prints: a port chosen by the test and bound later could be taken by another test's
    process in between. A replacement binds the same port again, as the fault requires."""

    def __init__(self, log: Path, port: int = 0) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SqsServer:
        self.log.touch()
        start = self.log.stat().st_size
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if self.port == 0:
            self.port = self._bound_port(start)
        wait_for_port(self.port)
        return self

    def _bound_port(self, start: int, timeout: float = 30) -> int:
        """The port in werkzeug's `Running on http://127.0.0.1:<port>` line, past `start`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log.open("rb") as log:
                log.seek(start)
                found = re.search(rb"Running on http://127\.0\.0\.1:(\d+)", log.read())
            if found:
                return int(found.group(1))
            assert self.process is not None
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"the SQS server did not say its port in {timeout} s")

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def create_queues(self, prefix: str) -> dict[str, str]:
        """The stack's queues (same names, so the same URLs) on a server that lost them."""
        import boto3

        from taskmill_local.queues import create_queues

        sqs = boto3.client(
            "sqs",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        return create_queues(sqs, prefix)


# ---- a flow of jobs ------------------------------------------------------------------------


class JobFlow:
    """Submits `make_jobs(n)` through the batch API every `interval` seconds on a thread,
    each batch with its own Idempotency-Key, retried while the platform is in trouble."""

    def __init__(
        self,
        client: Http,
        ledger: Ledger,
        make_jobs: Callable[[int], list[dict[str, Any]]],
        *,
        interval: float = 0.3,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.make_jobs = make_jobs
        self.interval = interval
        self.batches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-flow", daemon=True)
        self._prefix = uuid.uuid4().hex[:8]
        self._stopped = False
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                submit_batch(self.client, self.make_jobs(n), self.ledger, key=f"{self._prefix}-{n}")
                self.batches += 1
                self._stop.wait(self.interval)
        except BaseException as exc:  # reported by stop(), in the test's thread
            self.error = exc

    def __enter__(self) -> JobFlow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._thread.join(timeout=240)
        assert not self._thread.is_alive(), "the job flow did not stop"
        if self.error is not None:
            raise AssertionError(f"the job flow failed: {self.error!r}") from self.error
