"""Editing, pausing and resuming schedules through the real API, store and sweep on
Postgres, and the per-user cap on schedules (also under two creates at once)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from taskmill.db import Database
from taskmill.errors import QuotaExceeded
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.lifecycle.schedules import fire_due
from taskmill.lifecycle.submit import JobRequest, create_jobs
from taskmill.schedules.cron import CronExpression
from taskmill.schedules.store import ScheduleStore

from tests.support.locks import waits_for_a_lock


def owner_of(client: Any) -> UUID:
    return UUID(client.get("/v1/auth/me").body["id"])


def due_schedule(db: Database, owner: UUID, cron: str = "0 * * * *") -> UUID:
    """A schedule whose next run passed a day ago and has not fired."""
    return (
        ScheduleStore(db)
        .create(
            owner,
            "hourly",
            CronExpression.parse(cron),
            {"type": "noop", "payload": {}},
            now=datetime.now(UTC) - timedelta(days=1),
        )
        .id
    )


def sweep(db: Database, job_queue: Any, services: Any) -> int:
    return fire_due(ScheduleStore(db), JobStore(db), job_queue, services.registry, limit=10).created


def time_passes_until_due(db: Database, schedule_id: UUID, fire_at: datetime) -> None:
    """The database's clock decides what is due: move the schedule's run, not the clock,
    as if its `fire_at` had come (the run keeps its fire time in the job's key)."""
    lead = fire_at - datetime.now(UTC) + timedelta(seconds=1)
    db.execute(
        "UPDATE schedules SET next_fire_at = next_fire_at - %s WHERE id = %s",
        (lead, schedule_id),
    )


def jobs_of(db: Database) -> list[Any]:
    return JobStore(db).list_jobs(JobFilter()).items


def test_a_paused_schedule_fires_nothing_and_resumes_from_now_without_the_runs_it_missed(
    as_user, db, job_queue, services
) -> None:
    schedule_id = due_schedule(db, owner_of(as_user))
    paused = as_user.patch(f"/v1/schedules/{schedule_id}", {"enabled": False})
    assert paused.status == 200, paused.body
    assert paused.body["enabled"] is False
    assert sweep(db, job_queue, services) == 0
    assert jobs_of(db) == []

    before = datetime.now(UTC)
    resumed = as_user.patch(f"/v1/schedules/{schedule_id}", {"enabled": True})
    assert resumed.status == 200, resumed.body
    assert resumed.body["enabled"] is True
    next_fire = datetime.fromisoformat(resumed.body["next_fire_at"])
    assert before < next_fire <= before + timedelta(hours=1)
    assert sweep(db, job_queue, services) == 0  # the day it missed is not made up
    time_passes_until_due(db, schedule_id, next_fire)
    assert sweep(db, job_queue, services) == 1
    assert len(jobs_of(db)) == 1


def test_a_new_expression_zone_and_job_apply_from_the_next_run(
    as_user, db, job_queue, services
) -> None:
    schedule_id = due_schedule(db, owner_of(as_user))
    before = datetime.now(UTC)
    edited = as_user.patch(
        f"/v1/schedules/{schedule_id}",
        {
            "name": "tokyo mornings",
            "cron": "0 9 * * *",
            "timezone": "Asia/Tokyo",
            "job": {"type": "sleep", "payload": {"seconds": 1}, "priority": "high"},
        },
    )
    assert edited.status == 200, edited.body
    body = edited.body
    assert (body["name"], body["cron"], body["timezone"]) == (
        "tokyo mornings",
        "0 9 * * *",
        "Asia/Tokyo",
    )
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    assert before < next_fire <= before + timedelta(days=1)
    assert next_fire.astimezone(UTC).hour == 0  # 09:00 in Tokyo
    assert as_user.get(f"/v1/schedules/{schedule_id}").body == body
    assert sweep(db, job_queue, services) == 0  # the old expression's due run is dropped
    time_passes_until_due(db, schedule_id, next_fire)
    assert sweep(db, job_queue, services) == 1
    [job] = jobs_of(db)
    assert (job.type, job.payload, job.priority.value) == ("sleep", {"seconds": 1}, "high")


def test_a_rename_keeps_the_next_run(as_user, db) -> None:
    schedule_id = due_schedule(db, owner_of(as_user))
    before = as_user.get(f"/v1/schedules/{schedule_id}").body
    renamed = as_user.patch(f"/v1/schedules/{schedule_id}", {"name": "renamed"})
    assert renamed.status == 200, renamed.body
    assert renamed.body["next_fire_at"] == before["next_fire_at"]
    assert renamed.body | {"name": before["name"]} == before
    unchanged = as_user.patch(f"/v1/schedules/{schedule_id}", {})
    assert unchanged.status == 200
    assert unchanged.body == renamed.body


@pytest.mark.parametrize(
    ("edit", "status", "loc"),
    [
        ({"cron": "0 9 * * MONDAY"}, 400, ["cron"]),
        ({"timezone": "europe/berlin"}, 400, ["timezone"]),
        ({"job": {"type": "noop", "run_at": "2030-01-01T00:00:00Z"}}, 400, None),
        ({"job": {"type": "no-such-type"}}, 400, None),
        ({"job": {"type": "webhook.deliver"}}, 400, None),  # internal
        ({"job": {"type": "sleep", "payload": {"seconds": "x" * 10_000}}}, 413, None),
        ({"enabled": "yes"}, 400, None),
        ({"owner_id": "00000000-0000-0000-0000-000000000000"}, 400, None),
    ],
)
def test_a_bad_edit_is_refused_in_the_envelope_and_changes_nothing(
    as_user, db, edit: dict[str, Any], status: int, loc: list[str] | None
) -> None:
    schedule_id = due_schedule(db, owner_of(as_user))
    before = as_user.get(f"/v1/schedules/{schedule_id}").body
    response = as_user.patch(f"/v1/schedules/{schedule_id}", {"name": "changed", **edit})
    assert response.status == status, response.body
    assert set(response.body) == {"error"}
    if loc is not None:
        assert response.body["error"]["details"][0]["loc"] == loc
    assert as_user.get(f"/v1/schedules/{schedule_id}").body == before


def test_only_the_owner_or_an_admin_edits_a_schedule(as_user, as_other, as_admin, db) -> None:
    schedule_id = due_schedule(db, owner_of(as_user))
    before = as_user.get(f"/v1/schedules/{schedule_id}").body
    refused = as_other.patch(f"/v1/schedules/{schedule_id}", {"enabled": False})
    assert refused.status == 404
    assert refused.body["error"]["code"] == "not_found"
    assert as_user.get(f"/v1/schedules/{schedule_id}").body == before
    by_admin = as_admin.patch(f"/v1/schedules/{schedule_id}", {"enabled": False})
    assert by_admin.status == 200, by_admin.body
    assert by_admin.body["enabled"] is False
    missing = as_user.patch("/v1/schedules/00000000-0000-0000-0000-000000000000", {"name": "x"})
    assert missing.status == 404


def test_repairing_a_schedule_the_sweep_disabled_clears_its_error(
    as_user, db, job_queue, services
) -> None:
    schedule_id = due_schedule(db, owner_of(as_user))
    db.execute("UPDATE schedules SET timezone = 'Gone/Zone' WHERE id = %s", (schedule_id,))
    sweep(db, job_queue, services)
    broken = as_user.get(f"/v1/schedules/{schedule_id}").body
    assert broken["enabled"] is False
    assert broken["error"]

    refused = as_user.patch(f"/v1/schedules/{schedule_id}", {"enabled": True})
    assert refused.status == 400, refused.body
    assert refused.body["error"]["details"][0]["loc"] == ["timezone"]

    repaired = as_user.patch(
        f"/v1/schedules/{schedule_id}", {"timezone": "Europe/Berlin", "enabled": True}
    )
    assert repaired.status == 200, repaired.body
    assert (repaired.body["enabled"], repaired.body["error"], repaired.body["error_at"]) == (
        True,
        None,
        None,
    )


def test_a_pause_answered_before_the_sweep_fires_the_schedule_creates_nothing(
    as_user, db, job_queue, services, monkeypatch
) -> None:
    """The sweep reads the due schedules, then fires them one by one: a pause answered in
    between (200, `enabled` false) used to be followed by the paused schedule's job all
    the same. Each firing now rechecks the schedule under its row lock."""
    schedule_id = due_schedule(db, owner_of(as_user))
    read_due = ScheduleStore.due
    answers: list[Any] = []

    def due_then_paused(self: ScheduleStore, *, limit: int) -> list[Any]:
        due = read_due(self, limit=limit)
        answers.append(as_user.patch(f"/v1/schedules/{schedule_id}", {"enabled": False}))
        return due

    monkeypatch.setattr(ScheduleStore, "due", due_then_paused)
    assert sweep(db, job_queue, services) == 0
    [paused] = answers
    assert paused.status == 200, paused.body
    assert paused.body["enabled"] is False
    assert jobs_of(db) == []
    assert as_user.get(f"/v1/schedules/{schedule_id}").body == paused.body


def test_an_expression_edited_before_the_sweep_fires_the_schedule_is_not_fired_as_it_was(
    as_user, db, job_queue, services, monkeypatch
) -> None:
    """An edit answered between the sweep's read and its firing counts from now, as the
    edit said: the run due under the old expression is not fired after it."""
    schedule_id = due_schedule(db, owner_of(as_user))
    read_due = ScheduleStore.due
    answers: list[Any] = []

    def due_then_edited(self: ScheduleStore, *, limit: int) -> list[Any]:
        due = read_due(self, limit=limit)
        answers.append(as_user.patch(f"/v1/schedules/{schedule_id}", {"cron": "@daily"}))
        return due

    monkeypatch.setattr(ScheduleStore, "due", due_then_edited)
    assert sweep(db, job_queue, services) == 0
    [edited] = answers
    assert edited.status == 200, edited.body
    assert jobs_of(db) == []
    assert as_user.get(f"/v1/schedules/{schedule_id}").body == edited.body


def test_a_pause_arriving_while_a_run_is_fired_waits_for_it_and_shows_it(
    as_user, db, database_url
) -> None:
    """Two connections: the sweep holds the schedule's row while it fires a run; a pause
    arriving meanwhile waits (Postgres says so), then applies to the schedule moved on, and
    its answer names the run that was fired."""
    schedule_id = due_schedule(db, owner_of(as_user))
    fire_at = ScheduleStore(db).get(schedule_id).next_fire_at
    [row] = db.execute("SELECT pg_backend_pid() AS pid")
    api_pid = row["pid"]
    sweep_db = Database(database_url)
    observer = Database(database_url)
    answers: list[Any] = []
    thread = threading.Thread(
        target=lambda: answers.append(
            as_user.patch(f"/v1/schedules/{schedule_id}", {"enabled": False})
        )
    )
    blocked = False
    try:
        store = ScheduleStore(sweep_db)
        with store.firing(schedule_id, fire_at=fire_at) as firing:
            assert firing.due
            thread.start()
            blocked = waits_for_a_lock(observer, api_pid, thread)
            store.advance(
                schedule_id,
                fired_at=fire_at,
                next_fire_at=fire_at + timedelta(hours=1),
                job_id=None,
            )
        thread.join()
    finally:
        sweep_db.close()
        observer.close()
    assert blocked, "the pause did not wait for the firing"
    [paused] = answers
    assert paused.status == 200, paused.body
    assert paused.body["enabled"] is False
    assert datetime.fromisoformat(paused.body["last_fire_at"]) == fire_at
    assert datetime.fromisoformat(paused.body["next_fire_at"]) == fire_at + timedelta(hours=1)


def test_deleting_the_owner_while_a_run_is_fired_waits_for_it_and_deadlocks_nothing(
    as_user, as_admin, db, database_url, services
) -> None:
    """Two connections: deleting an account locks its row, then its schedules (cascade);
    a firing that held the schedule first and then needed the account's row for its job
    (the foreign key) would wait on the delete while the delete waited on it. The firing
    holds the account's row first, so the delete waits for it and both succeed."""
    owner = owner_of(as_user)
    schedule_id = due_schedule(db, owner)
    fire_at = ScheduleStore(db).get(schedule_id).next_fire_at
    [row] = db.execute("SELECT pg_backend_pid() AS pid")
    api_pid = row["pid"]
    sweep_db = Database(database_url)
    observer = Database(database_url)
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(as_admin.delete(f"/v1/users/{owner}")))
    blocked = False
    try:
        store = ScheduleStore(sweep_db)
        with store.firing(schedule_id, fire_at=fire_at) as firing:
            assert firing.due
            thread.start()
            blocked = waits_for_a_lock(observer, api_pid, thread)
            [made] = create_jobs(
                JobStore(sweep_db),
                services.registry,
                owner,
                [JobRequest(type="noop", payload={}, idempotency_key="k")],
                actor=f"schedule:{schedule_id}",
            )
            store.advance(
                schedule_id,
                fired_at=fire_at,
                next_fire_at=fire_at + timedelta(hours=1),
                job_id=made.job.id,
            )
        thread.join()
    finally:
        sweep_db.close()
        observer.close()
    assert blocked, "the delete did not wait for the firing"
    [deleted] = answers
    assert deleted.status == 204, deleted.body
    assert db.execute("SELECT id FROM schedules WHERE id = %s", (schedule_id,)) == []


def test_an_edit_computed_from_a_stale_read_is_not_written(db, database_url, as_user) -> None:
    """Two connections: an edit read before another one changed the expression would store
    a next run computed from the old expression beside the new one; it writes nothing and
    the caller reads again."""
    schedule_id = due_schedule(db, owner_of(as_user))
    store = ScheduleStore(db)
    stale = store.get(schedule_id)
    other = Database(database_url)
    try:
        every_minute = CronExpression.parse("* * * * *")
        assert ScheduleStore(other).update(
            stale, cron=every_minute, next_fire_at=every_minute.next_after(datetime.now(UTC))
        )
    finally:
        other.close()
    assert store.update(stale, enabled=False) is None
    assert store.get(schedule_id).enabled is True
    assert store.get(schedule_id).cron == "* * * * *"


def test_past_the_cap_a_create_is_429_until_one_is_deleted(as_user, services) -> None:
    services.settings = services.settings.model_copy(update={"max_schedules_per_user": 2})
    body = {"name": "s", "cron": "@daily", "job": {"type": "noop"}}
    first = as_user.post("/v1/schedules", body)
    assert first.status == 201
    assert as_user.post("/v1/schedules", body | {"enabled": False}).status == 201
    refused = as_user.post("/v1/schedules", body)
    assert refused.status == 429, refused.body
    assert refused.body["error"]["code"] == "quota_exceeded"
    assert refused.body["error"]["details"] == {"schedules": 2, "limit": 2}
    assert len(as_user.get("/v1/schedules").body["items"]) == 2
    assert as_user.delete(f"/v1/schedules/{first.body['id']}").status == 204
    assert as_user.post("/v1/schedules", body).status == 201


def test_the_cap_is_per_user(as_user, as_other, services) -> None:
    services.settings = services.settings.model_copy(update={"max_schedules_per_user": 1})
    body = {"name": "s", "cron": "@daily", "job": {"type": "noop"}}
    assert as_user.post("/v1/schedules", body).status == 201
    assert as_other.post("/v1/schedules", body).status == 201
    assert as_user.post("/v1/schedules", body).status == 429


def test_two_creates_at_once_cannot_both_take_the_last_place(db, database_url, as_user) -> None:
    """The second create waits for the first (Postgres says when it waits) and then counts
    the first one's schedule."""
    owner = owner_of(as_user)
    daily = CronExpression.parse("@daily")
    template = {"type": "noop", "payload": {}}
    first, second = Database(database_url), Database(database_url)
    pid = second.connection().info.backend_pid
    outcome: dict[str, Any] = {}

    def create_second() -> None:
        try:
            outcome["schedule"] = ScheduleStore(second).create(
                owner, "second", daily, template, limit=1
            )
        except BaseException as exc:  # surfaced below
            outcome["error"] = exc

    thread = threading.Thread(target=create_second)
    blocked = False
    try:
        with first.transaction():
            ScheduleStore(first).create(owner, "first", daily, template, limit=1)
            thread.start()
            blocked = waits_for_a_lock(db, pid, thread)
        thread.join()
    finally:
        first.close()
        second.close()
    assert blocked, "the second create did not wait for the first"
    assert isinstance(outcome.get("error"), QuotaExceeded), outcome
    assert [s.name for s in ScheduleStore(db).list_for(owner, limit=10)] == ["first"]
