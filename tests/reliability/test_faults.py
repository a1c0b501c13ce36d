"""Fault injection on real processes (`make test-slow`): the local stack's Postgres frozen and
killed, its SQS endpoint frozen and killed, the whole stack killed in the middle of jobs.

Jobs keep flowing through the batch API while it happens, sent as a careful client sends
them (an Idempotency-Key, the same request again after a 5xx or a dropped connection). Each
test ends with the invariant check of `tests/support/invariants.py` and with what a user must
see after platform trouble: every job succeeded, and none spent more than one attempt on it
(a `noop` has a single attempt: one spent on the platform's trouble would fail it).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from taskmill_local.stack import QUEUE_PREFIX
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Http,
    RunningStack,
    start_stack,
)
from tests.support.faults import (
    JobFlow,
    SqsServer,
    frozen,
    postgres_pids,
    postmaster_pid,
    stop_postgres,
)
from tests.support.invariants import ApiView, Ledger, Summary, check_invariants, submit_batch
from tests.support.probe_jobs import PROBE_FILE_VARIABLE

pytestmark = pytest.mark.slow

FREEZE_SECONDS = 20
USER_PASSWORD = "fault-user-password"


@dataclass
class FaultStack:
    running: RunningStack
    env: dict[str, str]
    probe_file: Path
    user: Http
    admin: Http
    ledger: Ledger

    @property
    def pgdata(self) -> Path:
        return self.running.data_dir / "pgdata"

    def view(self) -> ApiView:
        return ApiView(self.admin)

    def check(self, *, settle_timeout: float) -> Summary:
        started = time.monotonic()
        summary = check_invariants(
            self.view(), self.ledger, settle_timeout=settle_timeout, probe_file=self.probe_file
        )
        print(
            f"\n  {summary.line()}; settled {time.monotonic() - started:.1f} s after the flow "
            f"stopped; {self.ledger.retried_requests} create requests retried; "
            f"{summary.refunded_runs} runs refunded as lost leases"
        )
        return summary


def _logged_in(url: str, email: str, password: str) -> Http:
    client = Http(url)
    client.login(email, password)
    return client


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., FaultStack]]:
    """Start a local stack with the `probe` job type and a 5 s requeue period (lost messages
    are replaced soon); stopped, with its Postgres, at the end whatever happened."""
    stacks: list[RunningStack] = []
    data_dir = tmp_path / "data"

    def launch(extra_env: dict[str, str] | None = None) -> FaultStack:
        probe_file = tmp_path / "probe-runs.log"
        env = {
            "TASKMILL_JOB_MODULES": "tests.support.probe_jobs",
            PROBE_FILE_VARIABLE: str(probe_file),
            "TASKMILL_REQUEUE_AFTER_SECONDS": "5",
            **(extra_env or {}),
        }
        running = start_stack(data_dir, env)
        stacks.append(running)
        admin = _logged_in(running.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        email = "faults@example.com"
        status, body = Http(running.url).call(
            "POST", "/v1/auth/register", {"email": email, "password": USER_PASSWORD}
        )
        assert status in (201, 409), body  # 409: registered before a restart
        user = _logged_in(running.url, email, USER_PASSWORD)
        return FaultStack(running, env, probe_file, user, admin, Ledger())

    yield launch
    for running in stacks:
        if running.process.poll() is None:
            running.stop()
    stop_postgres(data_dir / "pgdata")  # left running by a stack that was killed


def mixed_jobs(n: int) -> list[dict[str, Any]]:
    """Short jobs whose every run is observable (probe) and single-attempt ones (noop)."""
    return [
        *({"type": "probe", "payload": {"seconds": random.choice([0, 0.2, 1])}} for _ in range(3)),
        {"type": "noop"},
        {"type": "noop"},
    ]


def assert_untouched_by_the_fault(summary: Summary) -> None:
    assert summary.by_status == Counter({"succeeded": summary.total})
    spent = {i: j["attempts"] for i, j in summary.jobs.items() if j["attempts"] != 1}
    assert spent == {}, "attempts spent on the platform's trouble"


def wait_healthy(client: Http, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            status, _ = client.call("GET", "/v1/health", timeout=5)
        except OSError:
            status = 0
        if status == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"the stack was not healthy again within {timeout} s")


def wait_restarted(pgdata: Path, killed: int, timeout: float = 60) -> float:
    """Seconds until the stack's watchdog has another postmaster running."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            pid = postmaster_pid(pgdata)
        except (OSError, ValueError, IndexError):
            pid = killed  # between the old server's pid file and the new one's
        if pid != killed and Path(f"/proc/{pid}").exists():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"Postgres was not restarted within {timeout} s")


def test_postgres_frozen_while_jobs_flow(launch) -> None:
    stack = launch()
    with JobFlow(stack.user, stack.ledger, mixed_jobs) as flow:
        time.sleep(3)
        with frozen(lambda: postgres_pids(stack.pgdata)):
            time.sleep(FREEZE_SECONDS)
        time.sleep(3)
    print(f"\n  Postgres frozen {FREEZE_SECONDS} s; {flow.batches} batches submitted around it")
    assert_untouched_by_the_fault(stack.check(settle_timeout=120))


def test_postgres_killed_while_jobs_flow(launch) -> None:
    stack = launch()
    with JobFlow(stack.user, stack.ledger, mixed_jobs) as flow:
        time.sleep(3)
        killed = postmaster_pid(stack.pgdata)
        os.kill(killed, signal.SIGKILL)
        back_after = wait_restarted(stack.pgdata, killed)
        wait_healthy(stack.admin)
        time.sleep(3)
    print(f"\n  Postgres killed: healthy again after {back_after:.1f} s; {flow.batches} batches")
    # Jobs claimed when it died keep a lease (60 s) before the sweep gives them back.
    assert_untouched_by_the_fault(stack.check(settle_timeout=180))


def test_sqs_endpoint_frozen_while_jobs_flow(launch, tmp_path) -> None:
    sqs = SqsServer(tmp_path / "sqs.log").start()
    try:
        stack = launch({"AWS_ENDPOINT_URL": sqs.url})
        with JobFlow(stack.user, stack.ledger, mixed_jobs) as flow:
            time.sleep(3)
            with frozen(sqs.pids):
                time.sleep(FREEZE_SECONDS)
            time.sleep(3)
        print(f"\n  SQS frozen {FREEZE_SECONDS} s; {flow.batches} batches submitted around it")
        assert_untouched_by_the_fault(stack.check(settle_timeout=120))
    finally:
        sqs.kill()


def test_sqs_endpoint_killed_and_replaced_while_jobs_flow(launch, tmp_path) -> None:
    sqs = SqsServer(tmp_path / "sqs.log").start()
    try:
        stack = launch({"AWS_ENDPOINT_URL": sqs.url})
        urls = sqs.create_queues(QUEUE_PREFIX)  # the stack's (creating them again is a no-op)
        with JobFlow(stack.user, stack.ledger, mixed_jobs) as flow:
            time.sleep(3)
            sqs.kill()  # every message in it is gone, in flight or not
            time.sleep(5)
            sqs.start()
            assert sqs.create_queues(QUEUE_PREFIX) == urls  # empty, under the same URLs
            time.sleep(3)
        print(f"\n  SQS killed for 5 s and replaced empty; {flow.batches} batches around it")
        assert_untouched_by_the_fault(stack.check(settle_timeout=120))
    finally:
        sqs.kill()


def _running_ids(admin: Http) -> set[str]:
    status, body = admin.call("GET", "/v1/jobs?status=running&limit=200")
    assert status == 200, body
    return {job["id"] for job in body["items"]}


def test_the_stack_killed_mid_job_and_restarted(launch) -> None:
    stack = launch()
    sleepers = [
        *({"type": "sleep", "payload": {"seconds": 6}} for _ in range(5)),
        *({"type": "probe", "payload": {"seconds": 6}} for _ in range(5)),
    ]
    created = submit_batch(
        stack.user, [*sleepers, *mixed_jobs(0) * 4], stack.ledger, key="before-kill"
    )
    # Only the 6 s jobs are sure to be still running when the kill lands a moment after the
    # read: a short probe or noop seen running may finish in between and keep its lease.
    sleeper_ids = {job["id"] for job in created[: len(sleepers)]}
    assert len(sleeper_ids) == len(sleepers), created
    deadline = time.monotonic() + 30
    while (
        len(running := _running_ids(stack.admin) & sleeper_ids) < 4 and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert len(running) >= 4, "the sleepers did not start"
    stack.running.process.send_signal(signal.SIGKILL)
    stack.running.process.wait(timeout=10)
    killed_at = time.monotonic()

    restarted = launch()  # same data directory, a new port; its Postgres kept running
    stack.admin.base = stack.user.base = restarted.running.url
    submit_batch(stack.user, mixed_jobs(1) * 4, stack.ledger, key="after-restart")
    summary = stack.check(settle_timeout=180)
    print(
        f"  stack killed with {len(running)} 6 s jobs running; all finished "
        f"{time.monotonic() - killed_at:.1f} s after the kill"
    )
    assert_untouched_by_the_fault(summary)
    # The jobs running at the crash lost their lease: the sweep gave it back (the attempt
    # refunded, so each still shows one attempt) and they ran again.
    lost = {
        i for i in running if any(e["detail"].get("lease_lost") for e in stack.view().events(i))
    }
    assert lost == running
