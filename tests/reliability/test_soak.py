"""A soak (`make test-slow`): 20,000 mixed jobs from four users through the batch API of a local
stack on loopback — successes, random failures with retries, delays, dependencies, and
cancellations through the API, some racing the worker — ending with every job accounted for.

The submitters keep at most ~500 jobs unfinished (moto's SendMessageBatch costs grow with
the backlog; a real queue's do not). The figures are printed; nothing is asserted on time.
`TASKMILL_SOAK_JOBS` runs a smaller soak by hand.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, start_stack
from tests.support.faults import stop_postgres
from tests.support.invariants import ApiView, Ledger, check_invariants, submit_batch
from tests.support.probe_jobs import PROBE_FILE_VARIABLE

pytestmark = pytest.mark.slow

TOTAL = int(os.environ.get("TASKMILL_SOAK_JOBS", "20000"))
USERS = 4
BATCH = 100
MAX_UNFINISHED = 500
PASSWORD = "soak-user-password"
# Categories, one tag each, and how many of every batch of 100.
MIX = {
    "plain": 35,  # noop, any priority: must succeed
    "probe": 20,  # records its runs; fails 10% of attempts, retried
    "flaky": 15,  # `fail` with probability 0.3 per attempt: succeeds or fails for good
    "delayed": 10,  # noop 1-5 s later
    "dependent": 10,  # noop after 1-2 jobs of the previous batch: runs iff they succeeded
    "cancelled": 5,  # noop delayed 20 s, cancelled through the API at once
    "raced": 5,  # probe of 0.5 s, cancelled at once: caught queued, running, or too late
}


@dataclass
class Soak:
    admin: Http
    ledger: Ledger = field(default_factory=Ledger)
    category: dict[str, str] = field(default_factory=dict)  # job id -> category
    cancel_answers: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _unfinished: tuple[float, int] = (0.0, 0)

    def unfinished(self) -> int:
        """Unfinished jobs of every user, asked at most every quarter second."""
        with self.lock:
            at, count = self._unfinished
            if time.monotonic() - at > 0.25:
                count = ApiView(self.admin).unfinished()
                self._unfinished = (time.monotonic(), count)
            return count


def _batch(rng: random.Random, previous: list[str]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for category, n in MIX.items():
        for _ in range(n):
            job: dict[str, Any] = {"type": "noop", "tags": ["soak", category]}
            if category == "plain":
                job["priority"] = rng.choice(["high", "normal", "low"])
            elif category == "probe":
                job.update(type="probe", payload={"fail_probability": 0.1})
            elif category == "flaky":
                job.update(
                    type="fail",
                    payload={"probability": 0.3},
                    backoff_base_seconds=0.2,
                    backoff_max_seconds=1,
                )
            elif category == "delayed":
                job["delay_seconds"] = rng.uniform(1, 5)
            elif category == "dependent" and previous:
                job["depends_on"] = rng.sample(previous, rng.choice([1, 2]))
            elif category == "cancelled":
                job["delay_seconds"] = 20
            elif category == "raced":
                job.update(type="probe", payload={"seconds": 0.5})
            jobs.append(job)
    rng.shuffle(jobs)
    return jobs


def _submitter(soak: Soak, client: Http, user: int, batches: int) -> None:
    rng = random.Random(user)
    previous: list[str] = []
    for n in range(batches):
        while soak.unfinished() > MAX_UNFINISHED:
            time.sleep(0.1)
        created = submit_batch(client, _batch(rng, previous), soak.ledger, key=f"soak-{user}-{n}")
        assert len(created) == BATCH, "a batch got no answer"
        with soak.lock:
            for job in created:
                soak.category[job["id"]] = job["tags"][1]
        for job in created:
            if job["tags"][1] in ("cancelled", "raced"):
                status, body = client.call("POST", f"/v1/jobs/{job['id']}/cancel")
                assert status in (200, 409), body  # 409: it had finished already
                with soak.lock:
                    soak.cancel_answers[status] += 1
        previous = [j["id"] for j in created if j["tags"][1] in ("plain", "flaky", "probe")]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    probe_file = tmp_path / "probe-runs.log"
    env = {"TASKMILL_JOB_MODULES": "tests.support.probe_jobs", PROBE_FILE_VARIABLE: str(probe_file)}
    running = start_stack(tmp_path / "data", env)
    try:
        yield running.url, probe_file
    finally:
        if running.process.poll() is None:
            running.stop()
        stop_postgres(tmp_path / "data" / "pgdata")


def _verdict(category: str, job: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> bool:
    """Whether the job's final state is one its category allows."""
    status = job["status"]
    if category in ("plain", "delayed"):
        return status == "succeeded"
    if category in ("probe", "flaky"):
        return status in ("succeeded", "failed")
    if category == "cancelled":
        return status == "cancelled"
    if category == "raced":
        return status in ("cancelled", "succeeded")
    deps_ok = all(jobs[d]["status"] == "succeeded" for d in job["depends_on"])
    return status == ("succeeded" if deps_ok else "cancelled")


def test_soak_of_mixed_jobs_through_the_batch_api(stack) -> None:
    url, probe_file = stack
    admin = Http(url)
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    soak = Soak(admin)
    clients = []
    for user in range(USERS):
        client = Http(url)
        email = f"soak{user}@example.com"
        status, body = client.call(
            "POST", "/v1/auth/register", {"email": email, "password": PASSWORD}
        )
        assert status == 201, body
        client.login(email, PASSWORD)
        clients.append(client)
    batches = TOTAL // (USERS * BATCH)
    started = time.monotonic()
    errors: list[BaseException] = []

    def submit(user: int) -> None:
        try:
            _submitter(soak, clients[user], user, batches)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(u,)) for u in range(USERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    submitted = time.monotonic() - started
    summary = check_invariants(
        ApiView(admin), soak.ledger, settle_timeout=300, probe_file=probe_file, history_sample=200
    )
    elapsed = time.monotonic() - started

    assert summary.total == len(soak.ledger.accepted) == batches * USERS * BATCH
    assert sum(summary.by_status.values()) == summary.total
    by_category: Counter[tuple[str, str]] = Counter()
    wrong = []
    for job_id, job in summary.jobs.items():
        category = soak.category[job_id]
        by_category[(category, job["status"])] += 1
        if not _verdict(category, job, summary.jobs):
            wrong.append(f"{job_id} {category} {job['status']} {job['last_error']}")
    assert wrong == [], wrong[:20]
    print(
        f"\n  soak: {summary.line()}"
        f"\n  submitted in {submitted:.1f} s ({summary.total / submitted:.0f} jobs/s accepted); "
        f"all final {elapsed:.1f} s after the first request ({summary.total / elapsed:.0f} jobs/s "
        f"end to end); {soak.ledger.retried_requests} create requests retried; "
        f"cancel answers {dict(soak.cancel_answers)}"
    )
    for category in MIX:
        states = {s: n for (c, s), n in sorted(by_category.items()) if c == category}
        print(f"    {category:10} {states}")
