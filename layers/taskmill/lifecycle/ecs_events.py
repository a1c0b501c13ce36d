"""Finishing `container.run` jobs from ECS "Task State Change" events: the task's stop is
the job's outcome, recorded like any other."""

from __future__ import annotations

import logging
from typing import Any

from taskmill.jobs.model import Job
from taskmill.jobs.retry import JobFailure
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.container_run import CONTAINER_NAME
from taskmill.lifecycle.outcomes import Outcomes, Success

ACTOR = "ecs"


def _log_location(task_arn: str) -> str:
    task_id = task_arn.rsplit("/", 1)[-1]
    return f"taskmill/{CONTAINER_NAME}/{task_id}"


def finish_from_event(
    store: JobStore, outcomes: Outcomes, event: dict[str, Any], *, logger: logging.Logger | Any
) -> Job | None:
    """Record the end of a job's ECS task. Events for other tasks, or for tasks not yet
    stopped, change nothing."""
    detail = event.get("detail") or {}
    if detail.get("lastStatus") != "STOPPED":
        return None
    task_arn = str(detail.get("taskArn", ""))
    job = store.running_by_external_ref(task_arn)
    if job is None or job.lease_token is None:
        return None
    container: dict[str, Any] = next(
        (c for c in detail.get("containers", []) if c.get("name") == CONTAINER_NAME), {}
    )
    exit_code = container.get("exitCode")
    result = {
        "task_arn": task_arn,
        "exit_code": exit_code,
        "stopped_reason": detail.get("stoppedReason"),
        "log_stream": _log_location(task_arn),
    }
    finished: Job | None
    if exit_code == 0:
        done = outcomes.succeeded([Success(job.id, job.lease_token, result)], actor=ACTOR)
        finished = done[0] if done else None
    elif job.cancel_requested:
        # Stopped because it was asked to (the sweep stops a cancelled job's task), or it
        # failed meanwhile: either way the job was to end, and not to be retried.
        finished = outcomes.cancelled(job, actor=ACTOR)
    else:
        reason = (
            f"container exited with {exit_code}"
            if exit_code is not None
            else str(detail.get("stoppedReason") or "the task stopped without an exit code")
        )
        finished = outcomes.failed(job, JobFailure(reason), actor=ACTOR).job
    logger.info("container job finished", extra={"job_id": str(job.id), **result})
    return finished
