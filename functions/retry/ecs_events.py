"""EventBridge target for ECS "Task State Change" events: a stopped task finishes its
`container.run` job (see `taskmill.lifecycle.ecs_events`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.db.credentials import database_from_settings
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.lifecycle.ecs_events import finish_from_event
from taskmill.lifecycle.outcomes import Outcomes
from taskmill.queue.sqs import JobQueue
from taskmill.settings import WorkerSettings, load_settings

logger = Logger(service="taskmill-container-events")
_outcomes: Outcomes | None = None


def container_outcomes() -> Outcomes:
    global _outcomes
    if _outcomes is None:
        settings = load_settings(WorkerSettings)
        db = database_from_settings(settings, application_name="taskmill-container-events")
        _outcomes = Outcomes(
            JobStore(db), JobQueue(settings), build_registry(settings), logger=logger
        )
    return _outcomes


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = container_outcomes()
    job = finish_from_event(outcomes.store, outcomes, event, logger=logger)
    return {"job_id": str(job.id) if job else None, "status": job.status if job else None}
