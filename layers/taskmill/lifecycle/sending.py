"""Sending job messages: the "to be sent" mark is cleared only for what SQS accepted."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from taskmill.jobs.model import Job
from taskmill.jobs.store import JobStore
from taskmill.queue.sqs import JobQueue


def send_pending(
    store: JobStore, queue: JobQueue, jobs: Sequence[Job], *, deadline: float | None = None
) -> list[UUID]:
    """Send the messages of jobs still marked "to be sent" and clear the mark of those SQS
    accepted; the rest stay marked for the recovery sweep. Returns the ids sent.
    `deadline`: see `JobQueue.send`."""
    to_send = [job for job in jobs if job.send_pending]
    if not to_send:
        return []
    result = queue.send(to_send, deadline=deadline)
    accepted = set(result.sent)
    store.mark_enqueued([job for job in to_send if job.id in accepted])
    return result.sent
