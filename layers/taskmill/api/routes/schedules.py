"""/v1/schedules: recurring jobs from a cron expression in a time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from taskmill.api.caller import Caller
from taskmill.api.models import JobCreate, Strict
from taskmill.api.openapi import operation
from taskmill.api.pages import fitting
from taskmill.api.services import ApiServices
from taskmill.errors import NotFound
from taskmill.lifecycle.submit import JobRequest, resolve
from taskmill.paging import decode_cursor, encode_cursor
from taskmill.schedules.cron import DEFAULT_TIMEZONE, CronExpression
from taskmill.schedules.edits import edit_schedule
from taskmill.schedules.store import Schedule, ScheduleStore


class ScheduleJob(JobCreate):
    """The job every run creates. Fields that name one moment or one job cannot recur: a
    fixed `run_at` would give every run the same (soon past) instant, and `depends_on` would
    make every run wait on the same job, then be skipped at every run once that job is
    deleted (retention). Both are refused rather than stored to fail later."""

    @field_validator("run_at")
    @classmethod
    def _no_fixed_instant(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            raise ValueError(
                "a schedule's runs cannot share one instant; use delay_seconds to start "
                "each run a while after its fire time"
            )
        return value

    @field_validator("depends_on")
    @classmethod
    def _no_fixed_dependencies(cls, value: list[UUID]) -> list[UUID]:
        if value:
            raise ValueError(
                "a schedule's runs cannot wait on fixed jobs; depends_on is not allowed in "
                "a schedule's job"
            )
        return value


class ScheduleCreate(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "weekday mornings",
                    "cron": "0 9 * * MON-FRI",
                    "timezone": "Asia/Tokyo",
                    "job": {"type": "noop"},
                },
                {"name": "nightly", "cron": "@daily", "job": {"type": "noop"}},
            ]
        },
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    cron: Annotated[
        str,
        StringConstraints(min_length=6, max_length=200),
        Field(
            description="Five fields (minute hour day-of-month month day-of-week; day and "
            "month names allowed, e.g. `0 9 * * MON-FRI`) or a macro: `@yearly`, "
            "`@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.",
        ),
    ]
    timezone: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64),
        Field(
            description="IANA time zone the expression is read in (e.g. `Europe/Berlin`). "
            "An unknown name is refused with 400.",
        ),
    ] = DEFAULT_TIMEZONE
    job: Annotated[
        ScheduleJob,
        Field(
            description="The job each run creates, as for `POST /v1/jobs` except `run_at` and "
            "`depends_on` (400: every run would share them); `delay_seconds` starts each run "
            "a while after its fire time.",
        ),
    ]
    enabled: bool = True


class SchedulePatch(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"enabled": False},
                {"cron": "30 8 * * MON-FRI", "timezone": "Europe/Berlin"},
            ]
        },
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    cron: Annotated[str, StringConstraints(min_length=6, max_length=200)] | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    job: ScheduleJob | None = None
    enabled: bool | None = None


class ScheduleOut(BaseModel):
    id: UUID
    owner_id: UUID
    name: str
    cron: str
    timezone: str
    job: dict[str, Any]
    enabled: bool
    next_fire_at: Annotated[
        datetime, Field(description="The next run, an instant in UTC computed in `timezone`.")
    ]
    last_fire_at: datetime | None
    last_job_id: UUID | None
    created_at: datetime
    error: Annotated[
        str | None,
        Field(
            description="Why the schedule no longer fires, when the recovery sweep could not "
            "evaluate its stored expression or time zone any more: it is then disabled "
            "(`enabled` false) and creates no jobs. Give it a `cron`/`timezone` that parses, "
            "or turn it on again (`PATCH` with `enabled: true`), to clear it. Null for a "
            "healthy schedule."
        ),
    ] = None
    error_at: Annotated[
        datetime | None, Field(description="When the sweep disabled it (with `error`).")
    ] = None

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleOut:
        return cls(
            **schedule.model_dump(exclude={"job_template", "updated_at"}), job=schedule.job_template
        )


def router(services: ApiServices) -> Router:
    r = Router()

    def caller() -> Caller:
        return services.caller(r.current_event.raw_event, "user", "admin")

    def owned(schedule_id: UUID, who: Caller) -> Schedule:
        schedule = ScheduleStore(services.db).get(schedule_id)
        if not who.is_admin and schedule.owner_id != who.id:
            raise NotFound("schedule not found")
        return schedule

    def checked_template(job: ScheduleJob) -> dict[str, Any]:
        """The template as stored, refused (400, 413) where a create would refuse its job."""
        services.registry.submittable(job.type)
        services.check_webhook_url(job.webhook_url)
        services.check_payload_size(job.payload)
        template = job.model_dump(mode="json", exclude_none=True)
        resolve(JobRequest(**template), services.registry)  # refuse a template that cannot run
        return template

    @r.post(
        "/v1/schedules",
        **operation(
            "createSchedule",
            "Create a recurring job from a cron expression in a time zone",
            tag="schedules",
            success={201: "The schedule."},
            description="429 `quota_exceeded` when the caller already has "
            "`TASKMILL_MAX_SCHEDULES_PER_USER` schedules (100 by default; disabled ones "
            "count).",
        ),
    )
    def create(body: ScheduleCreate) -> Response[ScheduleOut]:
        who = caller()
        cron = CronExpression.parse(body.cron, body.timezone)
        template = checked_template(body.job)
        schedule = ScheduleStore(services.db).create(
            who.id,
            body.name,
            cron,
            template,
            enabled=body.enabled,
            limit=services.settings.max_schedules_per_user,
        )
        return Response(201, "application/json", ScheduleOut.of(schedule))

    @r.get(
        "/v1/schedules",
        **operation(
            "listSchedules", "List schedules (a user's own; all for an admin)", tag="schedules"
        ),
    )
    def list_schedules(
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        who = caller()
        rows = ScheduleStore(services.db).list_for(
            None if who.is_admin else who.id,
            limit=limit + 1,
            after=decode_cursor(cursor) if cursor else None,
        )
        page = fitting([ScheduleOut.of(s) for s in rows[:limit]])
        return {
            "items": [s.model_dump(mode="json") for s in page],
            "next_cursor": (
                encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > len(page) else None
            ),
        }

    @r.get(
        "/v1/schedules/<schedule_id>",
        **operation("getSchedule", "Read a schedule", tag="schedules", errors=[404]),
    )
    def get(schedule_id: UUID) -> ScheduleOut:
        return ScheduleOut.of(owned(schedule_id, caller()))

    @r.patch(
        "/v1/schedules/<schedule_id>",
        **operation(
            "updateSchedule",
            "Edit a schedule: rename it, change its expression, zone or job, turn it off or on",
            tag="schedules",
            errors=[404, 409],
            description="Fields left out (or null) stay as they are; `job` replaces the "
            "whole template and is checked as at creation. A new `cron` or `timezone`, or "
            "`enabled: true` on a disabled schedule, counts from now: `next_fire_at` becomes "
            "the first fire time after the edit, and runs missed while it was off are not "
            "made up. It also clears the `error` the recovery sweep disabled it with. 409 "
            "`conflict` if the schedule kept changing while this edit was applied.",
        ),
    )
    def edit(schedule_id: UUID, body: SchedulePatch) -> ScheduleOut:
        who = caller()
        return ScheduleOut.of(
            edit_schedule(
                ScheduleStore(services.db),
                schedule_id,
                owner_id=None if who.is_admin else who.id,
                name=body.name,
                cron=body.cron,
                timezone=body.timezone,
                template=checked_template(body.job) if body.job is not None else None,
                enabled=body.enabled,
            )
        )

    @r.delete(
        "/v1/schedules/<schedule_id>",
        **operation(
            "deleteSchedule",
            "Delete a schedule",
            tag="schedules",
            errors=[404],
            success={204: "Deleted."},
        ),
    )
    def delete(schedule_id: UUID) -> Response[None]:
        owned(schedule_id, caller())
        ScheduleStore(services.db).delete(schedule_id)
        return Response(204)

    return r
