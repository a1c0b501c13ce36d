"""`PATCH /v1/jobs/{id}` changing `priority` sends the job a message on its new queue; SQS
cannot take back the one on its old queue. The job runs from its new queue only: the old
message, whichever comes first, is acknowledged without running it."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from uuid import UUID

import psycopg
import pytest
from taskmill.db import Database
from taskmill.jobs.store import Claim, JobStore
from taskmill.lifecycle.sending import send_pending

from tests.integration.worker.conftest import queue_messages
from tests.support.lambda_events import receive_event


def test_the_old_queue_message_does_not_run_a_job_moved_to_another_priority(
    as_user, deliver, sqs, job_queue, calls
) -> None:
    job = as_user.post("/v1/jobs", {"type": "counted", "priority": "low"}).body
    edited = as_user.patch(f"/v1/jobs/{job['id']}", {"priority": "high"})
    assert (edited.status, edited.body["priority"]) == (200, "high")

    # The old message is there first (the low queue is idle, say): acknowledged, not run.
    low = receive_event(sqs, job_queue.queue_url("low"))
    assert [json.loads(r["body"])["job_id"] for r in low["Records"]] == [job["id"]]
    assert deliver(event=low)["batchItemFailures"] == []
    seen = as_user.get(f"/v1/jobs/{job['id']}").body
    assert (seen["status"], seen["attempts"]) == ("queued", 0)
    assert queue_messages(sqs, job_queue.queue_url("low")) == []  # not delivered again

    # The new one runs it.
    assert deliver("high")["batchItemFailures"] == []
    done = as_user.get(f"/v1/jobs/{job['id']}").body
    assert (done["status"], done["attempts"]) == ("succeeded", 1)
    assert calls.count == 1


def test_a_claim_waiting_on_a_priority_change_sees_the_new_priority(
    database_url: str, as_user: Any
) -> None:
    """Two real connections: the PATCH's update holds the row when a low-queue claim reaches
    it. The claim waits for the lock and then refuses the job, which is now `high`."""
    job_id = UUID(as_user.post("/v1/jobs", {"type": "counted", "priority": "low"}).body["id"])
    claimer = Database(database_url, application_name="racing-claim")
    try:
        # pg_stat_activity is read from a connection of its own: a transaction sees one
        # snapshot of it.
        with (
            psycopg.connect(database_url) as patch,
            psycopg.connect(database_url, autocommit=True) as watch,
        ):
            patch.execute("UPDATE jobs SET priority = 'high' WHERE id = %s", (job_id,))
            claims: list[Claim] = []
            thread = threading.Thread(
                target=lambda: claims.append(
                    JobStore(claimer).claim_batch([job_id], queues=["low"])
                )
            )
            thread.start()
            while (
                thread.is_alive()
                and not watch.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'racing-claim' "
                    "AND wait_event_type = 'Lock'"
                ).fetchall()
            ):
                time.sleep(0.01)  # until the claim waits on the row
            patch.commit()
        thread.join()
        assert (claims[0].claimed, claims[0].held) == ([], [])
        seen = as_user.get(f"/v1/jobs/{job_id}").body
        assert (seen["status"], seen["priority"], seen["attempts"]) == ("queued", "high", 0)
    finally:
        claimer.close()


@pytest.mark.parametrize("admission", [False, True], ids=["fast claim", "admission claim"])
def test_both_claims_refuse_a_message_from_the_old_queue(
    database_url: str, as_user: Any, as_admin: Any, admission: bool
) -> None:
    """The claim that applies limits (a key with a limit, or the last batch had one) too."""
    assert as_admin.put("/v1/limits/crm", {"concurrency": 5}).status == 200
    spec = {"type": "counted", "priority": "low", "limit_keys": ["crm"]}
    job_id = UUID(as_user.post("/v1/jobs", spec).body["id"])
    assert as_user.patch(f"/v1/jobs/{job_id}", {"priority": "high"}).status == 200
    db = Database(database_url)
    try:
        store = JobStore(db)
        old = store.claim_batch([job_id], queues=["low"], expect_limits=admission)
        assert (old.claimed, old.held) == ([], [])
        new = store.claim_batch([job_id], queues=["high"], expect_limits=admission)
        assert [job.id for job in new.claimed] == [job_id]
    finally:
        db.close()


def test_a_claim_from_the_jobs_own_queue_still_runs_it(database_url: str, as_user: Any) -> None:
    job_id = UUID(as_user.post("/v1/jobs", {"type": "counted", "priority": "low"}).body["id"])
    db = Database(database_url)
    try:
        claim = JobStore(db).claim_batch([job_id], queues=["low"])
        assert [job.id for job in claim.claimed] == [job_id]
    finally:
        db.close()


def test_a_batch_of_messages_from_several_queues_is_claimed_by_each_ones_queue(
    database_url: str, as_user: Any, as_admin: Any
) -> None:
    """`claim_batch` takes a queue per id. A job the fast claim leaves to the admission claim
    (a key with a limit) is checked against its own message's queue there too."""
    assert as_admin.put("/v1/limits/crm", {"concurrency": 5}).status == 200
    plain = UUID(as_user.post("/v1/jobs", {"type": "counted", "priority": "high"}).body["id"])
    spec = {"type": "counted", "priority": "low", "limit_keys": ["crm"]}
    limited = UUID(as_user.post("/v1/jobs", spec).body["id"])
    db = Database(database_url)
    try:
        claim = JobStore(db).claim_batch([plain, limited], queues=["high", "low"])
        assert {job.id for job in claim.claimed} == {plain, limited}
    finally:
        db.close()


def test_a_send_from_before_a_priority_change_leaves_the_new_queues_mark(
    database_url: str, as_user: Any, sqs: Any, job_queue: Any
) -> None:
    """A sender working from the row as it was (e.g. the create's own send, or the sweep's)
    sends on the old queue while a PATCH moves the job and its own send fails: clearing the
    "to be sent" mark for that old-queue message would leave the job with none the claim
    accepts. The mark stays, so the sweep sends it on the new queue."""
    job_id = UUID(as_user.post("/v1/jobs", {"type": "counted", "priority": "low"}).body["id"])
    db = Database(database_url)
    try:
        store = JobStore(db)
        db.execute("UPDATE jobs SET send_pending = true WHERE id = %s", (job_id,))
        as_it_was = store.get(job_id)  # low, to be sent
        # The PATCH commits; suppose its send to the high queue failed (the mark is its own).
        db.execute(
            "UPDATE jobs SET priority = 'high', send_pending = true WHERE id = %s", (job_id,)
        )
        assert send_pending(store, job_queue, [as_it_was]) == [job_id]  # sent on low
        low = queue_messages(sqs, job_queue.queue_url("low"))  # the create's, and this one
        assert {json.loads(m["Body"])["job_id"] for m in low} == {str(job_id)}
        assert store.get(job_id).send_pending  # still owed a message on high
    finally:
        db.close()
