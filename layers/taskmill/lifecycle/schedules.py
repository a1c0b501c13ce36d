"""Firing schedules: the job of every due schedule, exactly once per fire time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from taskmill.errors import TaskmillError
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.submit import JobRequest, submit
from taskmill.queue.sqs import JobQueue
from taskmill.schedules.cron import CronExpression
from taskmill.schedules.store import ScheduleStore


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
    Fire times are instants (UTC) computed in the schedule's zone, so a missed stretch that
    crosses a DST change catches up the same way.
    """
    created = 0
    moment = now or datetime.now(UTC)
    for schedule in schedules.due(limit=limit):
        cron = CronExpression.parse(schedule.cron, schedule.timezone)
        key = f"schedule:{schedule.id}:{schedule.next_fire_at.isoformat()}"
        job_id = None
        try:
            # A template stored before internal types were refused must not create one.
            registry.submittable(str(schedule.job_template.get("type")))
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
