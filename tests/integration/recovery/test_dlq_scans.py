"""Peeks and redrives of a DLQ of many letters on SQS that samples its servers, as AWS's
does (`tests.support.sqs_sampling`): what an admin sees through the API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from botocore.exceptions import ClientError
from taskmill.queue.sqs import JobQueue

from tests.support.sqs_sampling import SamplingSqs

LETTERS = 150


def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, not visible) messages on a queue, without receiving."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def failed_jobs(as_user: Any, db: Any, services: Any, count: int) -> list[str]:
    services.settings = services.settings.model_copy(update={"max_unfinished_jobs": 1000})
    ids = [
        job["id"]
        for start in range(0, count, 100)
        for job in as_user.post(
            "/v1/jobs/batch", {"jobs": [{"type": "noop"}] * min(100, count - start)}
        ).body["items"]
    ]
    db.execute(
        "UPDATE jobs SET status = 'failed', attempts = 1, finished_at = now(), "
        "last_error = 'boom' WHERE id = ANY (%s)",
        ([UUID(i) for i in ids],),
    )
    return ids


@pytest.fixture
def sampling(services: Any, sqs: Any, queue_settings: Any) -> SamplingSqs:
    """The API's queue on SQS that answers receives as AWS does."""
    client = SamplingSqs(sqs, seed=7)
    services.queue = JobQueue(queue_settings, client_factory=lambda: client)
    return client


@pytest.fixture
def letters(as_user, db, services, store, job_queue, sampling) -> list[str]:
    """`LETTERS` failed jobs, each with its letter in the normal DLQ."""
    ids = failed_jobs(as_user, db, services, LETTERS)
    job_queue.dead_letter_many(store.get_many([UUID(i) for i in ids]), "attempts_exhausted")
    return ids


def test_the_double_answers_short_polls_with_samples_and_long_polls_with_what_is_visible(
    sqs, job_queue, letters
) -> None:
    """What the peek must cope with, which moto alone hides: a short poll with a zero
    visibility timeout answers empty now and then while every letter is visible, and hands
    out the same letters again; a long poll answers empty only when nothing is visible."""
    client = SamplingSqs(sqs, seed=1)
    url = job_queue.dlq_url("normal")
    short = [
        [
            m["MessageId"]
            for m in client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            ).get("Messages", [])
        ]
        for _ in range(40)
    ]
    assert [] in short
    assert len({i for answer in short for i in answer}) < sum(len(answer) for answer in short)
    seen: set[str] = set()
    while True:
        answer = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=1
        ).get("Messages", [])
        if not answer:
            break
        seen.update(m["MessageId"] for m in answer)
    assert len(seen) == LETTERS


def test_a_peek_lists_every_letter_and_reconciles_only_what_has_none(
    as_user, as_admin, db, services, sqs, job_queue, letters, sampling
) -> None:
    without = failed_jobs(as_user, db, services, 2)  # failed jobs whose letter is gone
    services.queue.calls = 0

    peek = as_admin.get("/v1/dlq/normal?limit=500")

    assert peek.status == 200, peek.body
    assert sorted(item["job_id"] for item in peek.body["items"]) == sorted(letters)
    assert peek.body["complete"] is True
    assert sorted(peek.body["failed_without_message"]) == sorted(without)
    # Every letter is visible again for the next peek or redrive...
    assert counts(sqs, job_queue.dlq_url("normal")) == (LETTERS, 0)
    # ...in a bounded number of SQS calls: receives of ten, one that finds nothing more,
    # the count, and showing the letters again ten at a time.
    print(f"SQS calls for a peek of {LETTERS}: {services.queue.calls}")
    assert services.queue.calls <= 2 * (LETTERS // 10 + 1) + 1 + LETTERS // 10
    again = as_admin.get("/v1/dlq/normal?limit=500").body
    assert len(again["items"]) == LETTERS
    assert sorted(again["failed_without_message"]) == sorted(without)


def test_a_peek_of_part_of_a_dlq_is_not_complete_and_lists_nothing_missing(
    as_admin, sqs, job_queue, letters
) -> None:
    peek = as_admin.get("/v1/dlq/normal?limit=100").body
    assert len({item["job_id"] for item in peek["items"]}) == 100
    assert set(item["job_id"] for item in peek["items"]) <= set(letters)
    assert (peek["complete"], peek["failed_without_message"]) == (False, [])
    assert counts(sqs, job_queue.dlq_url("normal")) == (LETTERS, 0)


def test_a_peek_whose_limit_is_exactly_the_dlq_is_complete(
    as_user, as_admin, db, services, sqs, job_queue, letters
) -> None:
    """It read `limit` letters and stopped, so it could not tell a DLQ of exactly that many
    from a larger one and said not complete."""
    without = failed_jobs(as_user, db, services, 1)
    peek = as_admin.get(f"/v1/dlq/normal?limit={LETTERS}").body
    assert sorted(item["job_id"] for item in peek["items"]) == sorted(letters)
    assert (peek["complete"], peek["failed_without_message"]) == (True, without)
    assert counts(sqs, job_queue.dlq_url("normal")) == (LETTERS, 0)

    one_short = as_admin.get(f"/v1/dlq/normal?limit={LETTERS - 1}").body
    assert len({item["job_id"] for item in one_short["items"]}) == LETTERS - 1
    assert (one_short["complete"], one_short["failed_without_message"]) == (False, [])
    # The letter past the limit it met was shown again with the others.
    assert counts(sqs, job_queue.dlq_url("normal")) == (LETTERS, 0)


def test_a_peek_that_cannot_see_letters_held_elsewhere_is_not_complete(
    as_admin, sqs, job_queue, letters
) -> None:
    """Letters another peek or redrive holds are counted by SQS but not visible: the peek
    reads to the end of what it can see and does not take their jobs for jobs without one."""
    url = job_queue.dlq_url("normal")
    held = [
        m["MessageId"]
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)[
            "Messages"
        ]
    ]
    peek = as_admin.get("/v1/dlq/normal?limit=500").body
    assert len(peek["items"]) == LETTERS - len(held)
    assert not {item["message_id"] for item in peek["items"]} & set(held)
    assert (peek["complete"], peek["failed_without_message"]) == (False, [])
    assert counts(sqs, url) == (LETTERS - len(held), len(held))


class FailsAt:
    """SQS answering `operation` with an error from its `after`-th call on."""

    def __init__(self, client: Any, operation: str, after: int) -> None:
        self._client = client
        self._operation = operation
        self._after = after
        self._calls = 0

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name != self._operation:
            return call

        def failing(**kwargs: Any) -> Any:
            self._calls += 1
            if self._calls >= self._after:
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, name
                )
            return call(**kwargs)

        return failing


@pytest.mark.parametrize("operation", ["receive_message", "get_queue_attributes"])
def test_a_peek_that_fails_shows_what_it_read_again(
    as_admin, services, sqs, job_queue, queue_settings, letters, sampling, operation
) -> None:
    failing = FailsAt(sampling, operation, after=4 if operation == "receive_message" else 1)
    services.queue = JobQueue(queue_settings, client_factory=lambda: failing)
    peek = as_admin.get("/v1/dlq/normal?limit=500")
    assert peek.status == 503, peek.body
    assert peek.body["error"]["code"] == "dependency_unavailable"
    assert counts(sqs, job_queue.dlq_url("normal")) == (LETTERS, 0)


def test_a_redrive_reads_past_what_a_short_poll_would_miss(
    as_user, as_admin, sqs, job_queue, letters
) -> None:
    first = as_admin.post("/v1/dlq/normal/redrive", {"limit": 100})
    assert first.status == 200, first.body
    assert len(first.body["redriven"]) == 100
    # The letters it did not redrive are shown again at once, not held for a minute.
    assert counts(sqs, job_queue.dlq_url("normal")) == (LETTERS - 100, 0)
    second = as_admin.post("/v1/dlq/normal/redrive", {"limit": 100}).body
    assert sorted(first.body["redriven"] + second["redriven"]) == sorted(letters)
    assert counts(sqs, job_queue.dlq_url("normal")) == (0, 0)
    peek = as_admin.get("/v1/dlq/normal").body
    assert (peek["items"], peek["complete"], peek["failed_without_message"]) == ([], True, [])


class DuringScan:
    """SQS on which `action` happens just before the `at`-th receive (a worker or an owner
    acting while the peek reads)."""

    def __init__(self, client: Any, at: int, action: Any) -> None:
        self._client = client
        self._at = at
        self._action = action
        self._receives = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def receive_message(self, **kwargs: Any) -> Any:
        self._receives += 1
        if self._receives == self._at:
            self._action()
        return self._client.receive_message(**kwargs)


def test_a_job_that_fails_or_is_retried_while_a_peek_reads_is_not_listed_missing(
    as_user, as_admin, db, services, queue_settings, letters, sampling
) -> None:
    """A job that fails while the peek reads has its letter on the way, after the peek has
    passed; one retried meanwhile has no letter because it runs again. Neither is a failed
    job without a letter; a job whose letter was lost all along is."""
    lost, retried = failed_jobs(as_user, db, services, 2)
    failing = as_user.post("/v1/jobs", {"type": "noop"}).body["id"]

    def meanwhile() -> None:
        db.execute(
            "UPDATE jobs SET status = 'queued', finished_at = NULL WHERE id = %s", (retried,)
        )
        db.execute(
            "UPDATE jobs SET status = 'failed', attempts = 1, finished_at = now() WHERE id = %s",
            (failing,),
        )

    client = DuringScan(sampling, at=5, action=meanwhile)
    services.queue = JobQueue(queue_settings, client_factory=lambda: client)
    peek = as_admin.get("/v1/dlq/normal?limit=500").body
    assert len(peek["items"]) == LETTERS
    assert (peek["complete"], peek["failed_without_message"]) == (True, [lost])
