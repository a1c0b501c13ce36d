"""What an edit does to a schedule's timing, and how an edit that keeps meeting concurrent
changes ends: decided without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from taskmill.errors import Conflict, InvalidInput, NotFound
from taskmill.schedules.cron import CronExpression
from taskmill.schedules.edits import EDIT_ATTEMPTS, edit_schedule, timing
from taskmill.schedules.store import Schedule

NOW = datetime(2026, 11, 25, 10, 7, 30, tzinfo=UTC)
STORED_NEXT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # due, not yet fired


def schedule(**changes: Any) -> Schedule:
    fields: dict[str, Any] = {
        "id": uuid4(),
        "owner_id": uuid4(),
        "name": "mornings",
        "cron": "0 9 * * *",
        "timezone": "UTC",
        "job_template": {"type": "noop"},
        "enabled": True,
        "next_fire_at": STORED_NEXT,
        "last_fire_at": None,
        "last_job_id": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Schedule.model_validate(fields | changes)


def test_an_edit_that_leaves_the_timing_alone_keeps_the_stored_next_run() -> None:
    for edit in (
        {"cron": None, "timezone": None, "enabled": None},
        {"cron": "0 9 * * *", "timezone": "UTC", "enabled": True},
        {"cron": "0  9 * *  *", "timezone": None, "enabled": None},  # the same, spaced
        {"cron": None, "timezone": None, "enabled": False},  # turning it off
    ):
        assert not timing(schedule(), now=NOW, **edit).changed, edit


def test_the_expression_as_written_at_creation_is_no_change() -> None:
    """A macro is stored in lower case (`@Daily` at creation is `@daily`): a client sending
    back what it created with, its stored next run due and not yet fired, changed nothing,
    where it used to count from now and drop that run."""
    stored = schedule(cron=CronExpression.parse("@Daily").text)
    assert stored.cron == "@daily"
    for cron in ("@Daily", "@DAILY", " @daily "):
        kept = timing(stored, cron=cron, timezone=None, enabled=None, now=NOW)
        assert not kept.changed, cron


def test_a_new_expression_or_zone_counts_from_the_edit() -> None:
    changed = timing(schedule(), cron="*/15 * * * *", timezone=None, enabled=None, now=NOW)
    assert changed.cron is not None
    assert changed.cron.text == "*/15 * * * *"
    assert changed.next_fire_at == datetime(2026, 11, 25, 10, 15, tzinfo=UTC)
    zoned = timing(schedule(), cron=None, timezone="Asia/Tokyo", enabled=None, now=NOW)
    assert zoned.cron is not None
    assert (zoned.cron.text, zoned.cron.timezone) == (
        "0 9 * * *",
        "Asia/Tokyo",
    )
    assert zoned.next_fire_at == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 09:00 JST


def test_turning_a_disabled_schedule_on_skips_the_runs_it_missed() -> None:
    resumed = timing(schedule(enabled=False), cron=None, timezone=None, enabled=True, now=NOW)
    assert resumed.next_fire_at == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"cron": "0 9 * * MONDAY", "timezone": None, "enabled": None}, "cron"),
        ({"cron": None, "timezone": "Mars/Olympus_Mons", "enabled": None}, "timezone"),
    ],
)
def test_an_expression_or_zone_that_does_not_parse_is_invalid_input_naming_it(
    edit: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        timing(schedule(), now=NOW, **edit)
    assert raised.value.details[0]["loc"] == [field]


def test_turning_on_a_schedule_whose_stored_expression_broke_is_refused() -> None:
    broken = schedule(enabled=False, timezone="Gone/Zone")
    with pytest.raises(InvalidInput):
        timing(broken, cron=None, timezone=None, enabled=True, now=NOW)
    repaired = timing(broken, cron=None, timezone="Europe/Berlin", enabled=True, now=NOW)
    assert repaired.changed


class ChangingStore:
    """A store whose row changes between every read and write (the conditional update
    never matches), as under a stream of concurrent edits."""

    def __init__(self, stored: Schedule) -> None:
        self.stored = stored
        self.writes = 0

    def get(self, schedule_id: Any) -> Schedule:
        return self.stored

    def update(self, read: Schedule, **changes: Any) -> Schedule | None:
        self.writes += 1
        return None


def test_an_edit_that_keeps_meeting_concurrent_changes_ends_in_a_conflict() -> None:
    store = ChangingStore(schedule())
    with pytest.raises(Conflict):
        edit_schedule(store, store.stored.id, owner_id=None, name="x")  # type: ignore[arg-type]
    assert store.writes == EDIT_ATTEMPTS


def test_another_owners_schedule_is_not_found_and_not_written() -> None:
    store = ChangingStore(schedule())
    with pytest.raises(NotFound):
        edit_schedule(store, store.stored.id, owner_id=uuid4(), enabled=False)  # type: ignore[arg-type]
    assert store.writes == 0
