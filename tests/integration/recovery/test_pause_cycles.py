"""Quick pause/resume cycles: each job keeps one held message, not one more per cycle, and
never none (SPEC §6)."""

from __future__ import annotations

from typing import Any

from taskmill.db import Database
from taskmill.flow.pauses import PauseKind, PauseStore
from taskmill.jobs.store import JobStore

from tests.support.factories import create_job, make_user


def depth(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesDelayed"]),
    )


def test_pause_resume_cycles_do_not_pile_up_delayed_messages(
    as_user, as_admin, deliver, sqs, job_queue, calls
) -> None:
    url = job_queue.queue_url("normal")
    jobs = [as_user.post("/v1/jobs", {"type": "counted"}).body["id"] for _ in range(3)]
    assert as_admin.post("/v1/job-types/counted/pause").status == 200
    assert deliver()["batchItemFailures"] == []  # held: each gets a delayed message
    assert depth(sqs, url) == (0, 3)

    for _ in range(5):
        assert as_admin.post("/v1/job-types/counted/resume").status == 200
        assert depth(sqs, url) == (3, 3)  # re-sent at once; the held ones still on their way
        assert as_admin.post("/v1/job-types/counted/pause").status == 200
        # Delivered while paused again: acknowledged, no new delayed message.
        assert deliver()["batchItemFailures"] == []
        assert depth(sqs, url) == (0, 3)

    assert as_admin.post("/v1/job-types/counted/resume").status == 200
    assert deliver()["batchItemFailures"] == []
    assert [as_user.get(f"/v1/jobs/{j}").body["status"] for j in jobs] == ["succeeded"] * 3
    assert calls.count == 3


def test_a_resume_resends_only_jobs_whose_message_is_held(
    as_user, as_admin, sqs, job_queue
) -> None:
    """A job whose message has not come up during the pause still has it on the queue."""
    url = job_queue.queue_url("normal")
    as_user.post("/v1/jobs", {"type": "counted"})
    assert as_admin.post("/v1/job-types/counted/pause").status == 200
    assert as_admin.post("/v1/job-types/counted/resume").status == 200
    assert depth(sqs, url) == (1, 0)


def test_a_held_job_is_held_again_when_its_message_comes_back(db: Database) -> None:
    """The store's side: a paused job's own held message, back when due, is held again (a
    new delayed message); another of its messages meanwhile is not."""
    store = JobStore(db)
    job = create_job(store, make_user(db), type="counted")
    PauseStore(db).pause(PauseKind.TYPE, "counted", actor="test")

    first = store.claim_batch([job.id])
    assert [(h.job.id, h.reason) for h in first.held] == [(job.id, "paused")]
    again = store.claim_batch([job.id])  # a duplicate while the held one is on its way
    assert (again.claimed, again.held) == ([], [])
    # The held message comes back when due (SQS's delay, PAUSE_HOLD_SECONDS).
    db.execute("UPDATE jobs SET held_until = now() WHERE id = %s", (job.id,))
    back = store.claim_batch([job.id], expect_limits=True)  # the admission claim alike
    assert [(h.job.id, h.reason) for h in back.held] == [(job.id, "paused")]
    assert store.claim_batch([job.id], expect_limits=True).held == []


def test_a_held_job_moved_to_another_priority_is_held_on_its_new_queue(
    as_user, as_admin, deliver, sqs, job_queue
) -> None:
    """PATCH sends the job a message on its new queue; the one its pause held is on the old
    queue, where the claim will drop it (the job's priority changed). So the new message,
    delivered while still paused, is the job's only one: it must be held, not dropped."""
    job = as_user.post("/v1/jobs", {"type": "counted"}).body
    assert as_admin.post("/v1/job-types/counted/pause").status == 200
    assert deliver()["batchItemFailures"] == []
    assert depth(sqs, job_queue.queue_url("normal")) == (0, 1)  # held, on the old queue

    assert as_user.patch(f"/v1/jobs/{job['id']}", {"priority": "high"}).status == 200
    assert deliver("high")["batchItemFailures"] == []
    assert depth(sqs, job_queue.queue_url("high")) == (0, 1)  # held again, where it runs


def test_a_restarted_empty_queue_has_the_paused_job_held_again(db: Database) -> None:
    """The local stack's SQS starts empty: a held message is gone with it. The job's message
    sent again at start, delivered while still paused, must be held, not dropped."""
    store = JobStore(db)
    job = create_job(store, make_user(db), type="counted")
    PauseStore(db).pause(PauseKind.TYPE, "counted", actor="test")
    assert [h.reason for h in store.claim_batch([job.id]).held] == ["paused"]

    store.mark_queued_to_send()  # the local stack's start, its SQS empty
    again = store.claim_batch([job.id])
    assert [(h.job.id, h.reason) for h in again.held] == [(job.id, "paused")]
