"""The local pollers honour a paused queue as a disabled event source mapping does in AWS
(SPEC §6): they stop receiving, its messages wait in SQS, and a resume is seen within about
a second. The pauses are read from Postgres once per period for all pollers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from taskmill.db import Database
from taskmill.errors import DependencyUnavailable
from taskmill.flow.pauses import PauseKind, PauseStore
from taskmill.queue.sqs import JobQueue
from taskmill.topology import QUEUES, Priority

from taskmill_local.pollers import QueuePauses, QueuePoller

NORMAL = next(d for d in QUEUES if d.priority is Priority.NORMAL)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scripted(answers: list[Any]) -> Callable[[], set[str]]:
    """A read of the paused queues that gives `answers` in turn, raising the errors."""

    def read() -> set[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return set(answer)

    return read


def test_the_pauses_are_read_once_per_period_whoever_asks(db: Database) -> None:
    store = PauseStore(db)
    reads: list[set[str]] = []

    def read() -> set[str]:
        reads.append({name for _, name in store.paused(PauseKind.QUEUE)})
        return reads[-1]

    clock = Clock()
    pauses = QueuePauses(read, ttl=1.0, clock=clock)
    assert not pauses.is_paused("normal")
    store.pause(PauseKind.QUEUE, "normal", actor="admin:test")
    store.pause(PauseKind.TYPE, "low", actor="admin:test")  # a type, not the low queue
    for priority in ("high", "normal", "low", "normal"):
        assert not pauses.is_paused(priority)  # the answer of the first read still stands
    assert len(reads) == 1
    clock.now = 1.0
    assert pauses.is_paused("normal")
    assert not pauses.is_paused("low")
    assert len(reads) == 2
    store.resume(PauseKind.QUEUE, "normal")
    clock.now = 2.5
    assert not pauses.is_paused("normal")


def test_a_failed_read_keeps_the_last_answer() -> None:
    read = scripted([{"normal"}, DependencyUnavailable("the database is unreachable")])
    clock = Clock()
    pauses = QueuePauses(read, ttl=1.0, clock=clock)
    assert pauses.is_paused("normal")
    clock.now = 5.0
    assert pauses.is_paused("normal")  # Postgres blinked: still paused, not resumed


def test_an_outage_is_one_warning_and_its_end_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """While Postgres is down the pauses are asked for every second: one warning says so
    when the outage starts, one line when reads work again, not a warning a second."""
    down = DependencyUnavailable("the database is unreachable")
    read = scripted([{"normal"}, down, down, down, set(), down, set()])
    clock = Clock()
    pauses = QueuePauses(read, ttl=1.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="taskmill.local.pollers"):
        for second in range(7):
            clock.now = float(second)
            pauses.is_paused("normal")
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("WARNING", "could not read the paused queues; keeping the last answer until it can"),
        ("WARNING", "the paused queues are read again after 3 failed reads"),
        ("WARNING", "could not read the paused queues; keeping the last answer until it can"),
        ("WARNING", "the paused queues are read again after 1 failed read"),
    ]


def visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_paused_queue_is_not_received_from_until_it_is_resumed(
    db: Database, sqs: Any, job_queue: JobQueue
) -> None:
    store = PauseStore(db)
    store.pause(PauseKind.QUEUE, "normal", actor="admin:test")
    url = job_queue.queue_url("normal")
    sqs.send_message(QueueUrl=url, MessageBody='{"job_id": "j1"}')

    looked = threading.Semaphore(0)

    def read() -> set[str]:
        paused = {name for _, name in store.paused(PauseKind.QUEUE)}
        looked.release()
        return paused

    invoked: list[dict[str, Any]] = []
    received = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        invoked.append(event)
        received.set()
        return {"batchItemFailures": []}

    stop = threading.Event()
    pauses = QueuePauses(read, ttl=0.05)
    poller = QueuePoller(sqs, url, NORMAL, handler, stop, pauses=pauses)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        for _ in range(3):  # three looks at the pauses, each saying "paused"
            assert looked.acquire(timeout=30)
        assert invoked == []
        assert visible(sqs, url) == 1  # the message waits in SQS, not received
        started = time.monotonic()
        store.resume(PauseKind.QUEUE, "normal")
        assert received.wait(30)
        print(f"received {time.monotonic() - started:.2f} s after the resume")
    finally:
        stop.set()
        thread.join(10)
    assert [r["body"] for e in invoked for r in e["Records"]] == ['{"job_id": "j1"}']
    assert visible(sqs, url) == 0  # handled and deleted
