"""Dead-letter queues: peek, reconcile with Postgres, redrive, purge orphans.

A scan (a peek's or a redrive's) hides each letter it receives, so the next receive returns
others: SQS answers a receive with a sample of its servers, and a letter left visible can
come back again and again while others never do. It calls itself complete only when a
long-polling receive, which asks every server, finds nothing visible. A peek shows what it
read again as soon as it is done; it reconciles only when it has seen the whole queue.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from taskmill.errors import DependencyUnavailable
from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.store import JobStore
from taskmill.lifecycle.outcomes import Outcomes
from taskmill.queue.messages import MalformedMessage, parse_message
from taskmill.queue.sqs import SQS_BATCH_LIMIT, JobQueue, ReceivedMessage
from taskmill.topology import Priority

PEEK_SCAN_LIMIT = 500
# A peek lists up to 500 letters in one Lambda response (6 MB at most, JSON escaped twice).
# Whole, each job's last error (up to 4,000 characters, 12 bytes each once escaped for an
# emoji) could make that ~24 MB, and API Gateway would answer 5xx to every peek of such a
# DLQ; an excerpt keeps 500 letters under 4 MB. The job holds the whole text.
PEEK_ERROR_CHARS = 500
# How long a peek hides the letters it reads. It shows them again when it is done (a few
# seconds for 500); this is only how long they stay hidden if its function dies first. It
# outlasts API Gateway's 29 s, so a peek does not meet its own letters again however slow.
PEEK_HIDE_SECONDS = 30
# How long a redrive in progress holds the letters it read (it deletes or shows them again
# when done), so that a concurrent one does not take the same letters.
REDRIVE_HOLD_SECONDS = 60


def _receive_budget(limit: int) -> int:
    """The most receives one scan makes: twice what `limit` letters need at ten per answer
    (a long poll can answer with fewer), plus the one that finds the queue empty. A scan that
    spends it stops short, not complete; SQS calls per request stay bounded."""
    return 2 * math.ceil(limit / SQS_BATCH_LIMIT) + 2


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
        error = job.last_error if job else None
        return {
            "message_id": self.message_id,
            "job_id": self.job_id,
            "type": job.type if job else None,
            "owner_id": job.owner_id if job else None,
            "status": job.status.value if job else None,
            "attempts": job.attempts if job else None,
            "redrive_count": job.redrive_count if job else None,
            "last_error": error[:PEEK_ERROR_CHARS] if error else error,
            "last_error_truncated": error is not None and len(error) > PEEK_ERROR_CHARS,
            "failure_reason": self.failure_reason,
            # When the job failed: its letter's own send time is later for a letter sent
            # again (the local stack re-sends every failed job's letter when it starts) and
            # earlier for one SQS moved itself (it keeps the first send's time).
            "dead_lettered_at": job.finished_at
            if job and job.status is JobStatus.FAILED and job.finished_at
            else self.dead_lettered_at,
            "problem": self.problem,
        }


@dataclass
class Peek:
    messages: list[DeadLetter]
    complete: bool
    missing_messages: list[UUID] = field(default_factory=list)


def _letter(message: ReceivedMessage) -> DeadLetter:
    try:
        job_id: UUID | None = parse_message(message.body).job_id
    except MalformedMessage:
        job_id = None
    return DeadLetter(
        message_id=message.message_id,
        receipt_handle=message.receipt_handle,
        job_id=job_id,
        dead_lettered_at=message.sent_at,
        failure_reason=message.attributes.get("failure_reason"),
    )


def _show(queue: JobQueue, priority: Priority, letters: list[DeadLetter]) -> None:
    queue.hide_dead_letters(priority, [letter.receipt_handle for letter in letters], 0)


@contextmanager
def _shown_again_on_error(
    queue: JobQueue, priority: Priority, letters: Callable[[], list[DeadLetter]]
) -> Iterator[None]:
    """If the block raises, show `letters()` (read and not yet dealt with) again, then let
    the error through. That error is what the caller must see: if SQS refuses this too, the
    letters show again on their own when their hold lapses."""
    try:
        yield
    except BaseException:
        with suppress(DependencyUnavailable):
            _show(queue, priority, letters())
        raise


def _read(
    queue: JobQueue, priority: Priority, *, limit: int, visibility: int
) -> tuple[list[DeadLetter], bool]:
    """Up to `limit` letters, each hidden for `visibility` seconds, and whether they are all
    the DLQ showed (a long poll found nothing more)."""
    seen: dict[str, DeadLetter] = {}
    with _shown_again_on_error(queue, priority, lambda: list(seen.values())):
        for _ in range(_receive_budget(limit)):
            wanted = limit - len(seen)
            # With `limit` read, one more receive tells a DLQ of exactly `limit` letters
            # (empty: all read) from a larger one (a letter past the limit, shown again).
            messages = queue.receive_dead_letters(
                priority,
                visibility_seconds=visibility,
                max_messages=max(wanted, 1),
            )
            if not messages:
                return list(seen.values()), True
            past_limit = []
            for message in messages:
                # A letter met again (its hold lapsed, or someone showed it) has a new
                # receipt handle; only the newest one can show or delete it.
                if wanted > 0 or message.message_id in seen:
                    seen[message.message_id] = _letter(message)
                else:
                    past_limit.append(_letter(message))
            if wanted <= 0:
                _show(queue, priority, past_limit)
                break
    return list(seen.values()), False


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
    """Up to `limit` letters (`PEEK_SCAN_LIMIT` at most). They are hidden while the peek
    reads (for `PEEK_HIDE_SECONDS` at most) and shown again when it is done.

    `complete` only when the peek saw the whole DLQ: a long poll found nothing more, and the
    DLQ's count (approximate, as SQS keeps it) is no more than what it read. A larger count
    means letters it could not see: held by a concurrent peek or redrive, or arriving as it
    ended (or, for up to a minute after letters were deleted, a count that has not caught
    up): better not complete than jobs listed as without a letter that have one.
    `hidden_by_task`: a background redrive is running and keeps the letters it passed over
    hidden, so the peek is not complete either.

    When complete, `missing_messages` reconciles: failed jobs with no letter. They are read
    before the scan and again after it, so a job that failed while the peek read (its letter
    on the way) or was redriven meanwhile is not listed."""
    failed = store.failed_jobs(priority=priority.value, limit=PEEK_SCAN_LIMIT)
    letters, read_all = _read(
        queue, priority, limit=min(limit, PEEK_SCAN_LIMIT), visibility=PEEK_HIDE_SECONDS
    )
    with _shown_again_on_error(queue, priority, lambda: letters):
        # Read while the letters are still hidden: SQS counts them as not visible.
        complete = (
            read_all and not hidden_by_task and queue.dead_letter_count(priority) <= len(letters)
        )
    _show(queue, priority, letters)
    _attach_jobs(store, letters)
    result = Peek(letters, complete)
    if complete:
        result.missing_messages = _without_letter(store, failed, letters)
    return result


def _without_letter(store: JobStore, failed: list[Job], letters: list[DeadLetter]) -> list[UUID]:
    """The jobs of `failed` that have no letter among `letters` and have not changed since
    (still failed, by the same failure)."""
    present = {letter.job_id for letter in letters}
    candidates = [job for job in failed if job.id not in present]
    if not candidates:
        return []
    now = {job.id: job for job in store.get_many([job.id for job in candidates])}
    return [
        job.id
        for job in candidates
        if job.id in now
        and now[job.id].status is JobStatus.FAILED
        and now[job.id].finished_at == job.finished_at
    ]


@dataclass
class RedriveResult:
    redriven: list[UUID] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    dry_run: bool = False
    # The scan read every message the DLQ showed (at most PEEK_SCAN_LIMIT).
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
    letters, complete = _read(
        queue, priority, limit=PEEK_SCAN_LIMIT, visibility=REDRIVE_HOLD_SECONDS
    )
    deleted: set[str] = set()
    # If the redrive fails half-way, what it had not dealt with shows again at once.
    with _shown_again_on_error(
        queue, priority, lambda: [m for m in letters if m.message_id not in deleted]
    ):
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
                    _delete(queue, priority, letter, deleted)
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
                [letter.job for letter in chosen if letter.job is not None],
                actor=actor,
                resend=True,
            )
            done = {job.id for job in redriven}
            for letter in chosen:
                if letter.job_id in done or (
                    letter.job and letter.job.status is not JobStatus.FAILED
                ):
                    # Redriven now, or its job already runs again: the message is spent.
                    _delete(queue, priority, letter, deleted)
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


def _delete(queue: JobQueue, priority: Priority, letter: DeadLetter, deleted: set[str]) -> None:
    queue.delete_dead_letter(priority, letter.receipt_handle)
    deleted.add(letter.message_id)


def describe(result: RedriveResult) -> dict[str, Any]:
    """The answer to a redrive request (the scan's internals left out)."""
    public = ("redriven", "orphans", "skipped", "purged", "dry_run")
    return json.loads(json.dumps({name: getattr(result, name) for name in public}, default=str))
