"""Schedules in time zones through the real API, store and sweep on Postgres: what is
stored and shown, what is refused, and how the sweep fires and catches up across DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.lifecycle.schedules import fire_due
from taskmill.schedules.cron import CronExpression
from taskmill.schedules.store import ScheduleStore


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next_weekday_at(zone: ZoneInfo, clock: time, after: datetime) -> datetime:
    """The oracle, from the standard library alone: the first Monday-to-Friday `clock` in
    `zone` after `after` (a zone without DST, so every local time exists once)."""
    day = after.astimezone(zone).date()
    while True:
        candidate = datetime.combine(day, clock, tzinfo=zone)
        if candidate.weekday() < 5 and candidate > after:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)


def test_a_schedule_in_a_zone_is_stored_and_shown_with_its_next_run(as_user) -> None:
    before = datetime.now(UTC)
    created = as_user.post(
        "/v1/schedules",
        {
            "name": "tokyo mornings",
            "cron": "0 9 * * MON-FRI",
            "timezone": "Asia/Tokyo",
            "job": {"type": "noop"},
        },
    )
    after = datetime.now(UTC)
    assert created.status == 201, created.body
    schedule = created.body
    assert (schedule["cron"], schedule["timezone"]) == ("0 9 * * MON-FRI", "Asia/Tokyo")
    fire = datetime.fromisoformat(schedule["next_fire_at"])
    zone = ZoneInfo("Asia/Tokyo")
    # `now` is read inside the request: the answer is the oracle's for a moment in between.
    assert fire in {next_weekday_at(zone, time(9), m) for m in (before, after)}
    assert fire.astimezone(zone).time() == time(9)
    assert fire.astimezone(zone).weekday() < 5
    assert as_user.get(f"/v1/schedules/{schedule['id']}").body["timezone"] == "Asia/Tokyo"
    [listed] = as_user.get("/v1/schedules").body["items"]
    assert (listed["timezone"], listed["next_fire_at"]) == ("Asia/Tokyo", schedule["next_fire_at"])


def test_the_zone_defaults_to_utc_and_macros_are_accepted(as_user) -> None:
    created = as_user.post(
        "/v1/schedules", {"name": "d", "cron": "@Daily", "job": {"type": "noop"}}
    )
    assert created.status == 201, created.body
    assert (created.body["cron"], created.body["timezone"]) == ("@daily", "UTC")
    fire = datetime.fromisoformat(created.body["next_fire_at"])
    assert fire.time() == time(0)
    assert fire.utcoffset() == timedelta(0)
    today = datetime.now(UTC).date()
    assert today < fire.date() <= today + timedelta(days=2)


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("timezone", {"cron": "@daily", "timezone": "Mars/Olympus_Mons"}),
        ("timezone", {"cron": "@daily", "timezone": "america/new_york"}),
        ("timezone", {"cron": "@daily", "timezone": "localtime"}),
        ("cron", {"cron": "@reboot", "timezone": "Europe/Berlin"}),
        ("cron", {"cron": "0 9 * * MONDAY", "timezone": "Europe/Berlin"}),
        ("cron", {"cron": "0 0 9 * * *"}),
    ],
)
def test_an_unknown_zone_or_a_bad_expression_is_a_400_naming_the_field(
    as_user, field: str, body: dict[str, Any]
) -> None:
    response = as_user.post("/v1/schedules", {"name": "x", "job": {"type": "noop"}, **body})
    assert response.status == 400, response.body
    error = response.body["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["loc"] == [field]
    assert as_user.get("/v1/schedules").body["items"] == []


def zoned_schedule(as_user, db, cron: str, timezone: str, *, created_at: str) -> UUID:
    """A schedule created through the store as of `created_at` (a real 2026 date)."""
    owner = UUID(as_user.get("/v1/auth/me").body["id"])
    schedule = ScheduleStore(db).create(
        owner,
        "zoned",
        CronExpression.parse(cron, timezone),
        {"type": "noop", "payload": {}},
        now=at(created_at),
    )
    return schedule.id


def sweep(db, job_queue, services, now: str) -> int:
    return fire_due(
        ScheduleStore(db), JobStore(db), job_queue, services.registry, limit=10, now=at(now)
    ).created


def test_a_fall_back_day_runs_a_0130_job_once_even_when_the_sweep_is_late(
    as_user, db, job_queue, services
) -> None:
    """America/New_York, 2026-11-01: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC
    (EST). A sweep that was down from 05:00 to 06:10 UTC runs the 05:30 slot once, and the
    next run is the next day's 01:30 EST (06:30 UTC), not the second 01:30 of the same night."""
    schedule_id = zoned_schedule(
        as_user, db, "30 1 * * *", "America/New_York", created_at="2026-10-31T12:00"
    )
    store = ScheduleStore(db)
    assert store.get(schedule_id).next_fire_at == at("2026-11-01T05:30")
    assert sweep(db, job_queue, services, "2026-11-01T06:10") == 1
    after = store.get(schedule_id)
    assert (after.last_fire_at, after.next_fire_at) == (
        at("2026-11-01T05:30"),
        at("2026-11-02T06:30"),
    )
    [job] = JobStore(db).list_jobs(JobFilter()).items
    assert job.idempotency_key == f"schedule:{schedule_id}:2026-11-01T05:30:00+00:00"


def test_a_spring_forward_day_runs_a_0230_job_at_0300_and_catch_up_runs_once(
    as_user, db, job_queue, services
) -> None:
    """Europe/Berlin, 2026-03-29: 02:30 does not exist (02:00 CET -> 03:00 CEST), so the run
    is at 03:00 CEST (01:00 UTC). A sweep down for two days runs once, for the earliest
    missed slot, and continues with the next 02:30 CEST after it came back."""
    schedule_id = zoned_schedule(
        as_user, db, "30 2 * * *", "Europe/Berlin", created_at="2026-03-28T12:00"
    )
    store = ScheduleStore(db)
    assert store.get(schedule_id).next_fire_at == at("2026-03-29T01:00")
    assert sweep(db, job_queue, services, "2026-03-31T12:00") == 1
    after = store.get(schedule_id)
    assert (after.last_fire_at, after.next_fire_at) == (
        at("2026-03-29T01:00"),
        at("2026-04-01T00:30"),
    )
    assert len(JobStore(db).list_jobs(JobFilter()).items) == 1
