"""Dead-letter queues: peek, reconcile with Postgres, redrive, purge orphans.

Peeking receives with a zero visibility timeout, so the messages stay visible (a DLQ has no
consumer); it reads at most `PEEK_SCAN_LIMIT` messages, and reconciles only when it has seen
the whole queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.store import JobStore
from taskmill.lifecycle.outcomes import Outcomes
from taskmill.queue.messages import MalformedMessage, parse_message
from taskmill.queue.sqs import JobQueue
from taskmill.topology import Priority

PEEK_SCAN_LIMIT = 500


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    job_id: UUID | None
    dead_lettered_at: datetime | None
    failure_reason: str | None
    job: Job | None = None

    @property
    def problem(self) -> str | None:
        if self.job_id is None:
            return "not_a_job_message"
        if self.job is None:
            return "job_missing"
        if self.job.status is not JobStatus.FAILED:
            return "job_not_failed"
        return None

    def summary(self) -> dict[str, Any]:
        job = self.job
        return {
            "message_id": self.message_id,
            "job_id": self.job_id,
            "type": job.type if job else None,
            "owner_id": job.owner_id if job else None,
            "status": job.status.value if job else None,
            "attempts": job.attempts if job else None,
            "redrive_count": job.redrive_count if job else None,
            "last_error": job.last_error if job else None,
            "failure_reason": self.failure_reason,
            "dead_lettered_at": self.dead_lettered_at,
            "problem": self.problem,
        }


@dataclass
class Peek:
    messages: list[DeadLetter]
    complete: bool
    missing_messages: list[UUID] = field(default_factory=list)


def _read(
    queue: JobQueue, priority: Priority, *, limit: int, visibility: int
) -> tuple[list[DeadLetter], bool]:
    seen: dict[str, DeadLetter] = {}
    complete = False
    while len(seen) < limit:
        messages = queue.receive_dead_letters(priority, visibility_seconds=visibility)
        fresh = [m for m in messages if m.message_id not in seen]
        if not fresh:
            complete = True
            break
        for message in fresh:
            try:
                job_id: UUID | None = parse_message(message.body).job_id
            except MalformedMessage:
                job_id = None
            seen[message.message_id] = DeadLetter(
                message_id=message.message_id,
                receipt_handle=message.receipt_handle,
                job_id=job_id,
                dead_lettered_at=message.sent_at,
                failure_reason=message.attributes.get("failure_reason"),
            )
    return list(seen.values()), complete


def _attach_jobs(store: JobStore, letters: list[DeadLetter]) -> None:
    ids = [letter.job_id for letter in letters if letter.job_id is not None]
    jobs = {job.id: job for job in store.get_many(ids)} if ids else {}
    for letter in letters:
        letter.job = jobs.get(letter.job_id) if letter.job_id else None


def peek(store: JobStore, queue: JobQueue, priority: Priority, *, limit: int = 100) -> Peek:
    letters, complete = _read(queue, priority, limit=min(limit, PEEK_SCAN_LIMIT), visibility=0)
    _attach_jobs(store, letters)
    result = Peek(letters, complete)
    if complete:
        present = {letter.job_id for letter in letters}
        result.missing_messages = [
            job.id
            for job in store.failed_jobs(priority=priority.value, limit=PEEK_SCAN_LIMIT)
            if job.id not in present
        ]
    return result


@dataclass
class RedriveResult:
    redriven: list[UUID] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    dry_run: bool = False


def redrive(
    outcomes: Outcomes,
    priority: Priority,
    *,
    actor: str,
    job_ids: set[UUID] | None = None,
    job_type: str | None = None,
    limit: int = 100,
    dry_run: bool = False,
    purge_orphans: bool = False,
    exclude: frozenset[UUID] | set[UUID] = frozenset(),
) -> RedriveResult:
    """Move matching dead-lettered jobs back: fresh attempt budget, `redrive_count + 1`, a new
    message on the source queue, the DLQ message deleted. A message whose job no longer
    exists is reported (and deleted with `purge_orphans`). Jobs in `exclude` are left where
    they are (a background redrive passes the jobs it already redrove)."""
    store, queue = outcomes.store, outcomes.queue
    # Held invisible while we work so a concurrent redrive does not take the same messages.
    letters, _ = _read(queue, priority, limit=PEEK_SCAN_LIMIT, visibility=60)
    _attach_jobs(store, letters)
    result = RedriveResult(dry_run=dry_run)
    chosen: list[DeadLetter] = []
    release: list[DeadLetter] = []
    for letter in letters:
        wanted = (
            (job_ids is None or letter.job_id in job_ids)
            and (job_type is None or (letter.job is not None and letter.job.type == job_type))
            and letter.job_id not in exclude
        )
        if wanted and letter.problem in ("job_missing", "not_a_job_message"):
            result.orphans.append(letter.message_id)
            if purge_orphans and not dry_run:
                _delete(queue, priority, letter)
                result.purged.append(letter.message_id)
            else:
                release.append(letter)
        elif wanted and len(chosen) < limit and letter.job is not None:
            chosen.append(letter)
        else:
            release.append(letter)
    if dry_run:
        result.redriven = [letter.job_id for letter in chosen if letter.job_id]
        release.extend(chosen)
    else:
        redriven = outcomes.redrive(
            [letter.job for letter in chosen if letter.job is not None], actor=actor, resend=True
        )
        done = {job.id for job in redriven}
        for letter in chosen:
            if letter.job_id in done or (letter.job and letter.job.status is not JobStatus.FAILED):
                # Redriven now, or its job already runs again: the message is spent.
                _delete(queue, priority, letter)
            else:
                release.append(letter)
        result.redriven = sorted(done, key=str)
        result.skipped = [c.message_id for c in chosen if c.job_id not in done]
    for letter in release:
        queue.release_dead_letter(priority, letter.receipt_handle)
    return result


def _delete(queue: JobQueue, priority: Priority, letter: DeadLetter) -> None:
    queue.delete_dead_letter(priority, letter.receipt_handle)


def describe(result: RedriveResult) -> dict[str, Any]:
    return json.loads(json.dumps(result.__dict__, default=str))
