from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from taskmill.db import Database
from taskmill.jobs.model import Job
from taskmill.jobs.retry import JobFailure
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.submit import JobRequest, submit
from taskmill.queue.sqs import JobQueue
from taskmill.settings import JobTypeSettings, WorkerSettings
from taskmill.worker.runner import Worker
from taskmill.worker.services import PlatformServices

from functions.worker.handler import process_event
from tests.support.factories import make_user
from tests.support.lambda_events import FakeLambdaContext, receive_event


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def hit(self) -> int:
        with self.lock:
            self.count += 1
            return self.count


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def registry(calls: Calls) -> JobTypeRegistry:
    """The real registry plus two test types that count their runs."""
    registry = build_registry(JobTypeSettings())

    @registry.register("counted", max_attempts=3, backoff_base_seconds=0, backoff_max_seconds=0)
    def counted(context: Any, payload: Any) -> dict[str, int]:
        return {"run": calls.hit()}

    @registry.register("flaky", max_attempts=3, backoff_base_seconds=0, backoff_max_seconds=0)
    def flaky(context: Any, payload: Any) -> str:
        if calls.hit() < 2:
            raise JobFailure("first attempt always fails")
        return "ok"

    return registry


@pytest.fixture
def worker_settings(queue_settings: Any, database_url: str) -> WorkerSettings:
    return WorkerSettings(
        database_url=database_url,
        **{
            k: v for k, v in queue_settings.model_dump().items() if k.startswith(("queue_", "dlq_"))
        },
        webhook_secret="w" * 40,
        http_allow_private=True,
        deadline_margin_seconds=1.0,
    )


@pytest.fixture
def platform_services(
    worker_settings: WorkerSettings, sqs: Any, aws_clients: Any
) -> PlatformServices:
    return PlatformServices(worker_settings, client_factory=aws_clients)


@pytest.fixture
def store(db: Database) -> JobStore:
    return JobStore(db)


@pytest.fixture
def worker(
    store: JobStore, job_queue: JobQueue, registry: JobTypeRegistry, platform_services: Any
) -> Worker:
    return Worker(store, job_queue, registry, platform_services, deadline_margin_seconds=1.0)


@pytest.fixture
def owner(db: Database) -> Any:
    return make_user(db)


@pytest.fixture
def enqueue(store: JobStore, job_queue: JobQueue, registry: JobTypeRegistry, owner: Any):
    def create(type: str = "noop", payload: dict | None = None, **fields: Any) -> Job:
        [result] = submit(
            store,
            job_queue,
            registry,
            owner,
            [JobRequest(type=type, payload=payload or {}, **fields)],
            actor="test",
        )
        return result.job

    return create


@pytest.fixture
def deliver(sqs: Any, job_queue: JobQueue, worker: Worker) -> Callable[..., dict[str, Any]]:
    """Receive from a priority's queue and run the worker handler on that event."""

    def run(
        priority: str = "normal", *, remaining: float = 300.0, event: dict | None = None
    ) -> dict:
        event = event or receive_event(sqs, job_queue.queue_url(priority))
        assert event["Records"], "no message was waiting on the queue"
        return process_event(event, FakeLambdaContext(remaining_seconds=remaining), worker)

    return run


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def queue_messages(sqs: Any, url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", [])


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that records what it receives (answers 200)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append({"headers": dict(self.headers), "body": self.rfile.read(length)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"thanks")

        do_GET = do_POST

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
