"""At-least-once delivery at its worst, with the real worker on real Postgres and moto SQS:
every message delivered twice to two concurrent invocations, and poison messages (not JSON,
another version, unknown jobs, a 256 KiB body, binary junk) mixed with good ones.
Each ends with the invariant check of `tests/support/invariants.py` (`make test-slow`)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from taskmill.db import Database
from taskmill.jobs.model import Job
from taskmill.jobs.store import JobStore
from taskmill.recovery.sweep import Sweeper, SweepLimits
from taskmill.topology import Priority
from taskmill.worker.runner import Worker

from functions.worker.handler import process_event
from tests.support import probe_jobs
from tests.support.invariants import DatabaseView, Ledger, Summary, check_invariants
from tests.support.lambda_events import FakeLambdaContext, receive_event

pytestmark = pytest.mark.slow

PRIORITIES = [p.value for p in Priority]


@pytest.fixture
def probe_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Any) -> Path:
    path = tmp_path / "probe-runs.log"
    monkeypatch.setenv(probe_jobs.PROBE_FILE_VARIABLE, str(path))
    probe_jobs.register(registry)
    return path


@pytest.fixture
def second_worker(database_url: str, job_queue: Any, registry: Any, platform_services: Any):
    """Another worker with its own connection: the other Lambda container a duplicate
    delivery reaches."""
    db = Database(database_url)
    yield Worker(JobStore(db), job_queue, registry, platform_services, deadline_margin_seconds=1.0)
    db.close()


def _accept(ledger: Ledger, jobs: list[Job]) -> None:
    ledger.accept(job.model_dump(mode="json") for job in jobs)


def _delete_done(sqs: Any, url: str, event: dict[str, Any], response: dict[str, Any]) -> None:
    """What the event source mapping does after an invocation: delete what did not fail."""
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])


def _drain(
    store: JobStore,
    job_queue: Any,
    registry: Any,
    sqs: Any,
    invoke: Callable[[str, dict[str, Any]], None],
    *,
    bound: float = 90,
) -> None:
    """Deliver until no message is visible and no job is unfinished; the sweep runs when
    the queues look empty (it replaces messages a duplicate's acknowledgement deleted under
    a retry)."""
    sweeper = Sweeper(store, job_queue, registry, SweepLimits(requeue_after_seconds=1))
    view = DatabaseView(store._db)
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        delivered = False
        for priority in PRIORITIES:
            url = job_queue.queue_url(priority)
            event = receive_event(sqs, url)
            if event["Records"]:
                delivered = True
                invoke(url, event)
        if not delivered:
            if not view.unfinished():
                return
            sweeper.run()
            time.sleep(0.2)


def test_every_message_delivered_twice_runs_each_attempt_once(
    enqueue, store, job_queue, registry, sqs, worker, second_worker, probe_file
) -> None:
    ledger = Ledger()
    no_wait = {"backoff_base_seconds": 0, "backoff_max_seconds": 0}
    _accept(
        ledger,
        [
            *(enqueue("probe", {"fail_probability": 0.3}, **no_wait) for _ in range(40)),
            *(enqueue("fail", {"probability": 0.5}, **no_wait) for _ in range(20)),
            *(enqueue("noop", priority=random.choice(PRIORITIES)) for _ in range(20)),
        ],
    )

    def twice_at_once(url: str, event: dict[str, Any]) -> None:
        responses: list[dict[str, Any]] = []
        threads = [
            threading.Thread(
                target=lambda w=w: responses.append(process_event(event, FakeLambdaContext(), w))
            )
            for w in (worker, second_worker)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(responses) == 2, "an invocation raised"
        for response in responses:
            _delete_done(sqs, url, event, response)

    _drain(store, job_queue, registry, sqs, twice_at_once)
    summary = check_invariants(
        DatabaseView(store._db), ledger, settle_timeout=0, probe_file=probe_file
    )
    print(f"\n  every message twice: {summary.line()}")
    # Nothing lost a lease here: every attempt ran its body exactly once.
    runs = Counter(str(run.job_id) for run in probe_jobs.read_runs(probe_file))
    probes = {i: j for i, j in summary.jobs.items() if j["type"] == "probe"}
    assert {i: runs[i] for i in probes} == {i: j["attempts"] for i, j in probes.items()}
    assert summary.by_type_and_status[("noop", "succeeded")] == 20
    assert sum(j["attempts"] for j in probes.values()) > len(probes)  # retries did happen


def _poison() -> dict[str, str]:
    """Bodies that are not job messages this platform understands (by what they are)."""
    rng = random.Random(12)
    junk = bytes(rng.randrange(0x20, 0x100) for _ in range(2048)).decode("latin-1")
    return {
        "not json": "this is not JSON {",
        "json array": "[1, 2, 3]",
        "empty object": "{}",
        "wrong version": f'{{"job_id": "{uuid4()}", "v": 2}}',
        "bad job id": '{"job_id": "not-a-uuid", "v": 1}',
        "huge": '{"job_id": "' + "x" * 262_000 + '", "v": 1}',
        "binary": junk,
    }


def test_poison_messages_go_to_the_dlq_and_good_ones_run(
    enqueue, store, job_queue, registry, sqs, worker, probe_file
) -> None:
    ledger = Ledger()
    good = [*(enqueue("probe") for _ in range(15)), *(enqueue("noop") for _ in range(10))]
    _accept(ledger, good)
    url = job_queue.queue_url("normal")
    poison = _poison()
    for body in poison.values():
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"junk": {"DataType": "Binary", "BinaryValue": bytes(range(256))}},
        )
    unknown = f'{{"job_id": "{uuid4()}", "v": 1}}'  # well formed, for a job that is not there
    sqs.send_message(QueueUrl=url, MessageBody=unknown)
    good_ids = {str(job.id) for job in good}
    failed_good: list[str] = []

    def once(url: str, event: dict[str, Any]) -> None:
        response = process_event(event, FakeLambdaContext(), worker)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] in failed and record["body"] in good_ids:
                failed_good.append(record["body"])
        _delete_done(sqs, url, event, response)

    _drain(store, job_queue, registry, sqs, once)
    summary: Summary = check_invariants(
        DatabaseView(store._db), ledger, settle_timeout=0, probe_file=probe_file
    )
    print(f"\n  poison among good: {summary.line()}")
    assert summary.by_status == Counter({"succeeded": len(good)})
    assert failed_good == []
    # Every poison body is in the DLQ once, with the reason; the unknown job's message was
    # acknowledged (its job is gone: there is nothing to run); the queue is empty.
    dead: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=job_queue.dlq_url("normal"),
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        VisibilityTimeout=60,
    ).get("Messages", []):
        dead += batch
    assert sorted(m["Body"] for m in dead) == sorted(poison.values())
    assert all(m["MessageAttributes"]["failure_reason"]["StringValue"] for m in dead)
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        queue["ApproximateNumberOfMessages"],
        queue["ApproximateNumberOfMessagesNotVisible"],
    ) == (
        "0",
        "0",
    )
