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


def peek(
    store: JobStore,
    queue: JobQueue,
    priority: Priority,
    *,
    limit: int = 100,
    hidden_by_task: bool = False,
) -> Peek:
    """`hidden_by_task`: a background redrive is running and keeps the messages it passed
    over hidden, so even a scan that reads to the end has not seen the whole DLQ: it is not
    `complete` and reconciles nothing (their jobs would look as if they had no message)."""
    letters, read_all = _read(queue, priority, limit=min(limit, PEEK_SCAN_LIMIT), visibility=0)
    _attach_jobs(store, letters)
    complete = read_all and not hidden_by_task
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
    # The scan read every message the DLQ showed (fewer than PEEK_SCAN_LIMIT).
    complete: bool = False
    # Message id -> receipt handle of the messages kept hidden (`pass_over_seconds`).
    passed_over: dict[str, str] = field(default_factory=dict)


def _wanted(
    letter: DeadLetter,
    job_ids: set[UUID] | None,
    job_type: str | None,
    exclude: frozenset[UUID] | set[UUID],
    failed_before: datetime | None,
) -> bool:
    job = letter.job
    failed_since = (
        failed_before is not None
        and job is not None
        and job.status is JobStatus.FAILED
        and job.finished_at is not None
        and job.finished_at > failed_before
    )
    return (
        (job_ids is None or letter.job_id in job_ids)
        and (job_type is None or (job is not None and job.type == job_type))
        and letter.job_id not in exclude
        and not failed_since
    )


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
    failed_before: datetime | None = None,
    pass_over_seconds: int | None = None,
) -> RedriveResult:
    """Move matching dead-lettered jobs back: fresh attempt budget, `redrive_count + 1`, a new
    message on the source queue, the DLQ message deleted. A message whose job no longer
    exists is reported (and deleted with `purge_orphans`). One scan reads up to
    `PEEK_SCAN_LIMIT` messages and redrives up to `limit` of them.

    A background redrive, which scans again and again, passes what keeps it going through
    the whole queue and lets it end: `exclude`, the jobs it already redrove (left where they
    are); `failed_before`, when it was asked for (a job that failed since is left for the next
    redrive); and `pass_over_seconds`: the messages it leaves (not matching, excluded, orphans
    it keeps, jobs it could not redrive) stay hidden that long instead of being released, so
    its next scan reads on past them. They are in `passed_over` for the caller to release
    when it ends. Matching messages beyond `limit` are released at once, for the next scan."""
    store, queue = outcomes.store, outcomes.queue
    # Held invisible while we work so a concurrent redrive does not take the same messages.
    letters, complete = _read(queue, priority, limit=PEEK_SCAN_LIMIT, visibility=60)
    _attach_jobs(store, letters)
    result = RedriveResult(dry_run=dry_run, complete=complete)
    chosen: list[DeadLetter] = []
    later: list[DeadLetter] = []
    passed: list[DeadLetter] = []
    for letter in letters:
        if not _wanted(letter, job_ids, job_type, exclude, failed_before):
            passed.append(letter)
        elif letter.problem in ("job_missing", "not_a_job_message"):
            result.orphans.append(letter.message_id)
            if purge_orphans and not dry_run:
                _delete(queue, priority, letter)
                result.purged.append(letter.message_id)
            else:
                passed.append(letter)
        elif len(chosen) < limit:
            chosen.append(letter)
        else:
            later.append(letter)
    if dry_run:
        result.redriven = [letter.job_id for letter in chosen if letter.job_id]
        later.extend(chosen)
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
                passed.append(letter)
        result.redriven = sorted(done, key=str)
        result.skipped = [c.message_id for c in chosen if c.job_id not in done]
    if pass_over_seconds is None:
        later.extend(passed)
    else:
        queue.hide_dead_letters(
            priority, [letter.receipt_handle for letter in passed], pass_over_seconds
        )
        result.passed_over = {letter.message_id: letter.receipt_handle for letter in passed}
    queue.hide_dead_letters(priority, [letter.receipt_handle for letter in later], 0)
    return result


def _delete(queue: JobQueue, priority: Priority, letter: DeadLetter) -> None:
    queue.delete_dead_letter(priority, letter.receipt_handle)


def describe(result: RedriveResult) -> dict[str, Any]:
    """The answer to a redrive request (the scan's internals left out)."""
    public = ("redriven", "orphans", "skipped", "purged", "dry_run")
    return json.loads(json.dumps({name: getattr(result, name) for name in public}, default=str))
