"""SQS worker Lambda: one handler for the three priority queues.

The answer is Lambda's partial batch response: the messages listed in `batchItemFailures`
come back (retries through visibility, released jobs); every other message of the batch is
deleted by the event source mapping.

Traced by Lambda's active tracing (set in `infra/functions.py`), not the Powertools Tracer:
the X-Ray SDK it imports and the patching it does cost ~100-200 ms of every cold start, and
the SDK is in maintenance mode (end of support 2027-02-25).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.db.credentials import database_from_settings
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.lambda_support import PowertoolsMetrics
from taskmill.queue.sqs import JobQueue
from taskmill.settings import WorkerSettings, load_settings
from taskmill.worker.runner import Worker
from taskmill.worker.services import PlatformServices

logger = Logger(service="taskmill-worker")
_worker: Worker | None = None


def build_worker(settings: WorkerSettings) -> Worker:
    db = database_from_settings(settings, application_name="taskmill-worker")
    return Worker(
        JobStore(db),
        JobQueue(settings),
        build_registry(settings),
        PlatformServices(settings),
        logger=logger,
        deadline_margin_seconds=settings.deadline_margin_seconds,
        unfinished_limit=settings.max_unfinished_jobs,
        max_payload_bytes=settings.max_payload_bytes,
        owner_concurrency=settings.owner_concurrency,
    )


def container_worker() -> Worker:
    """The container's worker, built (and its settings validated) on the first event."""
    global _worker
    if _worker is None:
        _worker = build_worker(load_settings(WorkerSettings))
    return _worker


def process_event(event: dict[str, Any], context: Any, worker: Worker) -> dict[str, Any]:
    """Run one SQS event through `worker`; `context` is Lambda's (or a stand-in with
    `get_remaining_time_in_millis`)."""
    report = worker.process(event["Records"], context.get_remaining_time_in_millis() / 1000)
    report.metrics.flush(PowertoolsMetrics(service="taskmill-worker"))
    return {
        "batchItemFailures": [
            {"itemIdentifier": message_id}
            for message_id in dict.fromkeys(report.failed_message_ids)
        ]
    }


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_event(event, context, container_worker())


def new_container() -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A handler with a container of its own: its worker (connection, thread pool, lease
    bookkeeping), built on its first event. Lambda runs one batch at a time per container;
    the local stack gives one of these to each of its pollers, so no worker ever runs two
    batches at once (`handler`'s one worker would be shared by all of them)."""
    own: Worker | None = None

    @logger.inject_lambda_context(clear_state=True)
    def container_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        nonlocal own
        if own is None:
            own = build_worker(load_settings(WorkerSettings))
        return process_event(event, context, own)

    return container_handler
