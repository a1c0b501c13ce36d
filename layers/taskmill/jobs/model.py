"""The job as stored in Postgres, and what a client asks for when creating one."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from itertools import accumulate
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from taskmill.topology import Priority

# The largest result a job keeps, as compact JSON: what an external worker's /complete can
# carry (a 1 MiB request), and small enough that the job, payload included, still fits in
# the one Lambda response (6 MB at most) that GET /v1/jobs/{id} answers it in.
MAX_RESULT_BYTES = 1024 * 1024
# The most of an error a job keeps as `last_error` (and the worker logs): the start of a
# body's error says what it is; a megabyte of it would be in every poll and log line.
LAST_ERROR_MAX = 4000


# The deepest JSON a job holds (payload, result), in nested arrays and objects: what the API
# takes in a request body (`taskmill.api.request_checks`: Python's parser recurses), and well
# within what its answers can hold (pydantic's serializer gives up at 255 levels, so a
# deeper result made GET /v1/jobs/{id} and each list page holding the job answer 500).
MAX_JSON_DEPTH = 64

# A JSON string literal (escapes included), or an unterminated one up to the end of the
# text: brackets inside are text, not nesting. Matching an unterminated string to the end
# keeps one pass linear (otherwise each later quote would start another scan to the end).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_CHANGE = {"[": 1, "{": 1, "]": -1, "}": -1}


def nested_deeper_than(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON `text` nests arrays and objects more than `limit` deep (openings count
    even without their closings: a parser recurses into "[[[[" before it finds out)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the usual case, without a pass over the strings
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    if len(brackets) <= limit:
        return False
    return max(accumulate(map(_DEPTH_CHANGE.__getitem__, brackets))) > limit


def result_bytes(result: Any) -> int:
    """The size of a result as stored and answered (TypeError for what JSON cannot hold)."""
    return len(json.dumps(result, separators=(",", ":")))


def non_finite_at(value: Any) -> tuple[str | int, ...] | None:
    """Where in a JSON-like value a NaN or an Infinity sits (keys and indexes), or None.
    Python's json module reads and writes them, but they are not JSON: Postgres refuses
    them and most clients cannot read them back. A loop, not recursion: a body nested as
    deep as the JSON parser allows must not exhaust the stack here."""
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path
        if isinstance(item, dict):
            pending.extend(((*path, key), inner) for key, inner in reversed(item.items()))
        elif isinstance(item, list):
            pending.extend(((*path, i), inner) for i, inner in reversed(list(enumerate(item))))
    return None


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED = (JobStatus.SCHEDULED, JobStatus.WAITING, JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# A job can be cancelled outright only before a worker holds it.
CANCELLABLE = (JobStatus.SCHEDULED, JobStatus.WAITING, JobStatus.QUEUED)
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)
# A progress message is in every poll of its job: kept short, from a body or the API.
PROGRESS_MESSAGE_MAX = 500


class Job(BaseModel):
    """A row of `jobs` (the truth about a job)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    owner_id: UUID
    type: str
    payload: dict[str, Any]
    priority: Priority
    status: JobStatus
    external: bool
    attempts: int
    max_attempts: int
    timeout_seconds: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    run_at: datetime
    idempotency_key: str | None
    idempotency_hash: str | None = None
    depends_on: list[UUID]
    webhook_url: str | None
    name: str | None
    description: str | None
    tags: list[str]
    limit_keys: list[str] = []
    progress: int
    progress_message: str | None
    result: Any
    last_error: str | None
    correlation_id: str | None
    send_pending: bool
    webhook_pending: bool = False
    cancel_requested: bool
    lease_token: UUID | None
    lease_until: datetime | None
    redrive_count: int
    lost_leases: int = 0
    has_dependents: bool = False
    external_ref: str | None = None
    # The job whose body created this one (`context.submit`); None for every other job.
    parent_id: UUID | None = None
    queued_at: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Finished:
    """What the follow-ups of a finished job need of its row. The worker's successes return
    only this: decoding and validating whole rows (~45 columns) cost ~8 % of a batch of ten,
    and the whole row is needed only for a completion webhook (those jobs come back whole
    from the same statement: `JobStore.succeed_batch`)."""

    id: UUID
    status: JobStatus
    has_dependents: bool
    webhook_pending: bool


def log_keys(job: Job) -> dict[str, str | int | None]:
    """What every log line about a job carries, whoever writes it."""
    return {
        "job_id": str(job.id),
        "job_type": job.type,
        "correlation_id": job.correlation_id,
        "attempt": job.attempts,
    }


class NewJob(BaseModel):
    """A validated request to create a job; defaults already resolved from its type."""

    model_config = ConfigDict(frozen=True)

    type: str
    payload: dict[str, Any]
    priority: Priority
    max_attempts: int
    timeout_seconds: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    external: bool = False
    run_at: datetime | None = None
    idempotency_key: str | None = None
    depends_on: list[UUID] = []
    webhook_url: str | None = None
    name: str | None = None
    description: str | None = None
    tags: list[str] = []
    limit_keys: list[str] = []
    correlation_id: str | None = None
    # A fingerprint of what the client sent with `idempotency_key` (None: not compared).
    request_hash: str | None = None
    # Fingerprints earlier releases stored for the same request: a match is a repeat too.
    earlier_request_hashes: list[str] = []
    # Set by the platform only, for a child job (`context.submit`): its id is handed to the
    # body before the row exists, so a later child of the same body can depend on it.
    id: UUID | None = None
    parent_id: UUID | None = None
