"""Schedules in Postgres: all their SQL in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from taskmill.db import Database
from taskmill.errors import NotFound, QuotaExceeded
from taskmill.schedules.cron import CronExpression


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    owner_id: UUID
    name: str
    cron: str
    timezone: str
    # A JSON object as the API stores it; typed loosely so that a row changed behind the
    # API's back into another JSON value still loads, and the sweep skips its slot (see
    # `taskmill.lifecycle.schedules`) instead of failing on every due schedule.
    job_template: Any
    enabled: bool
    next_fire_at: datetime
    last_fire_at: datetime | None
    last_job_id: UUID | None
    created_at: datetime
    updated_at: datetime
    # Why the sweep disabled it (its stored expression or zone no longer parses), and when.
    error: str | None = None
    error_at: datetime | None = None


@dataclass(frozen=True)
class Firing:
    """A schedule's fire time being fired (`ScheduleStore.firing`): `due` is False when it
    no longer is (paused, edited or fired by another sweep since it was read)."""

    due: bool
    _db: Database

    def savepoint(self) -> AbstractContextManager[Any]:
        """A part of the firing that may fail on its own (creating the job) without
        undoing the rest (moving the schedule on)."""
        return self._db.transaction()


# An owner `u` who may create jobs now: jobs are created by users and admins, so a disabled
# account, or one made a `worker`, fires nothing (its schedules wait, then catch up once).
_OWNER_MAY_CREATE = "NOT u.disabled AND u.role IN ('user', 'admin')"


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
        limit: int | None = None,
        now: datetime | None = None,
    ) -> Schedule:
        """Store a schedule; past `limit` schedules of its owner (None: no limit), 429
        `quota_exceeded`. The owner's row is locked first, so two creates at once cannot
        both take the last place: each counts after the other committed."""
        with self._db.transaction() as tx:
            if limit is not None:
                # Two statements: one that waited for the lock still counts with the
                # snapshot it began with, which misses the other create's row.
                tx.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (owner_id,))
                [counted] = tx.execute(
                    "SELECT count(*) AS schedules FROM schedules WHERE owner_id = %s",
                    (owner_id,),
                )
                if counted["schedules"] >= limit:
                    raise QuotaExceeded(
                        f"at most {limit} schedules are allowed per user; delete one first",
                        details={"schedules": counted["schedules"], "limit": limit},
                    )
            rows = tx.execute(
                "INSERT INTO schedules "
                "(id, owner_id, name, cron, timezone, job_template, enabled, next_fire_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                (
                    uuid4(),
                    owner_id,
                    name,
                    cron.text,
                    cron.timezone,
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

    def list_for(
        self, owner_id: UUID | None, *, limit: int, after: tuple[datetime, UUID] | None = None
    ) -> list[Schedule]:
        """Newest first; `after` is the (created_at, id) a page ended at."""
        at, last_id = after or (None, None)
        rows = self._db.execute(
            "SELECT * FROM schedules WHERE (%(owner)s::uuid IS NULL OR owner_id = %(owner)s::uuid) "
            "AND (%(at)s::timestamptz IS NULL OR (created_at, id) < (%(at)s, %(id)s::uuid)) "
            "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            {"owner": owner_id, "limit": limit, "at": at, "id": last_id},
        )
        return [Schedule.model_validate(row) for row in rows]

    def update(
        self,
        read: Schedule,
        *,
        name: str | None = None,
        cron: CronExpression | None = None,
        next_fire_at: datetime | None = None,
        template: dict[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> Schedule | None:
        """Change the given fields (None: unchanged) of the schedule `read` was read from,
        only if its timing is still as read (expression, zone, `enabled`, next run): a
        next run computed from what was read is never stored beside an expression someone
        else wrote meanwhile. None when it was changed (or deleted): read it again. A new
        expression clears the `error` a sweep disabled it with."""
        rows = self._db.execute(
            "UPDATE schedules SET name = coalesce(%(name)s, name), "
            "cron = coalesce(%(cron)s, cron), timezone = coalesce(%(timezone)s, timezone), "
            "next_fire_at = coalesce(%(next)s, next_fire_at), "
            "job_template = coalesce(%(template)s, job_template), "
            "enabled = coalesce(%(enabled)s, enabled), "
            "error = CASE WHEN %(timed)s THEN NULL ELSE error END, "
            "error_at = CASE WHEN %(timed)s THEN NULL ELSE error_at END, updated_at = now() "
            "WHERE id = %(id)s AND cron = %(read_cron)s AND timezone = %(read_timezone)s "
            "AND enabled = %(read_enabled)s AND next_fire_at = %(read_next)s RETURNING *",
            {
                "name": name,
                "cron": cron.text if cron else None,
                "timezone": cron.timezone if cron else None,
                "next": next_fire_at,
                "template": Jsonb(template) if template is not None else None,
                "enabled": enabled,
                "timed": cron is not None,
                "id": read.id,
                "read_cron": read.cron,
                "read_timezone": read.timezone,
                "read_enabled": read.enabled,
                "read_next": read.next_fire_at,
            },
        )
        return Schedule.model_validate(rows[0]) if rows else None

    def delete(self, schedule_id: UUID) -> None:
        if not self._db.execute("DELETE FROM schedules WHERE id = %s RETURNING id", (schedule_id,)):
            raise NotFound("schedule not found")

    def due(self, *, limit: int) -> list[Schedule]:
        # The schedules of an owner who may not create jobs wait: a disabled account, or one
        # made a `worker` (jobs are created by users and admins), creates nothing by the API
        # or through the sweep; they resume (with one catch-up run) once it may again.
        # Owners take turns: every owner's earliest due schedule comes first, then every
        # owner's second, and so on (by fire time within a turn). By fire time alone, one
        # owner with more due schedules than `limit` filled every run and held back everyone
        # else's, however long ago they were due.
        rows = self._db.execute(
            "SELECT * FROM ("
            " SELECT s.*, row_number() OVER ("
            "  PARTITION BY s.owner_id ORDER BY s.next_fire_at, s.id) AS owner_turn"
            " FROM schedules s JOIN users u ON u.id = s.owner_id"
            " WHERE s.enabled AND s.next_fire_at <= now() AND "
            + _OWNER_MAY_CREATE
            + ") due ORDER BY owner_turn, next_fire_at, id LIMIT %s",
            (limit,),
        )
        return [Schedule.model_validate(row) for row in rows]

    def disable_broken(self, schedule_id: UUID, *, fire_at: datetime, error: str) -> bool:
        """Disable a schedule the sweep cannot evaluate, saying why; only if it is still
        enabled at the same fire time (a second sweep at once, or an owner's change, wins).
        True for the caller that disabled it."""
        rows = self._db.execute(
            "UPDATE schedules SET enabled = false, error = %s, error_at = now(), "
            "updated_at = now() WHERE id = %s AND enabled AND next_fire_at = %s RETURNING id",
            (error[:1000], schedule_id, fire_at),
        )
        return bool(rows)

    @contextmanager
    def firing(self, schedule_id: UUID, *, fire_at: datetime) -> Iterator[Firing]:
        """A transaction firing the schedule's run at `fire_at`, holding its row: it is
        `due` only if the schedule is still enabled at that fire time now, and its owner
        may still create jobs. An edit (a pause, a new expression) answered after the sweep
        read the schedule is seen here, so no job is created for a run the owner was told
        would not happen; an edit arriving meanwhile waits for the firing to commit, then
        applies to the schedule moved on."""
        with self._db.transaction() as tx:
            # The owner's row first, as deleting the account locks it before its schedules
            # (cascade): holding the schedule, then taking the owner's row for the job's
            # foreign key, would deadlock with such a delete.
            tx.execute(
                "SELECT 1 FROM users WHERE id = (SELECT owner_id FROM schedules WHERE id = %s) "
                "FOR KEY SHARE",
                (schedule_id,),
            )
            # As in `due`: an owner who may not create jobs now (disabled, or made a
            # `worker` since `due` read the schedule) creates nothing; the run waits.
            rows = tx.execute(
                "SELECT s.id FROM schedules s JOIN users u ON u.id = s.owner_id "
                "WHERE s.id = %s AND s.enabled AND s.next_fire_at = %s "
                "AND " + _OWNER_MAY_CREATE + " FOR NO KEY UPDATE OF s",
                (schedule_id, fire_at),
            )
            yield Firing(bool(rows), self._db)

    def advance(
        self, schedule_id: UUID, *, fired_at: datetime, next_fire_at: datetime, job_id: UUID | None
    ) -> bool:
        """Move to the next fire time, only if no one else did (the same fire time). A
        schedule that fires is healthy: an `error` left from a sweep that disabled it before
        it was repaired by hand is cleared."""
        rows = self._db.execute(
            "UPDATE schedules SET next_fire_at = %s, last_fire_at = %s, "
            "last_job_id = coalesce(%s, last_job_id), updated_at = now(), "
            "error = NULL, error_at = NULL "
            "WHERE id = %s AND next_fire_at = %s RETURNING id",
            (next_fire_at, fired_at, job_id, schedule_id, fired_at),
        )
        return bool(rows)
