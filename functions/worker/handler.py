"""SQS worker Lambda: one handler for the three priority queues."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.db.credentials import database_from_settings
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.lambda_support import PowertoolsMetrics
from taskmill.queue.sender import JobQueue
from taskmill.settings import WorkerSettings, load_settings
from taskmill.worker.runner import Worker
from taskmill.worker.services import PlatformServices

logger = Logger(service="taskmill-worker")
tracer = Tracer(service="taskmill-worker")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_worker: Worker | None = None


class RedeliveryRequested(Exception):
    """Marks a record for `batchItemFailures`: its message must come back."""


def build_worker(settings: WorkerSettings) -> Worker:
    db = database_from_settings(settings, application_name="taskmill-worker")
    store = JobStore(db)
    return Worker(
        store,
        JobQueue(settings),
        build_registry(settings),
        PlatformServices(settings),
        logger=logger,
        deadline_margin_seconds=settings.deadline_margin_seconds,
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
    redeliver = set(report.failed_message_ids)

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in redeliver:
            raise RedeliveryRequested(record.message_id)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    report.metrics.flush(PowertoolsMetrics(service="taskmill-worker"))
    return dict(response)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_event(event, context, container_worker())
