"""Finishing `container.run` jobs from ECS "Task State Change" events."""

from __future__ import annotations

import logging
from typing import Any

from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.retry import JobFailure, RetryPolicy, decide_retry
from taskmill.jobs.store import JobStore
from taskmill.jobs.submit import send_pending
from taskmill.jobtypes.container_run import CONTAINER_NAME
from taskmill.queue.sender import JobQueue


def _log_location(task_arn: str, detail: dict[str, Any]) -> str:
    task_id = task_arn.rsplit("/", 1)[-1]
    return f"taskmill/{CONTAINER_NAME}/{task_id}"


def complete_from_event(
    store: JobStore, queue: JobQueue, event: dict[str, Any], *, logger: logging.Logger | Any
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
        "log_stream": _log_location(task_arn, detail),
    }
    if exit_code == 0:
        finished = store.succeed(job.id, job.lease_token, result, actor="ecs")
    else:
        reason = (
            f"container exited with {exit_code}"
            if exit_code is not None
            else str(detail.get("stoppedReason") or "the task stopped without an exit code")
        )
        decision = decide_retry(
            JobFailure(reason),
            job.attempts,
            RetryPolicy(job.max_attempts, job.backoff_base_seconds, job.backoff_max_seconds),
        )
        finished = store.fail(job.id, job.lease_token, reason, decision, resend=True, actor="ecs")
        if finished is not None:
            if finished.status is JobStatus.FAILED:
                queue.dead_letter(finished, decision.reason, error=reason)
            else:
                send_pending(store, queue, [finished])
    send_pending(store, queue, store.take_followups())
    logger.info("container job finished", extra={"job_id": str(job.id), **result})
    return finished
