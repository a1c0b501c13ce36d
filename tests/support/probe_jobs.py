"""A job type for reliability tests: `probe` records every run of its body, so a test can
tell whether a body ran twice for one claim (what at-least-once delivery must never cause).

Load it in a stack with `TASKMILL_JOB_MODULES=tests.support.probe_jobs` and name the record
file in `TASKMILL_PROBE_FILE`. Each run appends one line `<job id> <attempt> <lease token>`
with a single `write` on an `O_APPEND` descriptor, so lines from concurrent bodies (threads
or processes) never interleave.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from taskmill.jobs.retry import JobFailure, PermanentJobFailure
from taskmill.jobtypes.registry import JobTypeRegistry

PROBE_TYPE = "probe"
PROBE_FILE_VARIABLE = "TASKMILL_PROBE_FILE"


class ProbePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # How long the body takes (stopping early if cancelled), to have jobs running at a fault.
    seconds: float = Field(default=0, ge=0, le=600)
    # Fails the attempt (retryable) with this probability, to exercise retries.
    fail_probability: float = Field(default=0, ge=0, le=1)


@dataclass(frozen=True)
class ProbeRun:
    job_id: UUID
    attempt: int
    lease_token: str


def record_run(path: Path, job: Any) -> None:
    line = f"{job.id} {job.attempts} {job.lease_token}\n".encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def read_runs(path: Path) -> list[ProbeRun]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        job_id, attempt, token = line.split()
        runs.append(ProbeRun(UUID(job_id), int(attempt), token))
    return runs


def probe(context: Any, payload: ProbePayload) -> dict[str, Any]:
    """Records the run, takes `seconds`, fails with `fail_probability`."""
    target = os.environ.get(PROBE_FILE_VARIABLE)
    if not target:
        # A probe that cannot record would let a test pass without observing anything.
        raise PermanentJobFailure(f"{PROBE_FILE_VARIABLE} is not set")
    record_run(Path(target), context.job)
    deadline = time.monotonic() + payload.seconds
    while time.monotonic() < deadline and not context.cancelled():
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    if random.random() < payload.fail_probability:
        raise JobFailure("probe failed on purpose")
    return {"attempt": context.job.attempts}


def register(registry: JobTypeRegistry) -> None:
    registry.register(
        PROBE_TYPE,
        payload=ProbePayload,
        description="Records each run of its body (reliability tests).",
        max_attempts=3,
        timeout_seconds=120,
        backoff_base_seconds=0.5,
        backoff_max_seconds=2.0,
    )(probe)
