"""Firing schedules: the job of every due schedule, exactly once per fire time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from taskmill.errors import InvalidInput, TaskmillError
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.sending import send_pending
from taskmill.lifecycle.submit import JobRequest, create_jobs, resolve
from taskmill.queue.sqs import JobQueue
from taskmill.schedules.cron import CronExpression
from taskmill.schedules.store import Schedule, ScheduleStore


@dataclass(frozen=True)
class Fired:
    """What one `fire_due` run did: jobs created, and the schedules it disabled because
    their stored expression or time zone no longer parses."""

    created: int = 0
    disabled: list[UUID] = field(default_factory=list)


def _template_request(schedule: Schedule, key: str, registry: JobTypeRegistry) -> JobRequest:
    """The job a run of `schedule` creates. A stored template the API would not have written
    (changed behind its back: a hand edit, a restore), with a field no job has or a value of
    the wrong type, is `InvalidInput` like any template that no longer fits: raised as
    TypeError or pydantic's ValidationError it would stop the whole sweep at its first step,
    every run, recovering nothing else while the row stayed."""
    if not isinstance(schedule.job_template, dict):
        raise InvalidInput("its stored job template is not a JSON object")
    try:
        request = JobRequest(**schedule.job_template, idempotency_key=key)
        resolve(request, registry, owner_id=schedule.owner_id)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidInput(f"its stored job template is not valid: {exc}") from None
    return request


def fire_due(
    schedules: ScheduleStore,
    jobs: JobStore,
    queue: JobQueue,
    registry: JobTypeRegistry,
    *,
    limit: int,
    unfinished_limit: int | None = None,
    now: datetime | None = None,
    logger: logging.Logger | Any = None,
) -> Fired:
    """Create the job of every due schedule, once per fire time.

    The job's idempotency key is `schedule:<id>:<fire time>`, so two sweeps firing the same
    slot create one job. Catch-up: a schedule whose fire times were missed (the sweep was
    down) runs once, for the earliest missed time, and continues from the next time after now.
    Fire times are instants (UTC) computed in the schedule's zone, so a missed stretch that
    crosses a DST change catches up the same way. A run counts against its owner's
    `unfinished_limit` like a create: past it, the slot is skipped (logged).

    A schedule whose stored expression or zone no longer parses (validated at creation, so
    only a row changed behind the API's back or a zone missing from this host's tzdata) is
    disabled with its `error`, logged once with its id, and the others fire as usual.
    """
    log = logger or logging.getLogger("taskmill.schedules")
    created = 0
    disabled: list[UUID] = []
    moment = now or datetime.now(UTC)
    for schedule in schedules.due(limit=limit):
        try:
            cron = CronExpression.parse(schedule.cron, schedule.timezone)
            following = cron.next_after(max(moment, schedule.next_fire_at))
        except InvalidInput as exc:
            # Left enabled, it would be due again at every run (its next time cannot be
            # computed), so it is disabled; the owner sees why and recreates it.
            error = (
                f"disabled by the recovery sweep: cron {schedule.cron!r} in time zone "
                f"{schedule.timezone!r} no longer parses ({exc.message})"
            )
            if schedules.disable_broken(schedule.id, fire_at=schedule.next_fire_at, error=error):
                disabled.append(schedule.id)
                log.error(
                    "schedule disabled: its stored expression no longer parses",
                    extra={
                        "schedule_id": str(schedule.id),
                        "owner_id": str(schedule.owner_id),
                        "cron": schedule.cron,
                        "timezone": schedule.timezone,
                        "error": exc.message,
                    },
                )
            continue
        key = f"schedule:{schedule.id}:{schedule.next_fire_at.isoformat()}"
        new_job = None
        # The job and the move to the next fire time commit together, under the schedule's
        # row lock, and only if it is still enabled at this fire time: a pause or an edit
        # answered since `due` read it is not followed by the run it called off.
        with schedules.firing(schedule.id, fire_at=schedule.next_fire_at) as firing:
            if not firing.due:
                continue
            job_id = None
            try:
                with firing.savepoint():
                    request = _template_request(schedule, key, registry)
                    # A template stored before internal types were refused must not create one.
                    registry.submittable(str(request.type))
                    [result] = create_jobs(
                        jobs,
                        registry,
                        schedule.owner_id,
                        [request],
                        actor=f"schedule:{schedule.id}",
                        unfinished_limit=unfinished_limit,
                    )
                job_id = result.job.id
                created += int(result.created)
                new_job = result.job if result.created else None
            except TaskmillError as exc:
                # The template no longer fits (a type removed, a dependency deleted) or its
                # owner is at the quota: skip the slot rather than retrying it every minute.
                log.warning(
                    "schedule could not create its job",
                    extra={"schedule_id": str(schedule.id), "error": exc.message},
                )
            schedules.advance(
                schedule.id,
                fired_at=schedule.next_fire_at,
                next_fire_at=following,
                job_id=job_id,
            )
        # Sent once committed (a worker must find the row); one not sent stays marked for
        # the sweep's resend.
        if new_job is not None:
            send_pending(jobs, queue, [new_job])
    return Fired(created, disabled)
