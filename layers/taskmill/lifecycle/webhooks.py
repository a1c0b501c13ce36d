"""Completion webhooks: a `webhook.deliver` job for each finished job that asked for one.

The final statement of a job sets its `webhook_pending` mark; the webhook job is submitted
like any job (the type's defaults, its one event builder, an idempotency key per finish) and
the mark cleared. A crash in between leaves the mark for the recovery sweep, and the key
makes a second creation return the first.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from taskmill.errors import InvalidInput
from taskmill.jobs.model import Job
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.jobtypes.webhook_deliver import WEBHOOK_TYPE, completion_event
from taskmill.lifecycle.submit import JobRequest, resolve, submit
from taskmill.queue.sqs import JobQueue

WEBHOOK_ACTOR = "platform"


def webhook_request(job: Job) -> JobRequest:
    finished = job.finished_at.isoformat() if job.finished_at else job.updated_at.isoformat()
    return JobRequest(
        type=WEBHOOK_TYPE,
        payload={"url": job.webhook_url, "event": completion_event(job)},
        idempotency_key=f"webhook:{job.id}:{finished}",
        correlation_id=job.correlation_id,
        name=f"webhook for {job.id}",
    )


def create_completion_webhooks(
    store: JobStore,
    queue: JobQueue,
    registry: JobTypeRegistry,
    finished: Sequence[Job],
    *,
    logger: logging.Logger | Any,
    deadline: float | None = None,
) -> list[Job]:
    """Create (and send) the webhook jobs of the finished jobs marked for one.
    `deadline`: see `JobQueue.send` (what misses it is sent by the sweep)."""
    due = [job for job in finished if job.webhook_pending and job.webhook_url]
    by_owner: dict[UUID, list[JobRequest]] = defaultdict(list)
    for job in due:
        request = webhook_request(job)
        try:
            resolve(request, registry)
        except InvalidInput as exc:
            # The stored URL no longer passes the type's validation: it never will, so its
            # mark is cleared rather than retried by every sweep; the others go ahead.
            logger.error(
                "completion webhook could not be created",
                extra={"job_id": str(job.id), "error": exc.message},
            )
            continue
        by_owner[job.owner_id].append(request)
    created: list[Job] = []
    for owner_id, requests in by_owner.items():
        results = submit(
            store, queue, registry, owner_id, requests, actor=WEBHOOK_ACTOR, deadline=deadline
        )
        created.extend(result.job for result in results)
    store.clear_webhook_pending([job.id for job in due])
    return created
