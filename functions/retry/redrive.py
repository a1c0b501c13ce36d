"""Asynchronous DLQ redrive: invoked by the API with `{"task_id": ...}` for large redrives."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.db import Database
from taskmill.db.credentials import database_from_settings
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.queue.sqs import JobQueue
from taskmill.recovery.redrive_tasks import run_task
from taskmill.settings import RecoverySettings, load_settings

logger = Logger(service="taskmill-redrive")
_collaborators: tuple[Database, JobQueue, JobTypeRegistry] | None = None


def collaborators() -> tuple[Database, JobQueue, JobTypeRegistry]:
    global _collaborators
    if _collaborators is None:
        settings = load_settings(RecoverySettings)
        _collaborators = (
            database_from_settings(settings, application_name="taskmill-redrive"),
            JobQueue(settings),
            build_registry(settings),
        )
    return _collaborators


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    db, queue, registry = collaborators()
    task = run_task(db, queue, registry, UUID(str(event["task_id"])), logger=logger)
    return task.model_dump(mode="json", include={"id", "status", "redriven", "orphans", "purged"})
