"""Changing a schedule: what an edit does to its timing, and applying it without losing a
concurrent change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from taskmill.errors import Conflict, NotFound
from taskmill.schedules.cron import CronExpression, stored_text
from taskmill.schedules.store import Schedule, ScheduleStore

# Tries against edits of the same schedule landing at once (another PATCH, the sweep
# advancing it) before the caller is told to try again.
EDIT_ATTEMPTS = 3


@dataclass(frozen=True)
class Timing:
    """What an edit does to when a schedule runs: `cron` and `next_fire_at` are set when
    the expression, its zone or `enabled` changes (None: they stay as stored)."""

    cron: CronExpression | None = None
    next_fire_at: datetime | None = None

    @property
    def changed(self) -> bool:
        return self.cron is not None


def timing(
    schedule: Schedule,
    *,
    cron: str | None,
    timezone: str | None,
    enabled: bool | None,
    now: datetime,
) -> Timing:
    """A new expression or zone, or turning a disabled schedule on, counts from `now`: its
    next run is the first fire time after the edit. Runs missed while it was disabled, or
    due under the old expression and not yet fired, are not made up (a paused schedule
    resumed after a week does not run at once for the week it missed). Anything else keeps
    the stored next run. Raises `InvalidInput` (400, `loc` `cron` or `timezone`) for an
    expression or zone that does not parse, the stored one included when it is turned on
    again after the sweep disabled it for not parsing."""
    new_text = cron if cron is not None and stored_text(cron) != schedule.cron else None
    new_zone = timezone if timezone is not None and timezone != schedule.timezone else None
    turned_on = enabled is True and not schedule.enabled
    if new_text is None and new_zone is None and not turned_on:
        return Timing()
    expression = CronExpression.parse(new_text or schedule.cron, new_zone or schedule.timezone)
    return Timing(expression, expression.next_after(now))


def edit_schedule(
    store: ScheduleStore,
    schedule_id: UUID,
    *,
    owner_id: UUID | None,
    name: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    template: dict[str, Any] | None = None,
    enabled: bool | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Apply an edit (None: a field unchanged) to a schedule of `owner_id` (None: anyone's,
    for an admin). Each try writes only if the row is as it was read, so the next run is
    always computed from the expression stored with it; a schedule changed in between is
    read again (409 after `EDIT_ATTEMPTS`)."""
    for _ in range(EDIT_ATTEMPTS):
        schedule = store.get(schedule_id)
        if owner_id is not None and schedule.owner_id != owner_id:
            raise NotFound("schedule not found")
        planned = timing(
            schedule,
            cron=cron,
            timezone=timezone,
            enabled=enabled,
            now=now or datetime.now(UTC),
        )
        updated = store.update(
            schedule,
            name=name,
            cron=planned.cron,
            next_fire_at=planned.next_fire_at,
            template=template,
            enabled=enabled,
        )
        if updated is not None:
            return updated
    raise Conflict("the schedule was changed by someone else at the same time; try again")
