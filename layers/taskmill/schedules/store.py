"""Schedules in Postgres, and firing the due ones exactly once per fire time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from taskmill.db import Database
from taskmill.errors import NotFound, TaskmillError
from taskmill.jobs.store import JobStore
from taskmill.jobs.submit import JobRequest, submit
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.queue.sender import JobQueue
from taskmill.schedules.cron import CronExpression


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    owner_id: UUID
    name: str
    cron: str
    job_template: dict[str, Any]
    enabled: bool
    next_fire_at: datetime
    last_fire_at: datetime | None
    last_job_id: UUID | None
    created_at: datetime
    updated_at: datetime


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        owner_id: UUID,
        name: str,
        cron: CronExpression,
        template: dict[str, Any],
        *,
        enabled: bool = True,
        now: datetime | None = None,
    ) -> Schedule:
        rows = self._db.execute(
            "INSERT INTO schedules (id, owner_id, name, cron, job_template, enabled, next_fire_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (
                uuid4(),
                owner_id,
                name,
                cron.text,
                Jsonb(template),
                enabled,
                cron.next_after(now or datetime.now(UTC)),
            ),
        )
        return Schedule.model_validate(rows[0])

    def get(self, schedule_id: UUID) -> Schedule:
        rows = self._db.execute("SELECT * FROM schedules WHERE id = %s", (schedule_id,))
        if not rows:
            raise NotFound("schedule not found")
        return Schedule.model_validate(rows[0])

    def list_for(self, owner_id: UUID | None, *, limit: int = 200) -> list[Schedule]:
        rows = self._db.execute(
            "SELECT * FROM schedules WHERE (%(owner)s::uuid IS NULL OR owner_id = %(owner)s::uuid) "
            "ORDER BY created_at DESC LIMIT %(limit)s",
            {"owner": owner_id, "limit": limit},
        )
        return [Schedule.model_validate(row) for row in rows]

    def delete(self, schedule_id: UUID) -> None:
        if not self._db.execute("DELETE FROM schedules WHERE id = %s RETURNING id", (schedule_id,)):
            raise NotFound("schedule not found")

    def due(self, *, limit: int) -> list[Schedule]:
        rows = self._db.execute(
            "SELECT * FROM schedules WHERE enabled AND next_fire_at <= now() "
            "ORDER BY next_fire_at LIMIT %s",
            (limit,),
        )
        return [Schedule.model_validate(row) for row in rows]

    def advance(
        self, schedule_id: UUID, *, fired_at: datetime, next_fire_at: datetime, job_id: UUID | None
    ) -> bool:
        """Move to the next fire time, only if no one else did (the same fire time)."""
        rows = self._db.execute(
            "UPDATE schedules SET next_fire_at = %s, last_fire_at = %s, "
            "last_job_id = coalesce(%s, last_job_id), updated_at = now() "
            "WHERE id = %s AND next_fire_at = %s RETURNING id",
            (next_fire_at, fired_at, job_id, schedule_id, fired_at),
        )
        return bool(rows)


def fire_due(
    schedules: ScheduleStore,
    jobs: JobStore,
    queue: JobQueue,
    registry: JobTypeRegistry,
    *,
    limit: int,
    now: datetime | None = None,
    logger: logging.Logger | Any = None,
) -> int:
    """Create the job of every due schedule, once per fire time.

    The job's idempotency key is `schedule:<id>:<fire time>`, so two sweeps firing the same
    slot create one job. Catch-up: a schedule whose fire times were missed (the sweep was
    down) runs once, for the earliest missed time, and continues from the next time after now.
    """
    created = 0
    moment = now or datetime.now(UTC)
    for schedule in schedules.due(limit=limit):
        cron = CronExpression.parse(schedule.cron)
        key = f"schedule:{schedule.id}:{schedule.next_fire_at.isoformat()}"
        job_id = None
        try:
            [result] = submit(
                jobs,
                queue,
                registry,
                schedule.owner_id,
                [JobRequest(**schedule.job_template, idempotency_key=key)],
                actor=f"schedule:{schedule.id}",
            )
            job_id = result.job.id
            created += int(result.created)
        except TaskmillError as exc:
            # The template no longer fits (a type removed, a dependency deleted): skip the
            # slot rather than retrying it every minute.
            (logger or logging.getLogger("taskmill.schedules")).warning(
                "schedule could not create its job",
                extra={"schedule_id": str(schedule.id), "error": exc.message},
            )
        schedules.advance(
            schedule.id,
            fired_at=schedule.next_fire_at,
            next_fire_at=cron.next_after(max(moment, schedule.next_fire_at)),
            job_id=job_id,
        )
    return created
