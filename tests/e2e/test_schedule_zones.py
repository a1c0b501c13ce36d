"""Schedules in time zones over HTTP on the local stack: the next fire time the API shows is
the exact UTC instant, DST included, and the CLI's --timezone reaches the API.

The expected instants come from the calendar alone (US rules since 2007: summer time starts
on the second Sunday of March and ends on the first Sunday of November), so they hold in
any year the suite runs."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, RunningStack

pytestmark = pytest.mark.e2e


def nth_sunday(year: int, month: int, n: int) -> date:
    sundays = [
        week[calendar.SUNDAY]
        for week in calendar.monthcalendar(year, month)
        if week[calendar.SUNDAY] != 0
    ]
    return date(year, month, sundays[n - 1])


def next_instant(now: datetime, month: int, n: int, hour: int, minute: int) -> datetime:
    """The first `hour:minute` UTC on the n-th Sunday of `month` after `now`."""
    for year in (now.year, now.year + 1):
        day = nth_sunday(year, month, n)
        instant = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        if instant > now:
            return instant
    raise AssertionError("unreachable: a later year always has one")


def create(http: Http, cron: str, timezone: str) -> tuple[datetime, datetime, dict[str, object]]:
    before = datetime.now(UTC)
    status, body = http.call(
        "POST",
        "/v1/schedules",
        {"name": cron, "cron": cron, "timezone": timezone, "job": {"type": "noop"}},
    )
    assert status == 201, body
    return before, datetime.now(UTC), body


def fire_time(schedule: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(schedule["next_fire_at"]))


@pytest.fixture
def user(http: Http) -> Http:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    status, body = http.call(
        "POST", "/v1/auth/register", {"email": email, "password": "a long password"}
    )
    assert status == 201, body
    http.login(email, "a long password")
    return http


def test_a_job_in_the_skipped_hour_is_shown_at_the_end_of_the_jump(user: Http) -> None:
    """02:30 in New York on the spring-forward Sunday does not exist: the API shows 03:00
    EDT, which is 07:00 UTC."""
    before, after, schedule = create(user, "30 2 * 3 SUN#2", "America/New_York")
    assert schedule["timezone"] == "America/New_York"
    assert fire_time(schedule) in {next_instant(m, 3, 2, 7, 0) for m in (before, after)}


def test_a_job_in_the_repeated_hour_is_shown_at_its_first_pass(user: Http) -> None:
    """01:30 in New York on the fall-back Sunday happens twice: the API shows the first,
    01:30 EDT, which is 05:30 UTC (the second would be 06:30 UTC)."""
    before, after, schedule = create(user, "30 1 * NOV SUN#1", "America/New_York")
    assert fire_time(schedule) in {next_instant(m, 11, 1, 5, 30) for m in (before, after)}
    status, read = user.call("GET", f"/v1/schedules/{schedule['id']}")
    assert (status, read["next_fire_at"], read["timezone"]) == (
        200,
        schedule["next_fire_at"],
        "America/New_York",
    )


def test_an_unknown_zone_is_a_400_naming_the_field(user: Http) -> None:
    status, body = user.call(
        "POST",
        "/v1/schedules",
        {"name": "x", "cron": "@daily", "timezone": "Europe/Atlantis", "job": {"type": "noop"}},
    )
    assert status == 400, body
    assert body["error"]["code"] == "invalid_input"
    assert body["error"]["details"][0]["loc"] == ["timezone"]


def test_the_cli_creates_a_schedule_in_a_zone(stack: RunningStack, tmp_path: Path) -> None:
    """`taskmill schedules create ... --timezone` against the stack; @daily in Tokyo is
    15:00 UTC (midnight at UTC+9, no DST)."""
    config = tmp_path / "cli"
    taskmill = [sys.executable, "-m", "local.cli", "--url", stack.url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKMILL_")}
    env["TASKMILL_CONFIG_DIR"] = str(config)
    login = subprocess.run(
        [*taskmill, "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    created = subprocess.run(
        [
            *taskmill,
            "--json",
            "schedules",
            "create",
            "tokyo",
            "@daily",
            "noop",
            "--timezone",
            "Asia/Tokyo",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    schedule = json.loads(created.stdout)
    assert (schedule["cron"], schedule["timezone"]) == ("@daily", "Asia/Tokyo")
    fire = fire_time(schedule)
    assert (fire.hour, fire.minute, fire.utcoffset()) == (15, 0, UTC.utcoffset(None))
    assert 0 < (fire - datetime.now(UTC)).total_seconds() <= 24 * 3600
