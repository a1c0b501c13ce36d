"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Supports `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, and day-of-week
0-7 (0 and 7 are Sunday). As in classic cron, when both day fields are restricted a day
matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from taskmill.errors import InvalidInput

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
# Far enough to find any valid expression's next time (Feb 29 on a given weekday recurs
# within 28 years), bounded so an impossible one (31 Feb) fails instead of looping.
_HORIZON_DAYS = 366 * 29


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                first, last = base.split("-", 1)
                start, end = int(first), int(last)
            else:
                start = int(base)
                end = high if step_text else start
        except ValueError:
            raise InvalidInput(f"cron {name} field {text!r} is not valid") from None
        if step < 1 or not (low <= start <= high and low <= end <= high) or start > end:
            raise InvalidInput(f"cron {name} field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        parts = text.split()
        if len(parts) != 5:
            raise InvalidInput("a cron expression has five fields: minute hour day month weekday")
        parsed = [_parse_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(0 if d == 7 else d for d in parsed[4])
        expression = cls(
            " ".join(parts),
            parsed[0],
            parsed[1],
            parsed[2],
            parsed[3],
            weekdays,
            parts[2] != "*",
            parts[4] != "*",
        )
        expression.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # refuses impossible dates
        return expression

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment` (UTC, whole minutes)."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for offset in range(_HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if not self._day_matches(current):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    candidate = current.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
        raise InvalidInput(f"cron expression {self.text!r} never fires")
