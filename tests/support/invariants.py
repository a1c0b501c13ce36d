"""The check every fault test and the soak end with: over the API as an operator sees it
(`ApiView`), or in Postgres for integration tests without HTTP (`DatabaseView`).

- every job the API accepted (201/200) is found, once, in one valid state consistent with
  its fields; no job exists that no client asked for;
- nothing is left unfinished: every job reaches a final state within a bound (a `queued`
  job without a message, a `running` job whose worker died, would stay there);
- no job body ran twice for one claim, and a job's body ran no more often than its
  attempts plus the leases the platform lost (refunded attempts): `probe` jobs record their
  runs (`tests/support/probe_jobs.py`).

Creates go through `submit_batch`, which sends an `Idempotency-Key` and retries an answer it
cannot trust (5xx, a dropped connection, a timeout) with the same key, as a careful client
does; the `Ledger` keeps the jobs the API answered with.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from taskmill.db import Database
from taskmill.jobs.model import Job
from taskmill.jobs.store import JobStore

from tests.e2e.conftest import Http
from tests.support.probe_jobs import PROBE_TYPE, read_runs

UNFINISHED = ("scheduled", "waiting", "queued", "running")
FINAL = ("succeeded", "failed", "cancelled")
# What a client may meet while the platform is in trouble: worth the same request again.
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


@dataclass
class Ledger:
    """Jobs the API accepted, by id, and the keys of creates that never got an answer."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    unanswered_keys: set[str] = field(default_factory=set)
    retried_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, jobs: Iterable[dict[str, Any]]) -> None:
        with self.lock:
            for job in jobs:
                self.accepted[job["id"]] = job


def submit_batch(
    client: Http,
    jobs: list[dict[str, Any]],
    ledger: Ledger,
    *,
    key: str,
    give_up_after: float = 180.0,
) -> list[dict[str, Any]]:
    """POST /v1/jobs/batch with `Idempotency-Key: key`; retried with the same key while the
    answer cannot be trusted. Returns the jobs (empty if it never got an answer, and then
    the jobs may or may not exist: their keys are `<key>#<i>`)."""
    deadline = time.monotonic() + give_up_after
    attempt = 0
    while True:
        attempt += 1
        try:
            status, body = client.call(
                "POST", "/v1/jobs/batch", {"jobs": jobs}, headers={"Idempotency-Key": key}
            )
        except CONNECTION_ERRORS:
            status, body = 0, None
        if status in (200, 201):
            ledger.accept(body["items"])
            return list(body["items"])
        if status and status not in RETRYABLE_STATUSES:
            raise AssertionError(f"a batch create was refused: {status} {body}")
        with ledger.lock:
            ledger.retried_requests += 1
        if time.monotonic() > deadline:
            with ledger.lock:
                ledger.unanswered_keys.update(f"{key}#{i}" for i in range(len(jobs)))
            return []
        time.sleep(min(2.0, 0.1 * attempt) + random.random() * 0.1)


class JobView(Protocol):
    """Where the check reads jobs: the API as an admin (a running stack) or Postgres
    (integration tests without HTTP). Jobs are dicts with the API's field names."""

    def unfinished(self) -> int: ...
    def all_jobs(self) -> list[dict[str, Any]]: ...
    def events(self, job_id: str) -> list[dict[str, Any]]: ...


@dataclass
class ApiView:
    admin: Http  # holds an admin token

    def unfinished(self) -> int:
        status, body = self.admin.call("GET", "/v1/stats")
        assert status == 200, body
        return sum(int(body["by_status"].get(name, 0)) for name in UNFINISHED)

    def all_jobs(self) -> list[dict[str, Any]]:
        return self._every_page("/v1/jobs")

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The whole history: every page of it."""
        return self._every_page(f"/v1/jobs/{job_id}/events")

    def _every_page(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            status, body = self.admin.call(
                "GET", f"{path}?limit=200" + (f"&cursor={cursor}" if cursor else "")
            )
            assert status == 200, body
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                return items


@dataclass
class DatabaseView:
    db: Database

    def unfinished(self) -> int:
        [row] = self.db.execute(
            "SELECT count(*) AS n FROM jobs WHERE status = ANY (%s)", (list(UNFINISHED),)
        )
        return int(row["n"])

    def all_jobs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM jobs")
        return [Job.model_validate(row).model_dump(mode="json") for row in rows]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        # The store's reader: the API's history, derived the same way.
        return JobStore(self.db).events(UUID(job_id))


def wait_until_settled(view: JobView, *, timeout: float) -> bool:
    """Wait until no job is unfinished, at most `timeout` seconds; True if they all are."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if view.unfinished() == 0:
                return True
        except CONNECTION_ERRORS:
            pass  # the stack may still be coming back from a fault
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


@dataclass
class Summary:
    total: int
    by_status: Counter[str]
    by_type_and_status: Counter[tuple[str, str]]
    probe_runs: int
    refunded_runs: int
    jobs: dict[str, dict[str, Any]]

    def line(self) -> str:
        states = ", ".join(f"{name} {self.by_status[name]}" for name in FINAL)
        return f"{self.total} jobs: {states}; probe runs {self.probe_runs}"


def _state_problems(job: dict[str, Any]) -> list[str]:
    status = job["status"]
    problems = []
    if status not in FINAL:
        problems.append(f"is still {status}")
    if job["attempts"] > job["max_attempts"]:
        problems.append(f"has {job['attempts']} attempts of {job['max_attempts']}")
    if status in FINAL and (job["finished_at"] is None or job["lease_until"] is not None):
        problems.append(f"is {status} with finished_at/lease_until inconsistent")
    if status == "succeeded" and (
        job["attempts"] < 1 or job["started_at"] is None or job["progress"] != 100
    ):
        problems.append("succeeded without a recorded attempt")
    if status == "failed" and not job["last_error"]:
        problems.append("failed without last_error")
    return problems


def _history_problems(view: JobView, job: dict[str, Any]) -> list[str]:
    """The job's events chain from its first state to its current one, step by step."""
    problems = []
    previous = None
    for event in view.events(job["id"]):
        if event["from_status"] != previous:
            problems.append(
                f"history jumps from {previous} to {event['from_status']}->{event['to_status']}"
            )
        previous = event["to_status"]
    if previous != job["status"]:
        problems.append(f"history ends in {previous}, the job is {job['status']}")
    return problems


def _refunds(view: JobView, job_id: str) -> int:
    return sum(1 for e in view.events(job_id) if (e.get("detail") or {}).get("lease_lost"))


def check_invariants(
    view: JobView,
    ledger: Ledger,
    *,
    settle_timeout: float,
    probe_file: Path | None = None,
    history_sample: int = 100,
) -> Summary:
    """Wait (at most `settle_timeout`) for every job to finish, then check them all.
    Fails with every problem found, listed."""
    settled = wait_until_settled(view, timeout=settle_timeout)
    listed = view.all_jobs()
    problems: list[str] = []
    if not settled:
        stuck = [j for j in listed if j["status"] in UNFINISHED]
        problems.append(
            f"{len(stuck)} jobs unfinished after {settle_timeout:.0f} s, e.g. "
            + "; ".join(f"{j['id']} {j['type']} {j['status']} {j['updated_at']}" for j in stuck[:5])
        )
    counts = Counter(job["id"] for job in listed)
    problems += [f"job {i} is listed {n} times" for i, n in counts.items() if n > 1]
    jobs = {job["id"]: job for job in listed}
    with ledger.lock:
        accepted = dict(ledger.accepted)
        unanswered = set(ledger.unanswered_keys)
    problems += [
        f"accepted job {i} ({j['type']}) is lost" for i, j in accepted.items() if i not in jobs
    ]
    keys = Counter(job["idempotency_key"] for job in listed if job["idempotency_key"])
    problems += [f"{n} jobs have the key {k}" for k, n in keys.items() if n > 1]
    for job_id, job in jobs.items():
        if job_id not in accepted and job["idempotency_key"] not in unanswered:
            problems.append(f"job {job_id} ({job['type']}) was created by no accepted request")
        if job_id in accepted and accepted[job_id]["type"] != job["type"]:
            problems.append(f"job {job_id} changed type")
        problems += [f"job {job_id} ({job['type']}) {p}" for p in _state_problems(job)]
    for job in random.sample(listed, min(history_sample, len(listed))):
        problems += [f"job {job['id']} {p}" for p in _history_problems(view, job)]
    runs = read_runs(probe_file) if probe_file is not None else []
    per_claim = Counter((run.job_id, run.lease_token) for run in runs)
    problems += [
        f"probe {job_id} ran {n} times for one claim (lease {token})"
        for (job_id, token), n in per_claim.items()
        if n > 1
    ]
    per_job = Counter(str(run.job_id) for run in runs)
    refunded = 0
    for job_id, n in per_job.items():
        probed = jobs.get(job_id)
        if probed is None or probed["type"] != PROBE_TYPE:
            problems.append(f"a probe run names job {job_id}, which is not a listed probe job")
            continue
        if n > probed["attempts"]:
            refunds = _refunds(view, job_id)
            refunded += refunds
            if n > probed["attempts"] + refunds:
                problems.append(
                    f"probe {job_id} ran {n} times for {probed['attempts']} attempts "
                    f"and {refunds} lost leases"
                )
    for job_id, job in jobs.items():
        if job["type"] == PROBE_TYPE and job["status"] == "succeeded" and job_id not in per_job:
            problems.append(f"probe {job_id} succeeded but its body never ran")
    assert not problems, f"{len(problems)} invariant violations:\n" + "\n".join(problems[:40])
    return Summary(
        total=len(jobs),
        by_status=Counter(job["status"] for job in listed),
        by_type_and_status=Counter((job["type"], job["status"]) for job in listed),
        probe_runs=len(runs),
        refunded_runs=refunded,
        jobs=jobs,
    )
