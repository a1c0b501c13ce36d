from __future__ import annotations

from datetime import UTC, datetime

import pytest
from taskmill.errors import InvalidInput
from taskmill.schedules.cron import CronExpression


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


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
    ],
)
def test_next_fire_time(expression: str, after: str, expected: str) -> None:
    assert CronExpression.parse(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "a * * * *",
        "0 0 31 2 *",
    ],
)
def test_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidInput):
        CronExpression.parse(expression)
