"""Operators: queues, stats, audit; and the public health check."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from taskmill.api.models import AuditEntry, AuditList, Health, QueueList, QueueOut
from taskmill.api.openapi import operation
from taskmill.api.pages import fitting
from taskmill.api.services import ApiServices
from taskmill.errors import DependencyUnavailable, InvalidInput
from taskmill.flow.pauses import PauseKind
from taskmill.jobs.stats import job_stats, oldest_queued_age

MAX_AUDIT_ID = 2**63 - 1  # audit ids are bigints: a cursor past it names no entry


def router(services: ApiServices) -> Router:
    r = Router()

    def admin() -> None:
        services.caller(r.current_event.raw_event, "admin")

    @r.get(
        "/v1/queues",
        **operation("listQueues", "Queue depths per priority (admin)", tag="operations"),
    )
    def queues() -> QueueList:
        admin()
        depths = services.queue.depths()
        ages = oldest_queued_age(services.db)
        paused = services.pauses.names(PauseKind.QUEUE)
        return QueueList(
            items=[
                QueueOut(
                    priority=priority,
                    oldest_age_seconds=ages.get(priority),
                    paused=priority.value in paused,
                    **figures,
                )
                for priority, figures in depths.items()
            ]
        )

    @r.get(
        "/v1/stats",
        **operation(
            "getStats",
            "Job counts, throughput and durations (admin)",
            tag="operations",
            description=(
                "Computed now, unless `max_age_seconds` accepts figures computed that long "
                "ago or less: then the last figures are answered if fresh enough, and while "
                "one caller computes new ones every other gets the last ones at once, "
                "however old (`computed_at` says when they were computed). A dashboard that "
                "polls should pass its interval: its viewers share one computation, a few "
                "scans of the jobs table, at a time."
            ),
        ),
    )
    def stats(
        window_hours: Annotated[int, Query(ge=1, le=24 * 30)] = 24,
        max_age_seconds: Annotated[int, Query(ge=0, le=3600)] = 0,
    ) -> dict[str, Any]:
        admin()
        return job_stats(services.db, window_hours=window_hours, max_age_seconds=max_age_seconds)

    @r.get(
        "/v1/audit",
        **operation(
            "listAuditEvents", "Audit log of admin and security events (admin)", tag="operations"
        ),
    )
    def audit(
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=20)] = None,
        action: Annotated[str | None, Query(max_length=100)] = None,
    ) -> AuditList:
        admin()
        # ASCII digits only: `isdigit` also accepts "²" (which int() refuses) and "٣".
        # Empty: the first page, as on every list.
        if cursor and not (cursor.isascii() and cursor.isdigit() and int(cursor) <= MAX_AUDIT_ID):
            raise InvalidInput("cursor is not valid")
        rows = services.audit.list(
            limit=limit + 1, before_id=int(cursor) if cursor else None, action=action
        )
        # An entry's detail can hold a thousand job ids (a requeue, a redrive's criteria):
        # a page stays within one Lambda response like a page of jobs (`fitting`).
        page = fitting([AuditEntry.model_validate(row) for row in rows[:limit]])
        return AuditList(
            items=page,
            next_cursor=str(page[-1].id) if len(rows) > len(page) else None,
        )

    @r.get(
        "/v1/health",
        **operation(
            "getHealth",
            "Whether the database and the queues answer",
            tag="operations",
            success={200: "Both answer.", 503: ("One of them does not.", Health)},
        ),
    )
    def health() -> Response[Health]:
        database = queues_ok = True
        try:
            services.db.execute("SELECT 1")
        except DependencyUnavailable:
            database = False
        try:
            services.queue.ping()
        except DependencyUnavailable:
            queues_ok = False
        ok = database and queues_ok
        body = Health(status="ok" if ok else "degraded", database=database, queues=queues_ok)
        return Response(200 if ok else 503, "application/json", body)

    return r
