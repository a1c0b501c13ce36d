"""/v1/dlq/{priority} (peek, redrive) and /v1/admin/requeue: operators' recovery tools."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from taskmill.api.caller import Caller, request_id
from taskmill.api.models import Strict
from taskmill.api.openapi import operation
from taskmill.api.services import ApiServices
from taskmill.errors import DependencyUnavailable
from taskmill.jobs.model import JobStatus
from taskmill.jobs.options import JsonUuid
from taskmill.lifecycle.sending import send_pending
from taskmill.recovery import dlq
from taskmill.recovery.redrive_tasks import RedriveTask, RedriveTaskStore
from taskmill.topology import Priority

SYNC_REDRIVE_LIMIT = 100


class RedriveRequest(Strict):
    job_ids: list[JsonUuid] | None = Field(default=None, max_length=1000)
    type: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=SYNC_REDRIVE_LIMIT, ge=1, le=100_000)
    dry_run: bool = False
    purge_orphans: bool = False
    # Larger redrives (or any, when asked) run in the retry function; poll their progress.
    background: bool = False


class RequeueRequest(Strict):
    status: Literal["queued", "failed"]
    older_than_seconds: int = Field(ge=0, le=30 * 86400)
    limit: int = Field(default=100, ge=1, le=1000)
    dry_run: bool = False


def router(services: ApiServices) -> Router:
    r = Router()

    def admin() -> Caller:
        return services.caller(r.current_event.raw_event, "admin")

    def audit(who: Caller, action: str, detail: dict[str, Any]) -> None:
        services.audit.record(
            action,
            actor_id=who.id,
            target_type="dlq",
            detail=detail,
            correlation_id=request_id(r.current_event.raw_event),
        )

    @r.get(
        "/v1/dlq/<priority>",
        **operation(
            "peekDeadLetters",
            "Peek at a priority's dead-lettered jobs (admin)",
            tag="operations",
            description=(
                "Each letter's `last_error` is the first 500 characters of its job's last "
                "error (`last_error_truncated` says whether there was more; the job has the "
                "whole text), so a peek of 500 letters fits in one answer. The peek hides "
                "each letter it reads (30 s at most) so that SQS hands out the others, and "
                "shows them all again before it answers; a redrive running at that moment "
                "may skip them for this round. `complete` is true only when the peek saw the "
                "whole DLQ: at most `limit` letters, a long poll found no more, and SQS's "
                "(approximate) count of the DLQ's messages is no more than it read; "
                "`failed_without_message` (failed jobs without a letter) is filled only then."
            ),
        ),
    )
    def peek(
        priority: Priority, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> dict[str, Any]:
        admin()
        task_id = RedriveTaskStore(services.db).live(priority)
        result = dlq.peek(
            services.jobs, services.queue, priority, limit=limit, hidden_by_task=task_id is not None
        )
        return {
            "priority": priority.value,
            "items": [letter.summary() for letter in result.messages],
            "complete": result.complete,
            # Reconciliation: failed jobs with no DLQ message (only when the whole DLQ was read).
            "failed_without_message": [str(job_id) for job_id in result.missing_messages],
            # A background redrive hides the messages it passed over until it ends.
            "redrive_task_id": str(task_id) if task_id else None,
        }

    @r.post(
        "/v1/dlq/<priority>/redrive",
        **operation(
            "redriveDeadLetters",
            "Redrive dead-lettered jobs: all, or those chosen (admin)",
            description=(
                "409 `conflict` while a background redrive of the same priority is still "
                "running (`details.task_id`; it hides the messages it passes over until it "
                "ends), for another background redrive or a redrive in the request; a dry "
                "run still answers."
            ),
            tag="operations",
            errors=[409],
            success={
                200: "Done (or, for a dry run, what would be done).",
                202: ("Started in the background; poll the task.", RedriveTask),
            },
        ),
    )
    def redrive(priority: Priority, body: RedriveRequest) -> Response[dict[str, Any]]:
        who = admin()
        tasks = RedriveTaskStore(services.db)
        if not body.dry_run and (body.background or body.limit > SYNC_REDRIVE_LIMIT):
            criteria = body.model_dump(mode="json", exclude={"background", "dry_run"})
            task = tasks.create(priority, criteria, who.id)
            try:
                services.redrive_launcher().launch(task.id)
            except DependencyUnavailable as exc:
                tasks.finish(task.id, error=exc.message)  # never left `pending` forever
                raise
            audit(
                who,
                "dlq.redrive_started",
                {"priority": priority.value, "task_id": str(task.id), **criteria},
            )
            return Response(202, "application/json", task.model_dump(mode="json"))
        if not body.dry_run:
            tasks.refuse_while_live(priority)
        live_task = tasks.live(priority) if body.dry_run else None
        result = dlq.redrive(
            services.outcomes,
            priority,
            actor=who.actor,
            job_ids=set(body.job_ids) if body.job_ids is not None else None,
            job_type=body.type,
            limit=body.limit,
            dry_run=body.dry_run,
            purge_orphans=body.purge_orphans,
        )
        answer = dlq.describe(result)
        if body.dry_run:
            # What a running background redrive hid is not in a dry run's answer either.
            answer["redrive_task_id"] = str(live_task) if live_task else None
        else:
            audit(who, "dlq.redrive", {"priority": priority.value, **answer})
        return Response(200, "application/json", answer)

    @r.get(
        "/v1/dlq/redrives/<task_id>",
        **operation(
            "getRedriveTask",
            "A background redrive's progress (admin)",
            tag="operations",
            errors=[404],
        ),
    )
    def redrive_progress(task_id: UUID) -> RedriveTask:
        admin()
        return RedriveTaskStore(services.db).get(task_id)

    @r.post(
        "/v1/admin/requeue",
        **operation(
            "requeueStaleJobs",
            "Re-send queued or failed jobs untouched for a while (admin)",
            tag="operations",
        ),
    )
    def requeue(body: RequeueRequest) -> dict[str, Any]:
        """Manual recovery: re-send jobs that look stuck, like a recovery worker run by hand."""
        who = admin()
        stale = services.jobs.stale(
            status=JobStatus(body.status),
            older_than_seconds=body.older_than_seconds,
            limit=body.limit,
        )
        chosen = [job for job in stale if not job.external]
        ids = [job.id for job in chosen]
        if not body.dry_run and ids:
            deadline = services.send_deadline(r.lambda_context)
            if body.status == "queued":
                jobs = services.jobs.mark_to_send(ids)
                send_pending(services.jobs, services.queue, jobs, deadline=deadline)
            else:
                jobs = services.outcomes.redrive(
                    chosen, actor=who.actor, resend=True, deadline=deadline
                )
            ids = [job.id for job in jobs]
            audit(who, "admin.requeue", {"status": body.status, "jobs": [str(i) for i in ids]})
        return {"requeued": [str(i) for i in ids], "dry_run": body.dry_run}

    return r
