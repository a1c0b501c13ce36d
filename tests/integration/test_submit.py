from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from taskmill.db import Database
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.lifecycle.submit import JobRequest, submit
from taskmill.queue.sqs import JobQueue
from taskmill.settings import JobTypeSettings


def _user(db: Database) -> Any:
    user_id = uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'x')",
        (user_id, f"{user_id}@example.com"),
    )
    return user_id


def test_submitted_job_is_sent_to_its_priority_queue(
    db: Database, job_queue: JobQueue, sqs
) -> None:
    store = JobStore(db)
    owner = _user(db)
    registry = build_registry(JobTypeSettings())
    [result] = submit(
        store,
        job_queue,
        registry,
        owner,
        [JobRequest(type="noop", payload={}, priority="high")],
        actor="test",
    )
    assert result.created
    assert not store.get(result.job.id).send_pending
    messages = sqs.receive_message(
        QueueUrl=job_queue.queue_url("high"), MessageAttributeNames=["All"]
    )["Messages"]
    assert json.loads(messages[0]["Body"]) == {"job_id": str(result.job.id), "v": 1}
    assert messages[0]["MessageAttributes"]["job_type"]["StringValue"] == "noop"


def test_job_stays_marked_for_the_sweep_when_sqs_fails(db: Database, queue_settings) -> None:
    from botocore.exceptions import EndpointConnectionError

    class BrokenSqs:
        def send_message_batch(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://sqs.invalid")

    store = JobStore(db)
    owner = _user(db)
    queue = JobQueue(queue_settings, client_factory=BrokenSqs)
    [result] = submit(
        store,
        queue,
        build_registry(JobTypeSettings()),
        owner,
        [JobRequest(type="noop", payload={})],
        actor="test",
    )
    stored = store.get(result.job.id)
    assert stored.status == "queued"
    assert stored.send_pending


def test_after_a_failed_call_the_rest_wait_for_the_sweep(db: Database, queue_settings) -> None:
    """A brownout costs one call's worth of time, not one per ten jobs."""
    from botocore.exceptions import ReadTimeoutError

    calls: list[int] = []

    class SlowSqs:
        def send_message_batch(self, **entries: Any) -> Any:
            calls.append(len(entries["Entries"]))
            raise ReadTimeoutError(endpoint_url="http://sqs.invalid")

    store = JobStore(db)
    queue = JobQueue(queue_settings, client_factory=SlowSqs)
    results = submit(
        store,
        queue,
        build_registry(JobTypeSettings()),
        _user(db),
        [JobRequest(type="noop", payload={}) for _ in range(25)],
        actor="test",
    )
    assert calls == [10]
    assert all(store.get(result.job.id).send_pending for result in results)


def test_no_send_starts_that_could_outlast_the_deadline(db: Database, queue_settings, sqs) -> None:
    from taskmill.aws import WORST_CALL_SECONDS

    now = 1000.0
    store = JobStore(db)
    queue = JobQueue(queue_settings, client_factory=lambda: sqs, clock=lambda: now)
    owner = _user(db)
    registry = build_registry(JobTypeSettings())

    def create(deadline: float) -> Any:
        [result] = submit(
            store,
            queue,
            registry,
            owner,
            [JobRequest(type="noop", payload={})],
            actor="test",
            deadline=deadline,
        )
        return store.get(result.job.id)

    late = create(now + WORST_CALL_SECONDS - 0.5)
    assert late.send_pending  # left for the sweep: a slow SQS could not answer in time
    assert queue.calls == 0
    in_time = create(now + WORST_CALL_SECONDS + 0.5)
    assert not in_time.send_pending
    assert queue.calls == 1


def test_sqs_clients_give_up_after_two_attempts(db: Database, monkeypatch) -> None:
    """The platform's client settings reach botocore: against an endpoint that drops every
    connection, one send is two attempts, and the job waits for the sweep."""
    import socket
    import threading

    from taskmill.settings import QueueSettings

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted: list[int] = []

    def drop_connections() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=drop_connections, daemon=True).start()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    base = f"http://127.0.0.1:{port}/000000000000"
    settings = QueueSettings(
        **{
            f"{kind}_url_{priority}": f"{base}/{kind}-{priority}"
            for kind in ("queue", "dlq")
            for priority in ("high", "normal", "low")
        }
    )
    store = JobStore(db)
    try:
        results = submit(
            store,
            JobQueue(settings),
            build_registry(JobTypeSettings()),
            _user(db),
            [JobRequest(type="noop", payload={}) for _ in range(25)],
            actor="test",
        )
    finally:
        server.close()
    assert len(accepted) == 2
    assert all(store.get(result.job.id).send_pending for result in results)
