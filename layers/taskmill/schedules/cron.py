"""Cron expressions in an IANA time zone: Taskmill's rules on top of cronsim.

cronsim evaluates the expression the way Debian's cron does (day and month names, `L`,
`W`, `#`, and either day field matching when both are restricted). This module adds what
cronsim leaves to its caller: the `@daily`-style macros, exactly five fields (the sweep
runs once a minute, so there is no seconds field), time zone names, errors a client can
act on, and fire times as instants in UTC.

Daylight saving time follows Debian's cron, which cronsim reproduces. For an expression
with a fixed minute and hour (`30 2 * * *`, `@daily`):
- a local time the clock skips (02:30 on a spring-forward night) fires at the first
  instant after the jump (03:00 local), once;
- a local time the clock repeats (01:30 on a fall-back night) fires once, at its first
  occurrence (still on summer time).
An expression whose minute or hour field starts with `*` (`*/15 * * * *`, `@hourly`)
fires at every matching instant that exists: no run for the skipped hour, a run in each
pass of the repeated hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError

from taskmill.errors import InvalidInput

DEFAULT_TIMEZONE = "UTC"

# Debian cron's macros (crontab(5)); `@reboot` has no meaning for a platform schedule.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# Any valid expression fires within a few years of any date (29 February on a given
# weekday recurs within 28); cronsim gives up after 50 years without a match.
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(
        message, details=[{"loc": [field_name], "msg": message, "type": f"invalid_{field_name}"}]
    )


@cache
def _zone_names() -> frozenset[str]:
    # What the system's zoneinfo directory and the tzdata package hold (~600 names, read
    # once per process). An allowlist rather than catching ZoneInfo's errors: those differ
    # by source (a directory such as "Europe" is an OSError from tzdata), and a
    # case-insensitive filesystem would accept "utc". "localtime" is the host's own zone in
    # some directories, not an IANA name.
    return frozenset(available_timezones() - {"localtime"})


def time_zone(name: str) -> tzinfo:
    """The zone of an IANA name (`Europe/Berlin`, `UTC`), or InvalidInput naming the field."""
    if name == "UTC":
        return UTC
    if name not in _zone_names():
        raise _invalid(
            "timezone",
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC",
        )
    return ZoneInfo(name)


def stored_text(text: str) -> str:
    """An expression as `CronExpression.parse` stores it (runs of spaces as one, a macro in
    lower case), so two ways of writing one expression compare equal."""
    normalised = " ".join(text.split())
    return normalised.lower() if normalised.startswith("@") else normalised


@dataclass(frozen=True)
class CronExpression:
    """A validated expression and its zone. `text` and `timezone` are what is stored."""

    text: str
    timezone: str
    _fields: str
    _zone: tzinfo

    @classmethod
    def parse(cls, text: str, timezone: str = DEFAULT_TIMEZONE) -> CronExpression:
        zone = time_zone(timezone)
        normalised = stored_text(text)
        if normalised.startswith("@"):
            if normalised not in MACROS:
                raise _invalid(
                    "cron", f"unknown cron macro {normalised!r}: use one of {', '.join(MACROS)}"
                )
            fields = MACROS[normalised]
        else:
            fields = normalised
        if len(fields.split()) != 5:
            raise _invalid(
                "cron",
                "a cron expression has five fields (minute hour day-of-month month day-of-week) "
                "or is a macro such as @daily",
            )
        try:
            CronSim(fields, _PROBE)
        except CronSimError as exc:
            raise _invalid("cron", f"cron expression {normalised!r}: {exc}") from None
        expression = cls(normalised, timezone, fields, zone)
        # Refuses one that never fires (`* * */20 * 1L`: a last Monday on the 1st or 21st).
        expression.next_after(_PROBE)
        return expression

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment`, as an aware UTC datetime."""
        # cronsim's DST handling works on local wall-clock time, so after a repeated hour's
        # second pass it can name the first pass again (an instant before `moment`): skip it.
        for fire in CronSim(self._fields, moment.astimezone(self._zone)):
            instant = fire.astimezone(UTC)
            if instant > moment:
                return instant
        raise _invalid("cron", f"cron expression {self.text!r} never fires")
