"""Schedules, DLQ peek/redrive/reconciliation and manual requeue, through the real API,
worker and sweep on Postgres and moto SQS."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import pytest
from psycopg.types.json import Jsonb
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.lifecycle.schedules import fire_due
from taskmill.queue.sqs import JobQueue
from taskmill.recovery.sweep import Sweeper, SweepLimits
from taskmill.schedules.store import ScheduleStore
from taskmill.topology import Priority

from taskmill_local import moto_fast
from tests.integration.worker.conftest import failures, queue_messages
from tests.support.lambda_events import FakeLambdaContext
from tests.support.sqs_sampling import SamplingSqs


def fail_to_dlq(as_user: Any, deliver: Any, job_type: str = "fail", **fields: Any) -> str:
    job = as_user.post("/v1/jobs", {"type": job_type, "max_attempts": 1, **fields}).body
    deliver(fields.get("priority", "normal"))
    return job["id"]


def depth(sqs: Any, url: str) -> int:
    """Messages on a queue, visible or not, without receiving (which would hide them)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


# ---- schedules ----------------------------------------------------------------------


def test_schedule_crud_and_validation(as_user, as_other, as_admin) -> None:
    created = as_user.post(
        "/v1/schedules",
        {"name": "nightly", "cron": "0 3 * * *", "job": {"type": "noop", "tags": ["cron"]}},
    )
    assert created.status == 201, created.body
    schedule = created.body
    assert schedule["next_fire_at"].endswith(("03:00:00Z", "03:00:00+00:00"))
    assert (
        as_user.post(
            "/v1/schedules", {"name": "x", "cron": "61 * * * *", "job": {"type": "noop"}}
        ).status
        == 400
    )
    assert (
        as_user.post(
            "/v1/schedules", {"name": "x", "cron": "* * * * *", "job": {"type": "nope"}}
        ).status
        == 400
    )
    assert [s["id"] for s in as_user.get("/v1/schedules").body["items"]] == [schedule["id"]]
    assert as_other.get("/v1/schedules").body["items"] == []
    assert as_other.get(f"/v1/schedules/{schedule['id']}").status == 404
    assert as_other.delete(f"/v1/schedules/{schedule['id']}").status == 404
    assert as_admin.get(f"/v1/schedules/{schedule['id']}").status == 200
    assert as_user.delete(f"/v1/schedules/{schedule['id']}").status == 204
    assert as_user.get(f"/v1/schedules/{schedule['id']}").status == 404


def test_a_schedule_template_with_a_fixed_instant_or_dependencies_is_refused(as_user, db) -> None:
    # Every run would create its job at the same past instant, or wait on the same one job
    # (skipped at every run once that job is gone): refused, naming the field.
    dependency = as_user.post("/v1/jobs", {"type": "noop"}).body["id"]
    for field, value, hint in (
        ("run_at", "2030-01-01T00:00:00Z", "delay_seconds"),
        ("depends_on", [dependency], "depends_on"),
    ):
        refused = as_user.post(
            "/v1/schedules",
            {"name": "x", "cron": "@daily", "job": {"type": "noop", field: value}},
        )
        assert refused.status == 400, refused.body
        assert refused.error_code == "invalid_input"
        [detail] = refused.body["error"]["details"]
        assert detail["loc"][-2:] == ["job", field]
        assert hint in detail["msg"]
    assert db.execute("SELECT count(*) AS n FROM schedules")[0]["n"] == 0
    # A relative delay is what a recurring job wants instead.
    delayed = as_user.post(
        "/v1/schedules",
        {"name": "x", "cron": "@daily", "job": {"type": "noop", "delay_seconds": 60}},
    )
    assert delayed.status == 201, delayed.body
    assert delayed.body["job"]["delay_seconds"] == 60


def test_a_page_of_schedules_fits_in_one_lambda_response(as_user, db) -> None:
    # Templates as large as a job's payload may be (256 KiB deployed), of characters JSON
    # escapes: a page of 200 would be far over Lambda's 6 MB once in its envelope.
    body = {"cron": "@daily", "job": {"type": "noop"}}
    made = {as_user.post("/v1/schedules", {**body, "name": f"s{i}"}).body["id"] for i in range(20)}
    db.execute(
        "UPDATE schedules SET job_template = jsonb_build_object("
        "'type', 'noop', 'payload', jsonb_build_object('q', repeat('\"', 250000)))"
    )
    seen: list[str] = []
    query = "/v1/schedules?limit=200"
    while True:
        page = as_user.get(query)
        assert page.status == 200
        assert page.envelope_bytes < 6 * 1024 * 1024
        seen.extend(s["id"] for s in page.body["items"])
        if page.body["next_cursor"] is None:
            break
        query = f"/v1/schedules?limit=200&cursor={page.body['next_cursor']}"
    assert sorted(seen) == sorted(made)


def test_a_schedule_template_keeps_to_the_payload_limit_of_a_job(as_user, services) -> None:
    # Every run creates the template's job, so a payload POST /v1/jobs refuses (413) must not
    # get in through a schedule.
    limit = services.settings.max_payload_bytes
    big = {
        "type": "http.request",
        "payload": {"url": "https://example.com/", "method": "POST", "body": "x" * limit},
    }
    assert as_user.post("/v1/jobs", big).status == 413
    refused = as_user.post("/v1/schedules", {"name": "big", "cron": "@daily", "job": big})
    assert (refused.status, refused.error_code) == (413, "payload_too_large")
    assert as_user.get("/v1/schedules").body["items"] == []


def test_schedules_are_listed_a_page_at_a_time(as_user, as_other, as_admin) -> None:
    """Newest first, `limit` per page and a cursor to the next: a list cut at a fixed size
    with no cursor hid every schedule past it (an admin sees everyone's)."""
    body = {"cron": "@daily", "job": {"type": "noop"}}
    mine = [as_user.post("/v1/schedules", {**body, "name": f"s{i}"}).body["id"] for i in range(5)]
    theirs = as_other.post("/v1/schedules", {**body, "name": "other"}).body["id"]

    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = as_user.get(f"/v1/schedules{query}").body
        assert len(page["items"]) <= 2
        seen.extend(s["id"] for s in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == mine[::-1]
    everyone = as_admin.get("/v1/schedules?limit=200").body
    assert [s["id"] for s in everyone["items"]] == [theirs, *mine[::-1]]
    assert everyone["next_cursor"] is None
    # A cursor outlives its schedule: the next page starts after its place.
    first = as_user.get("/v1/schedules?limit=1").body
    assert as_user.delete(f"/v1/schedules/{first['items'][0]['id']}").status == 204
    rest = as_user.get(f"/v1/schedules?limit=10&cursor={first['next_cursor']}").body
    assert [s["id"] for s in rest["items"]] == mine[::-1][1:]
    bad = as_user.get("/v1/schedules?cursor=not-a-cursor")
    assert bad.status == 400
    assert bad.body["error"]["message"] == "cursor is not valid"
    assert as_user.get("/v1/schedules?limit=0").status == 400


def fire(db: Any, job_queue: Any, services: Any) -> int:
    """One `fire_due` run, as the sweep makes it: the jobs it created."""
    return fire_due(ScheduleStore(db), JobStore(db), job_queue, services.registry, limit=10).created


def _due_schedule(as_user: Any, db: Any) -> str:
    schedule = as_user.post(
        "/v1/schedules", {"name": "m", "cron": "*/5 * * * *", "job": {"type": "noop"}}
    ).body
    db.execute(
        "UPDATE schedules SET next_fire_at = date_trunc('minute', now()) - interval '2 minutes'"
    )
    return schedule["id"]


def test_schedule_fires_once_per_slot_across_overlapping_sweeps(
    as_user, db, database_url, job_queue, services
) -> None:
    import threading

    from taskmill.db import Database

    schedule_id = _due_schedule(as_user, db)
    created: list[int] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        own = Database(database_url)
        barrier.wait()
        created.append(
            fire_due(
                ScheduleStore(own), JobStore(own), job_queue, services.registry, limit=10
            ).created
        )
        own.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created) == 1
    jobs = JobStore(db).list_jobs(JobFilter()).items
    assert len(jobs) == 1
    assert str(jobs[0].idempotency_key).startswith(f"schedule:{schedule_id}:")
    after = ScheduleStore(db).get(UUID(schedule_id))
    assert after.next_fire_at > datetime.now(UTC)
    assert after.last_job_id == jobs[0].id
    # Not due any more: a later sweep in the same slot creates nothing.
    assert fire(db, job_queue, services) == 0


def test_missed_window_runs_once(as_user, db, job_queue, services) -> None:
    schedule_id = _due_schedule(as_user, db)
    db.execute("UPDATE schedules SET next_fire_at = now() - interval '3 hours'")  # 36 slots missed
    assert fire(db, job_queue, services) == 1
    assert fire(db, job_queue, services) == 0
    next_fire = ScheduleStore(db).get(UUID(schedule_id)).next_fire_at
    assert datetime.now(UTC) < next_fire <= datetime.now(UTC) + timedelta(minutes=5)


def test_a_schedule_fires_only_while_its_owner_may_create_jobs(
    as_user, as_admin, db, job_queue, services
) -> None:
    # Disabled, or made a `worker` (which may not create jobs: 403 on POST /v1/jobs), the
    # owner's schedules wait; allowed again, they run once for what they missed.
    _due_schedule(as_user, db)
    me = as_user.get("/v1/auth/me").body["id"]
    assert as_admin.put(f"/v1/users/{me}/role", {"role": "worker"}).status == 200
    assert fire(db, job_queue, services) == 0
    assert as_admin.put(f"/v1/users/{me}/role", {"role": "user"}).status == 200
    assert fire(db, job_queue, services) == 1
    db.execute("UPDATE schedules SET next_fire_at = now() - interval '1 minute'")
    assert as_admin.patch(f"/v1/users/{me}", {"disabled": True}).status == 200
    assert fire(db, job_queue, services) == 0
    assert JobStore(db).count_unfinished(UUID(me)) == 1


def test_a_schedule_run_counts_against_its_owners_quota(as_user, db, job_queue, services) -> None:
    # Past the quota a create is 429; a schedule run is skipped (and logged) instead of
    # piling up unfinished jobs the quota exists to bound.
    schedule_id = _due_schedule(as_user, db)
    as_user.post("/v1/jobs", {"type": "noop"})
    sweeper = Sweeper(
        JobStore(db),
        job_queue,
        services.registry,
        SweepLimits(max_unfinished_jobs=1),
        schedules=ScheduleStore(db),
    )
    assert sweeper.run()[0].schedule_runs == 0
    assert len(JobStore(db).list_jobs(JobFilter()).items) == 1
    assert ScheduleStore(db).get(UUID(schedule_id)).next_fire_at > datetime.now(UTC)


def test_one_owners_many_due_schedules_do_not_hold_back_another_owners(
    as_user, as_other, db, job_queue, services
) -> None:
    # A run takes `limit` due schedules (the sweep's batch, 500 a minute in AWS). Taken by
    # fire time alone, an owner with more `* * * * *` schedules than that (each create is one
    # cheap request) filled every run: another owner's schedule, due a moment later, waited
    # behind all of them, minutes or hours late, every time.
    flood = {"cron": "* * * * *", "job": {"type": "noop"}}
    for index in range(4):
        as_other.post("/v1/schedules", {"name": f"flood {index}", **flood})
    db.execute("UPDATE schedules SET next_fire_at = now() - interval '5 minutes'")
    mine = as_user.post(
        "/v1/schedules", {"name": "mine", "cron": "* * * * *", "job": {"type": "noop"}}
    ).body["id"]
    db.execute(
        "UPDATE schedules SET next_fire_at = now() - interval '1 minute' WHERE id = %s", (mine,)
    )
    fired = fire_due(ScheduleStore(db), JobStore(db), job_queue, services.registry, limit=2)
    assert fired.created == 2
    owners = {job.owner_id for job in JobStore(db).list_jobs(JobFilter()).items}
    assert UUID(as_user.get("/v1/auth/me").body["id"]) in owners
    assert len(owners) == 2  # one run of each owner's earliest, then the flood's others


def test_the_sweep_fires_schedules(as_user, db, job_queue, services, sqs) -> None:
    _due_schedule(as_user, db)
    sweeper = Sweeper(
        JobStore(db), job_queue, services.registry, SweepLimits(), schedules=ScheduleStore(db)
    )
    assert sweeper.run()[0].schedule_runs == 1
    assert len(queue_messages(sqs, job_queue.queue_url("normal"))) == 1


@pytest.mark.parametrize(
    ("column", "corrupt"),
    [("cron", "61 * * * *"), ("cron", "every day at noon"), ("timezone", "Mars/Olympus_Mons")],
)
def test_a_schedule_that_no_longer_parses_is_disabled_and_the_others_fire(
    column, corrupt, as_user, db, job_queue, services, sqs, caplog
) -> None:
    def schedule(name: str) -> str:
        body = {"name": name, "cron": "*/5 * * * *", "job": {"type": "noop", "name": name}}
        return str(as_user.post("/v1/schedules", body).body["id"])

    good, bad = schedule("good"), schedule("bad")
    # Written behind the API's back (a hand edit, a restore): the API would refuse it.
    db.execute(f"UPDATE schedules SET {column} = %s WHERE id = %s", (corrupt, bad))
    # Both due, the bad one first: the sweep meets it before the good one.
    db.execute(
        "UPDATE schedules SET next_fire_at = date_trunc('minute', now()) - interval '2 minutes' "
        "- CASE WHEN id = %s THEN interval '1 minute' ELSE interval '0' END",
        (bad,),
    )
    sweeper = Sweeper(
        JobStore(db),
        job_queue,
        services.registry,
        SweepLimits(),
        schedules=ScheduleStore(db),
        logger=logging.getLogger("test.sweep"),
    )

    def bad_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "schedule_id", None) == bad]

    with caplog.at_level(logging.WARNING, logger="test.sweep"):
        report = sweeper.run()[0]
    assert (report.schedule_runs, report.schedules_disabled) == (1, 1)
    [job] = JobStore(db).list_jobs(JobFilter()).items
    assert job.name == "good"
    [message] = queue_messages(sqs, job_queue.queue_url("normal"))
    assert json.loads(message["Body"])["job_id"] == str(job.id)
    [line] = bad_lines()
    assert line.levelno == logging.ERROR
    assert line.__dict__[column] == corrupt

    # Its owner sees that it stopped, and why.
    shown = {s["id"]: s for s in as_user.get("/v1/schedules").body["items"]}
    assert shown[bad]["enabled"] is False
    assert corrupt in shown[bad]["error"]
    assert shown[bad]["error_at"] is not None
    assert shown[bad]["last_job_id"] is None
    assert as_user.get(f"/v1/schedules/{bad}").body["error"] == shown[bad]["error"]
    assert (shown[good]["enabled"], shown[good]["error"]) == (True, None)

    # Later sweeps leave it alone (no line, no job) and keep firing the good one.
    caplog.clear()
    db.execute(
        "UPDATE schedules SET next_fire_at = now() - interval '1 minute' WHERE id = %s", (good,)
    )
    with caplog.at_level(logging.WARNING, logger="test.sweep"):
        again = sweeper.run()[0]
    assert (again.schedule_runs, again.schedules_disabled) == (1, 0)
    assert bad_lines() == []


def test_a_schedule_disabled_by_the_sweep_then_repaired_by_hand_fires_without_its_error(
    as_user, db, job_queue, services
) -> None:
    schedule_id = _due_schedule(as_user, db)
    db.execute("UPDATE schedules SET timezone = 'Mars/Olympus_Mons' WHERE id = %s", (schedule_id,))
    fired = fire_due(ScheduleStore(db), JobStore(db), job_queue, services.registry, limit=10)
    assert (fired.created, fired.disabled) == (0, [UUID(schedule_id)])
    assert as_user.get(f"/v1/schedules/{schedule_id}").body["error"] is not None

    # The operator puts the row right (the zone back, enabled again), as they broke it.
    db.execute(
        "UPDATE schedules SET timezone = 'UTC', enabled = true, "
        "next_fire_at = date_trunc('minute', now()) - interval '2 minutes' WHERE id = %s",
        (schedule_id,),
    )
    assert fire(db, job_queue, services) == 1
    # It fires again: its owner no longer reads that it was disabled (null for a healthy one).
    shown = as_user.get(f"/v1/schedules/{schedule_id}").body
    assert shown["enabled"] is True
    assert shown["last_job_id"] is not None
    assert (shown["error"], shown["error_at"]) == (None, None)


# ---- DLQ ------------------------------------------------------------------------------


def test_a_letter_sent_again_says_when_its_job_failed(
    as_user, as_admin, deliver, job_queue, db
) -> None:
    """It said when the letter was sent: after a restart of the local stack (which sends
    every failed job's letter again) every letter showed the restart's time."""
    job_id = fail_to_dlq(as_user, deliver, "flaky")
    db.execute(
        "UPDATE jobs SET finished_at = finished_at - interval '1 hour' WHERE id = %s", (job_id,)
    )
    failed_at = as_user.get(f"/v1/jobs/{job_id}").body["finished_at"]
    job_queue.dead_letter_many(JobStore(db).get_many([UUID(job_id)]), "attempts_exhausted")
    items = as_admin.get("/v1/dlq/normal").body["items"]
    assert [i["dead_lettered_at"] for i in items] == [failed_at, failed_at]


def test_failed_job_is_redriven_through_the_api_and_runs_again(
    as_user, as_admin, deliver, sqs, job_queue, db
) -> None:
    job_id = fail_to_dlq(as_user, deliver, "flaky")  # fails its first attempt, then succeeds
    peek = as_admin.get("/v1/dlq/normal")
    assert peek.status == 200, peek.body
    [item] = peek.body["items"]
    assert item["job_id"] == job_id
    assert item["type"] == "flaky"
    assert item["last_error"] == "first attempt always fails"
    assert item["last_error_truncated"] is False
    assert item["problem"] is None
    assert peek.body["complete"] is True
    assert peek.body["failed_without_message"] == []
    assert item["dead_lettered_at"] == as_user.get(f"/v1/jobs/{job_id}").body["finished_at"]
    redrive = as_admin.post("/v1/dlq/normal/redrive", {})
    assert redrive.status == 200, redrive.body
    assert redrive.body["redriven"] == [job_id]
    assert depth(sqs, job_queue.dlq_url("normal")) == 0
    assert failures(deliver()) == []
    done = as_user.get(f"/v1/jobs/{job_id}").body
    assert done["status"] == "succeeded"
    assert done["redrive_count"] == 1
    assert (
        db.execute("SELECT count(*) AS n FROM audit_log WHERE action = 'dlq.redrive'")[0]["n"] == 1
    )


def test_an_admins_redrive_is_not_bound_by_the_owners_quota(
    as_user, as_admin, deliver, services, sqs, job_queue, db
) -> None:
    services.settings = services.settings.model_copy(update={"max_unfinished_jobs": 1})
    dead = fail_to_dlq(as_user, deliver)
    assert as_user.post("/v1/jobs", {"type": "noop", "delay_seconds": 3600}).status == 201
    # The owner at the limit cannot retry it (a retry counts like a create)...
    assert as_user.post(f"/v1/jobs/{dead}/retry").error_code == "quota_exceeded"
    # ...but an operator recovering dead letters is not held to the owner's quota.
    redrive = as_admin.post("/v1/dlq/normal/redrive", {})
    assert redrive.status == 200, redrive.body
    assert redrive.body["redriven"] == [dead]
    assert as_user.get(f"/v1/jobs/{dead}").body["status"] == "queued"
    # Nor is the manual requeue of failed jobs.
    assert failures(deliver()) == []
    failed_again = as_user.get(f"/v1/jobs/{dead}").body
    assert failed_again["status"] == "failed"
    db.execute("UPDATE jobs SET updated_at = now() - interval '10 minutes' WHERE id = %s", (dead,))
    requeued = as_admin.post("/v1/admin/requeue", {"status": "failed", "older_than_seconds": 300})
    assert requeued.body["requeued"] == [dead]


def test_selective_redrive_by_id_and_by_type_and_dry_run(
    as_user, as_admin, deliver, sqs, job_queue
) -> None:
    first = fail_to_dlq(as_user, deliver)
    second = fail_to_dlq(as_user, deliver)
    dry = as_admin.post("/v1/dlq/normal/redrive", {"job_ids": [first], "dry_run": True})
    assert dry.body["redriven"] == [first]
    assert dry.body["dry_run"] is True
    assert len(as_admin.get("/v1/dlq/normal").body["items"]) == 2  # nothing moved
    assert as_user.get(f"/v1/jobs/{first}").body["status"] == "failed"
    by_id = as_admin.post("/v1/dlq/normal/redrive", {"job_ids": [first]})
    assert by_id.body["redriven"] == [first]
    assert [i["job_id"] for i in as_admin.get("/v1/dlq/normal").body["items"]] == [second]
    assert as_admin.post("/v1/dlq/normal/redrive", {"type": "noop"}).body["redriven"] == []
    by_type = as_admin.post("/v1/dlq/normal/redrive", {"type": "fail"})
    assert by_type.body["redriven"] == [second]


def test_a_full_peek_of_dead_letters_with_long_errors_fits_in_one_lambda_response(
    as_user, as_admin, job_queue, store, db, services, sqs, queue_settings
) -> None:
    services.settings = services.settings.model_copy(update={"max_unfinished_jobs": 500})
    moto_fast.apply()  # as the local stack runs moto: a receive's cost does not grow with 500
    # SQS as AWS answers receives (moto answers every one with the same first ten).
    sampling = SamplingSqs(sqs)
    services.queue = JobQueue(queue_settings, client_factory=lambda: sampling)
    # 500 letters (the peek's largest page) whose jobs failed with 4,000-character errors of
    # characters JSON escapes to 12 bytes: whole, ~24 MB before Lambda's envelope, and API
    # Gateway would answer 5xx to every such peek.
    ids = [
        job["id"]
        for _ in range(5)
        for job in as_user.post("/v1/jobs/batch", {"jobs": [{"type": "noop"}] * 100}).body["items"]
    ]
    error = '\U0001f525 d\u00e9j\u00e0 "vu" ' * 500
    db.execute(
        "UPDATE jobs SET status = 'failed', attempts = 1, finished_at = now(), last_error = %s",
        (error[:4000],),
    )
    job_queue.dead_letter_many(store.get_many([UUID(i) for i in ids]), "attempts_exhausted")
    peek = as_admin.get("/v1/dlq/normal?limit=500")
    assert peek.status == 200, peek.body
    assert peek.envelope_bytes < 6 * 1024 * 1024
    # Every letter is listed, with what opening or redriving its job needs...
    assert sorted(item["job_id"] for item in peek.body["items"]) == sorted(ids)
    item = peek.body["items"][0]
    assert item["type"] == "noop"
    # ...and the start of its error; the job has the whole of it.
    assert item["last_error_truncated"] is True
    assert error.startswith(item["last_error"])
    assert as_admin.get(f"/v1/jobs/{item['job_id']}").body["last_error"] == error[:4000]


def test_redrive_of_a_job_deleted_meanwhile_reports_and_purges_the_orphan(
    as_user, as_admin, deliver, sqs, job_queue
) -> None:
    job_id = fail_to_dlq(as_user, deliver)
    assert as_user.delete(f"/v1/jobs/{job_id}").status == 204
    peek = as_admin.get("/v1/dlq/normal").body
    assert peek["items"][0]["problem"] == "job_missing"
    kept = as_admin.post("/v1/dlq/normal/redrive", {})
    assert kept.body["redriven"] == []
    assert len(kept.body["orphans"]) == 1
    assert depth(sqs, job_queue.dlq_url("normal")) == 1  # still there
    purged = as_admin.post("/v1/dlq/normal/redrive", {"purge_orphans": True})
    assert purged.body["purged"] == kept.body["orphans"]
    assert depth(sqs, job_queue.dlq_url("normal")) == 0


def test_reconciliation_reports_drift_both_ways(
    as_user, as_admin, deliver, sqs, job_queue, db
) -> None:
    retried = fail_to_dlq(as_user, deliver)
    lost = fail_to_dlq(as_user, deliver)
    # Retried by its owner: running again, yet its old message still sits in the DLQ.
    assert as_user.post(f"/v1/jobs/{retried}/retry").status == 200
    for message in sqs.receive_message(
        QueueUrl=job_queue.dlq_url("normal"), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]:
        if json.loads(message["Body"])["job_id"] == lost:
            sqs.delete_message(
                QueueUrl=job_queue.dlq_url("normal"), ReceiptHandle=message["ReceiptHandle"]
            )
        else:
            sqs.change_message_visibility(
                QueueUrl=job_queue.dlq_url("normal"),
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
    peek = as_admin.get("/v1/dlq/normal").body
    assert [(i["job_id"], i["problem"]) for i in peek["items"]] == [(retried, "job_not_failed")]
    assert peek["failed_without_message"] == [lost]


def test_dlq_routes_are_admin_only_and_validate_priority(as_user, as_admin) -> None:
    assert as_user.get("/v1/dlq/normal").status == 403
    assert as_user.post("/v1/dlq/normal/redrive", {}).status == 403
    assert as_admin.get("/v1/dlq/urgent").status == 400
    assert as_admin.post("/v1/dlq/normal/redrive", {"limit": 0}).status == 400


# ---- manual requeue -------------------------------------------------------------------


def test_admin_requeue_resends_stuck_and_failed_jobs(
    as_user, as_admin, deliver, sqs, job_queue, db
) -> None:
    stuck = as_user.post("/v1/jobs", {"type": "noop"}).body["id"]
    sqs.purge_queue(QueueUrl=job_queue.queue_url("normal"))  # its message is lost
    failed = fail_to_dlq(as_user, deliver)
    db.execute("UPDATE jobs SET updated_at = now() - interval '10 minutes'")
    dry = as_admin.post(
        "/v1/admin/requeue", {"status": "queued", "older_than_seconds": 300, "dry_run": True}
    )
    assert dry.body == {"requeued": [stuck], "dry_run": True}
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []
    assert as_admin.post("/v1/admin/requeue", {"status": "queued", "older_than_seconds": 300}).body[
        "requeued"
    ] == [stuck]
    assert as_admin.post("/v1/admin/requeue", {"status": "failed", "older_than_seconds": 300}).body[
        "requeued"
    ] == [failed]
    sent = sorted(
        json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, job_queue.queue_url("normal"))
    )
    assert sent == sorted([stuck, failed])
    assert JobStore(db).get(UUID(failed)).status is JobStatus.QUEUED
    assert (
        as_user.post("/v1/admin/requeue", {"status": "queued", "older_than_seconds": 0}).status
        == 403
    )
    actions = [r["action"] for r in db.execute("SELECT action FROM audit_log")]
    assert actions.count("admin.requeue") == 2


# ---- large redrives, asynchronously ---------------------------------------------------


class RecordingLauncher:
    def __init__(self) -> None:
        self.launched: list[Any] = []

    def launch(self, task_id: Any) -> None:
        self.launched.append(task_id)


class UnstartableLauncher:
    def launch(self, task_id: Any) -> None:
        from taskmill.errors import DependencyUnavailable

        raise DependencyUnavailable("the redrive function could not be started")


def test_a_redrive_whose_function_cannot_start_ends_failed_and_frees_its_dlq(
    as_user, as_admin, deliver, services
) -> None:
    fail_to_dlq(as_user, deliver)
    services.launcher = UnstartableLauncher()
    refused = as_admin.post("/v1/dlq/normal/redrive", {"background": True})
    assert refused.status == 503, refused.body
    assert refused.body["error"]["message"] == "the redrive function could not be started"
    [task] = services.db.execute("SELECT status, error FROM redrive_tasks")
    assert task == {"status": "failed", "error": "the redrive function could not be started"}
    services.launcher = RecordingLauncher()
    assert as_admin.post("/v1/dlq/normal/redrive", {"background": True}).status == 202


def test_large_redrive_runs_in_the_redrive_function_and_reports_progress(
    as_user, as_admin, deliver, services, job_queue, queue_env, database_url, monkeypatch, sqs
) -> None:
    import functions.retry.redrive as module

    failed = [fail_to_dlq(as_user, deliver) for _ in range(3)]
    launcher = RecordingLauncher()
    services.launcher = launcher
    started = as_admin.post("/v1/dlq/normal/redrive", {"limit": 1000})
    assert started.status == 202, started.body
    task_id = started.body["id"]
    assert launcher.launched == [UUID(task_id)]
    assert as_admin.get(f"/v1/dlq/redrives/{task_id}").body["status"] == "pending"

    # What the asynchronous Lambda invocation does, through the real handler.
    monkeypatch.setattr(module, "_collaborators", None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name, value in queue_env.items():
        monkeypatch.setenv(name, value)
    context: Any = FakeLambdaContext()
    outcome = module.handler({"task_id": task_id}, context)
    assert outcome["status"] == "done"
    assert outcome["redriven"] == 3
    progress = as_admin.get(f"/v1/dlq/redrives/{task_id}").body
    assert (progress["status"], progress["redriven"]) == ("done", 3)
    assert depth(sqs, job_queue.dlq_url("normal")) == 0
    assert {as_user.get(f"/v1/jobs/{j}").body["redrive_count"] for j in failed} == {1}
    # A duplicate invocation (Lambda's async retry) finds the task done and does nothing.
    assert module.handler({"task_id": task_id}, context)["redriven"] == 3


def test_local_redrive_runs_on_a_thread(
    as_user, as_admin, deliver, services, sqs, job_queue
) -> None:
    import time

    fail_to_dlq(as_user, deliver)
    started = as_admin.post("/v1/dlq/normal/redrive", {"background": True})
    assert started.status == 202
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        progress = as_admin.get(f"/v1/dlq/redrives/{started.body['id']}").body
        if progress["status"] == "done":
            break
        time.sleep(0.05)
    assert progress["status"] == "done"
    assert progress["redriven"] == 1


class FailsAgainAtOnce:
    """The job queue, with a worker racing the redrive: each job the redrive sends back runs
    (and fails, back into the DLQ) as soon as its old dead letter is deleted."""

    def __init__(self, queue: Any, deliver: Any) -> None:
        self.queue = queue
        self.deliver = deliver

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def delete_dead_letter(self, priority: Any, receipt_handle: str) -> None:
        self.queue.delete_dead_letter(priority, receipt_handle)
        self.deliver(priority.value)


def test_a_background_redrive_redrives_a_job_once_even_if_it_fails_again_meanwhile(
    as_user, as_admin, deliver, services, job_queue, db, sqs
) -> None:
    from taskmill.recovery.redrive_tasks import run_task

    job_id = fail_to_dlq(as_user, deliver)
    services.launcher = RecordingLauncher()
    started = as_admin.post("/v1/dlq/normal/redrive", {"background": True, "limit": 1000})
    assert started.status == 202, started.body
    task = run_task(
        db,
        cast(JobQueue, FailsAgainAtOnce(job_queue, deliver)),
        services.registry,
        UUID(started.body["id"]),
    )
    assert (task.status, task.redriven) == ("done", 1)
    job = as_user.get(f"/v1/jobs/{job_id}").body
    assert (job["status"], job["redrive_count"]) == ("failed", 1)
    # Failed again after its redrive: its new dead letter waits for the next one.
    assert depth(sqs, job_queue.dlq_url("normal")) == 1


def test_a_second_background_redrive_of_a_priority_waits_for_the_first(
    as_user, as_admin, deliver, services, job_queue, db, sqs
) -> None:
    """A task keeps the DLQ messages it passes over hidden until it ends (up to 15 minutes
    after its last chunk). A second task on the same DLQ meanwhile would not see them and
    end `done` having redriven nothing while they wait there; it is refused instead (409
    naming the running task), until that task ends or has made no progress for longer than
    its messages stay hidden (its function died)."""
    from taskmill.recovery import dlq
    from taskmill.recovery.redrive_tasks import PASS_OVER_SECONDS, RedriveTaskStore, run_task
    from taskmill.topology import Priority

    job_id = fail_to_dlq(as_user, deliver)
    services.launcher = RecordingLauncher()
    first = as_admin.post("/v1/dlq/normal/redrive", {"background": True, "type": "other"})
    assert first.status == 202, first.body
    tasks = RedriveTaskStore(db)
    # Its first chunk (as its function would run it): the job, not of its type, is passed
    # over and hidden.
    chunk = dlq.redrive(
        services.outcomes,
        Priority.NORMAL,
        actor="redrive-task",
        job_type="other",
        pass_over_seconds=PASS_OVER_SECONDS,
    )
    second = as_admin.post("/v1/dlq/normal/redrive", {"background": True})
    assert second.status == 409, second.body
    assert second.body["error"]["code"] == "conflict"
    assert second.body["error"]["details"] == {"task_id": first.body["id"]}
    assert f"/v1/dlq/redrives/{first.body['id']}" in second.body["error"]["message"]
    # Another priority's DLQ is not held.
    assert as_admin.post("/v1/dlq/high/redrive", {"background": True}).status == 202
    assert list(chunk.passed_over)
    assert chunk.redriven == []
    # The first ends, releasing what it hid: the next task finds and redrives the job.
    job_queue.hide_dead_letters(Priority.NORMAL, list(chunk.passed_over.values()), 0)
    tasks.finish(UUID(first.body["id"]))
    third = as_admin.post("/v1/dlq/normal/redrive", {"background": True})
    assert third.status == 202, third.body
    task = run_task(db, job_queue, services.registry, UUID(third.body["id"]))
    assert (task.status, task.redriven) == ("done", 1)
    assert as_user.get(f"/v1/jobs/{job_id}").body["redrive_count"] == 1
    # A task whose function died (no progress for longer than its holds) blocks no one.
    stuck = as_admin.post("/v1/dlq/normal/redrive", {"background": True})
    assert tasks.start(UUID(stuck.body["id"])) is not None
    assert as_admin.post("/v1/dlq/normal/redrive", {"background": True}).status == 409
    db.execute(
        "UPDATE redrive_tasks SET updated_at = now() - make_interval(secs => %s) WHERE id = %s",
        (PASS_OVER_SECONDS + 1, stuck.body["id"]),
    )
    assert as_admin.post("/v1/dlq/normal/redrive", {"background": True}).status == 202


def test_the_sweep_marks_a_background_redrive_whose_function_died_failed(
    as_admin, services, job_queue, db, caplog
) -> None:
    """A task records progress after every chunk and its function runs 15 minutes at most:
    one with no progress for longer has no function left. The sweep says so on its row, which
    otherwise would read `running` (or `pending`, if its function never started) for ever."""
    from taskmill.recovery.redrive_tasks import PASS_OVER_SECONDS, RedriveTaskStore

    tasks = RedriveTaskStore(db)
    services.launcher = RecordingLauncher()
    running = UUID(as_admin.post("/v1/dlq/normal/redrive", {"background": True}).body["id"])
    assert tasks.start(running) is not None
    never_started = UUID(as_admin.post("/v1/dlq/high/redrive", {"background": True}).body["id"])
    alive = UUID(as_admin.post("/v1/dlq/low/redrive", {"background": True}).body["id"])
    assert tasks.start(alive) is not None
    db.execute(
        "UPDATE redrive_tasks SET updated_at = now() - make_interval(secs => %s) "
        "WHERE id = ANY (%s)",
        (PASS_OVER_SECONDS + 1, [running, never_started]),
    )
    sweeper = Sweeper(
        JobStore(db),
        job_queue,
        services.registry,
        SweepLimits(),
        redrive_tasks=tasks,
        logger=logging.getLogger("test.sweep"),
    )

    with caplog.at_level(logging.WARNING, logger="test.sweep"):
        assert sweeper.run()[0].redrives_abandoned == 2
        assert sweeper.run()[0].redrives_abandoned == 0  # once

    for task_id in (running, never_started):
        seen = as_admin.get(f"/v1/dlq/redrives/{task_id}").body
        assert seen["status"] == "failed"
        assert "no progress for 15 minutes" in seen["error"]
        assert seen["finished_at"] is not None
    assert as_admin.get(f"/v1/dlq/redrives/{alive}").body["status"] == "running"
    [line] = [r for r in caplog.records if getattr(r, "task_ids", None)]
    assert sorted(line.task_ids) == sorted([str(running), str(never_started)])
    # The priority is free for a new task.
    assert as_admin.post("/v1/dlq/normal/redrive", {"background": True}).status == 202


def test_a_redrive_in_the_request_waits_for_a_background_one_of_its_priority(
    as_user, as_admin, deliver, services, db
) -> None:
    """The messages a live task has hidden are invisible to a redrive in the request, which
    would report their jobs as without a message: it is refused like a second task (a dry
    run, which changes nothing, still answers)."""
    from taskmill.recovery.redrive_tasks import RedriveTaskStore

    job_id = fail_to_dlq(as_user, deliver)
    services.launcher = RecordingLauncher()
    task = as_admin.post("/v1/dlq/normal/redrive", {"background": True}).body["id"]

    refused = as_admin.post("/v1/dlq/normal/redrive", {"job_ids": [job_id]})
    assert refused.status == 409, refused.body
    assert refused.body["error"]["code"] == "conflict"
    assert refused.body["error"]["details"] == {"task_id": task}
    assert f"/v1/dlq/redrives/{task}" in refused.body["error"]["message"]
    dry = as_admin.post("/v1/dlq/normal/redrive", {"job_ids": [job_id], "dry_run": True})
    assert dry.status == 200, dry.body
    assert as_admin.post("/v1/dlq/high/redrive", {}).status == 200  # another DLQ
    assert as_user.get(f"/v1/jobs/{job_id}").body["redrive_count"] == 0

    RedriveTaskStore(db).finish(UUID(task))
    done = as_admin.post("/v1/dlq/normal/redrive", {"job_ids": [job_id]})
    assert done.status == 200, done.body
    assert as_user.get(f"/v1/jobs/{job_id}").body["redrive_count"] == 1


def test_a_peek_while_a_background_redrive_runs_says_what_it_cannot_see(
    as_user, as_admin, deliver, services, job_queue, db
) -> None:
    """A running task keeps the messages it passed over hidden: a peek then reads to the end
    of what the DLQ shows without having seen them, so it does not call itself complete nor
    list their jobs as failed without a message; it names the task instead (as a dry run
    does). Once the task has ended and the messages show again, it reconciles as before."""
    from taskmill.recovery.redrive_tasks import RedriveTaskStore

    shown = fail_to_dlq(as_user, deliver)
    passed_over = fail_to_dlq(as_user, deliver)
    services.launcher = RecordingLauncher()
    task = as_admin.post("/v1/dlq/normal/redrive", {"background": True}).body["id"]
    # What the task does with a message it passes over.
    handles = {
        json.loads(message.body)["job_id"]: message.receipt_handle
        for message in job_queue.receive_dead_letters(Priority.NORMAL, visibility_seconds=0)
    }
    job_queue.hide_dead_letters(Priority.NORMAL, [handles[passed_over]], 900)

    peek = as_admin.get("/v1/dlq/normal").body
    assert [item["job_id"] for item in peek["items"]] == [shown]
    assert (peek["complete"], peek["failed_without_message"]) == (False, [])
    assert peek["redrive_task_id"] == task
    dry = as_admin.post("/v1/dlq/normal/redrive", {"dry_run": True}).body
    assert (dry["redriven"], dry["redrive_task_id"]) == ([shown], task)
    assert as_admin.get("/v1/dlq/high").body["redrive_task_id"] is None  # another DLQ

    RedriveTaskStore(db).finish(UUID(task))
    job_queue.hide_dead_letters(Priority.NORMAL, [handles[passed_over]], 0)
    peek = as_admin.get("/v1/dlq/normal").body
    assert sorted(item["job_id"] for item in peek["items"]) == sorted([shown, passed_over])
    assert (peek["complete"], peek["failed_without_message"]) == (True, [])
    assert peek["redrive_task_id"] is None
    assert (
        as_admin.post("/v1/dlq/normal/redrive", {"dry_run": True}).body["redrive_task_id"] is None
    )


@pytest.mark.parametrize(
    "template",
    [
        {"type": "noop", "payload": {}, "retries": 3},  # a field no job has
        {"type": "noop", "payload": {}, "priority": "urgent"},
        {"type": "noop", "payload": {}, "delay_seconds": "60"},
        # Not an object at all: the schedule's row failed to load, so did every due one.
        [{"type": "noop", "payload": {}}],
        "noop",
        None,
    ],
)
def test_a_stored_template_that_no_longer_fits_skips_its_slot_only(
    as_user, db, job_queue, services, template, caplog
) -> None:
    """A template changed behind the API's back (a hand edit, a restore) raised TypeError or
    pydantic's ValidationError out of `fire_due`, the sweep's first step: every run failed
    there, so nothing else was recovered (leases, sends, waiting jobs) while the row stayed.
    Like a template whose type was removed, its slot is skipped and logged."""
    broken = _due_schedule(as_user, db)
    healthy = _due_schedule(as_user, db)
    db.execute("UPDATE schedules SET job_template = %s WHERE id = %s", (Jsonb(template), broken))
    assert fire(db, job_queue, services) == 1  # the healthy one
    assert ScheduleStore(db).get(UUID(broken)).next_fire_at > datetime.now(UTC)
    assert ScheduleStore(db).get(UUID(healthy)).last_job_id is not None
    assert "schedule could not create its job" in caplog.text
