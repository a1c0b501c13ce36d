"""EventBridge target for ECS "Task State Change" events of `container.run` jobs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.containers import complete_from_event
from taskmill.db.credentials import database_from_settings
from taskmill.jobs.store import JobStore
from taskmill.queue.sender import JobQueue
from taskmill.settings import WorkerSettings, load_settings

logger = Logger(service="taskmill-container-events")
_collaborators: tuple[JobStore, JobQueue] | None = None


def collaborators() -> tuple[JobStore, JobQueue]:
    global _collaborators
    if _collaborators is None:
        settings = load_settings(WorkerSettings)
        db = database_from_settings(settings, application_name="taskmill-container-events")
        _collaborators = (JobStore(db), JobQueue(settings))
    return _collaborators


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store, queue = collaborators()
    job = complete_from_event(store, queue, event, logger=logger)
    return {"job_id": str(job.id) if job else None, "status": job.status if job else None}
