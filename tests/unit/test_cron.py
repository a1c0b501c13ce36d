"""Cron expressions in a time zone: names, macros, DST on real 2026 dates, refusals."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from taskmill.errors import InvalidInput
from taskmill.schedules.cron import MACROS, CronExpression


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next_fire(expression: str, after: str, timezone: str = "UTC") -> datetime:
    return CronExpression.parse(expression, timezone).next_after(at(after))


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("* * * * *", "2026-01-01T10:00:30", "2026-01-01T10:01:00"),
        ("*/15 * * * *", "2026-01-01T10:01:00", "2026-01-01T10:15:00"),
        ("0 3 * * *", "2026-01-01T03:00:00", "2026-01-02T03:00:00"),
        ("30 9 * * 1-5", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),  # Fri -> Mon
        ("0 0 1 * *", "2026-01-15T00:00:00", "2026-02-01T00:00:00"),
        ("0 12 29 2 *", "2026-03-01T00:00:00", "2028-02-29T12:00:00"),
        ("0 0 13 * 5", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),  # day OR weekday
        ("5,10 1-2 * * 0", "2026-01-03T23:00:00", "2026-01-04T01:05:00"),  # 7/0 Sunday
        ("0 0 * * 7", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),
        ("0 8-18/5 * * *", "2026-01-01T09:00:00", "2026-01-01T13:00:00"),
        # Day and month names, in any case.
        ("30 9 * * MON-FRI", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),
        ("30 9 * * mon-fri", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),
        ("0 0 1 JAN,jul *", "2026-01-01T00:00:00", "2026-07-01T00:00:00"),
        ("0 12 * Feb Sun", "2026-01-01T00:00:00", "2026-02-01T12:00:00"),
        # Across the year end.
        ("59 23 31 DEC *", "2026-06-01T00:00:00", "2026-12-31T23:59:00"),
        ("0 0 * * SAT", "2026-12-31T12:00:00", "2027-01-02T00:00:00"),
    ],
)
def test_next_fire_time_in_utc(expression: str, after: str, expected: str) -> None:
    assert next_fire(expression, after) == at(expected)


@pytest.mark.parametrize(
    ("macro", "after", "expected"),
    [
        ("@yearly", "2026-03-01T00:00:00", "2027-01-01T00:00:00"),
        ("@annually", "2026-03-01T00:00:00", "2027-01-01T00:00:00"),
        ("@monthly", "2026-12-15T00:00:00", "2027-01-01T00:00:00"),
        ("@weekly", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),  # Thursday -> Sunday
        ("@daily", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),
        ("@midnight", "2026-01-01T23:59:00", "2026-01-02T00:00:00"),
        ("@hourly", "2026-01-01T10:00:00", "2026-01-01T11:00:00"),
        ("@DAILY", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),
    ],
)
def test_macros(macro: str, after: str, expected: str) -> None:
    assert next_fire(macro, after) == at(expected)


def test_every_macro_is_tested() -> None:
    assert set(MACROS) == {
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    }


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        # Spring forward, America/New_York 2026-03-08: 02:00 EST jumps to 03:00 EDT, so
        # 02:30 does not exist. The run happens once, at 03:00 EDT (07:00 UTC).
        ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00", "2026-03-08T07:00:00"),
        ("30 2 * * *", "America/New_York", "2026-03-08T07:00:00", "2026-03-09T06:30:00"),
        # Europe/Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        ("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00", "2026-03-29T01:00:00"),
        ("30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00", "2026-03-30T00:30:00"),
        # Fall back, America/New_York 2026-11-01: 01:30 happens twice (05:30 UTC on EDT,
        # 06:30 UTC on EST). It runs once, at the first (05:30 UTC); the next is a day later.
        ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00", "2026-11-01T05:30:00"),
        ("30 1 * * *", "America/New_York", "2026-11-01T05:30:00", "2026-11-02T06:30:00"),
        # Asked during the second 01:30 hour (as a sweep late by 40 minutes would): not again.
        ("30 1 * * *", "America/New_York", "2026-11-01T06:10:00", "2026-11-02T06:30:00"),
        # Europe/Berlin 2026-10-25: 02:30 happens twice; the first is 00:30 UTC.
        ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00", "2026-10-25T00:30:00"),
        ("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00", "2026-10-26T01:30:00"),
        # @daily in a zone: local midnight, whatever the UTC offset of that day.
        ("@daily", "America/New_York", "2026-03-07T12:00:00", "2026-03-08T05:00:00"),
        ("@daily", "America/New_York", "2026-03-08T05:00:00", "2026-03-09T04:00:00"),
        ("@daily", "Europe/Berlin", "2026-12-31T12:00:00", "2026-12-31T23:00:00"),
        # Weekdays at 09:00 in Tokyo (UTC+9, no DST), across the year end: Thursday
        # 2026-12-31 09:00 JST is 00:00 UTC; then Friday 1 January; then Monday 4 January.
        ("0 9 * * MON-FRI", "Asia/Tokyo", "2026-12-30T12:00:00", "2026-12-31T00:00:00"),
        ("0 9 * * MON-FRI", "Asia/Tokyo", "2026-12-31T00:00:00", "2027-01-01T00:00:00"),
        ("0 9 * * MON-FRI", "Asia/Tokyo", "2027-01-01T00:00:00", "2027-01-04T00:00:00"),
        # Asked on Sunday 20:00 UTC, already Monday 05:00 in Tokyo: that morning's run.
        ("0 9 * * MON", "Asia/Tokyo", "2027-01-03T20:00:00", "2027-01-04T00:00:00"),
        # Steps in the hour field follow the wall clock (every 6 hours local, 00/06/12/18).
        ("0 */6 * * *", "Asia/Tokyo", "2026-01-01T00:00:00", "2026-01-01T03:00:00"),
    ],
)
def test_next_fire_time_in_a_zone(
    expression: str, timezone: str, after: str, expected: str
) -> None:
    assert next_fire(expression, after, timezone) == at(expected)


def fire_times(expression: str, timezone: str, start: str, end: str) -> list[datetime]:
    cron = CronExpression.parse(expression, timezone)
    times, moment = [], at(start)
    while (moment := cron.next_after(moment)) < at(end):
        times.append(moment)
    return times


def test_expressions_with_a_star_hour_run_at_every_instant_that_exists() -> None:
    """Every 30 minutes stays every 30 real minutes: the skipped hour has no runs, the
    repeated hour has them twice (01:00 and 01:30 on EDT, then on EST)."""
    spring = fire_times("*/30 * * * *", "America/New_York", "2026-03-08T05:50", "2026-03-08T08:00")
    assert spring == [
        at(t)
        for t in ("2026-03-08T06:00", "2026-03-08T06:30", "2026-03-08T07:00", "2026-03-08T07:30")
    ]
    fall = fire_times("*/30 * * * *", "America/New_York", "2026-11-01T04:50", "2026-11-01T07:00")
    assert fall == [
        at(t)
        for t in ("2026-11-01T05:00", "2026-11-01T05:30", "2026-11-01T06:00", "2026-11-01T06:30")
    ]
    hourly = fire_times("@hourly", "Europe/Berlin", "2026-03-28T23:30", "2026-03-29T02:30")
    assert hourly == [at(t) for t in ("2026-03-29T00:00", "2026-03-29T01:00", "2026-03-29T02:00")]


@pytest.mark.parametrize("expression", ["30 1 * * *", "30 2 * * *", "@daily", "0 9 * * MON-FRI"])
@pytest.mark.parametrize("timezone", ["America/New_York", "Europe/Berlin", "Australia/Sydney"])
def test_a_fixed_time_runs_once_per_matching_local_day_through_a_year(
    expression: str, timezone: str
) -> None:
    """Through 2026 and both of its DST changes: strictly increasing instants, one per
    local day that matches (weekdays only for MON-FRI), none missing."""
    zone = ZoneInfo(timezone)
    times = fire_times(expression, timezone, "2025-12-31T12:00", "2027-01-01T14:00")
    assert times == sorted(set(times))
    days = Counter(t.astimezone(zone).date() for t in times)
    year = [datetime(2026, 1, 1).date() + timedelta(days=n) for n in range(365)]
    wanted = [d for d in year if "MON-FRI" not in expression or d.weekday() < 5]
    assert {d: days[d] for d in wanted} == dict.fromkeys(wanted, 1)


def test_fire_times_are_aware_utc_and_the_stored_text_is_normalised() -> None:
    cron = CronExpression.parse("  0  9 * *   MON-FRI ", "Asia/Tokyo")
    assert (cron.text, cron.timezone) == ("0 9 * * MON-FRI", "Asia/Tokyo")
    assert cron.next_after(at("2027-01-01T00:00")).tzinfo is UTC
    assert CronExpression.parse("@Daily").text == "@daily"
    assert CronExpression.parse("@daily").timezone == "UTC"
    naive_utc_input = CronExpression.parse("@hourly").next_after(at("2026-01-01T10:59:59.5"))
    assert naive_utc_input == at("2026-01-01T11:00")


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "* * * *",
        "0 0 0 * * *",  # a seconds field: the sweep runs once a minute
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "a * * * *",
        "* * * * MON-",
        "* * * JANUARY *",
        "0 0 31 2 *",
        "0 0 30 FEB *",
        "* * */20 * 1L",  # a last Monday on the 1st or 21st: never
        "@reboot",
        "@daily 0",
        "@",
    ],
)
def test_invalid_expressions_are_refused_naming_the_field(expression: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        CronExpression.parse(expression)
    assert caught.value.details[0]["loc"] == ["cron"]


@pytest.mark.parametrize(
    "timezone",
    [
        "",
        "Mars/Olympus_Mons",
        "utc",
        "Europe",
        "Europe/",
        "/etc/localtime",
        "../etc/passwd",
        "localtime",
        "America/New York",
    ],
)
def test_unknown_time_zones_are_refused_naming_the_field(timezone: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        CronExpression.parse("@daily", timezone)
    assert caught.value.details[0]["loc"] == ["timezone"]
    assert "IANA" in caught.value.message
