"""One SQS batch: parse, claim (one statement), run, record (one statement), release.

SQL per batch of successful jobs: claim, complete, release dependents — three round trips
whatever the batch size. Failures, cancellations and redrives add a statement each, which
is fine: they are the exception.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.retry import JobFailure, PermanentJobFailure, RetryPolicy, decide_retry
from taskmill.jobs.store import JobStore
from taskmill.jobs.submit import send_pending
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.observability import MetricBatch
from taskmill.queue.messages import JobMessage, MalformedMessage, parse_message
from taskmill.queue.sender import JobQueue, sqs_errors
from taskmill.topology import Priority
from taskmill.worker.context import JobContext
from taskmill.worker.services import PlatformServices

_QUEUE_NAME = re.compile(r"-jobs-(high|normal|low)$")
RELEASE_BATCH_LIMIT = 500
MAX_PARALLEL_BODIES = 10  # Lambda's SQS batch size for standard queues tops out here per poll


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"
    ELSEWHERE = "elsewhere"


@dataclass(frozen=True)
class Delivery:
    """One record of an SQS event, as Lambda's event source mapping delivers it."""

    message_id: str
    receipt_handle: str
    body: str
    message_attributes: dict[str, Any]
    priority: Priority

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Delivery:
        match = _QUEUE_NAME.search(str(record.get("eventSourceARN", "")))
        return cls(
            message_id=record["messageId"],
            receipt_handle=record["receiptHandle"],
            body=record.get("body") or "",
            message_attributes=record.get("messageAttributes") or {},
            priority=Priority(match[1]) if match else Priority.NORMAL,
        )


@dataclass
class Attempt:
    delivery: Delivery
    job: Job
    context: JobContext
    outcome: Outcome | None = None
    result: Any = None
    error: BaseException | None = None
    future: Future[None] | None = None
    started: float = 0.0


@dataclass
class BatchReport:
    failed_message_ids: list[str] = field(default_factory=list)
    outcomes: dict[UUID, Outcome] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    metrics: MetricBatch = field(default_factory=MetricBatch)


def _policy(job: Job) -> RetryPolicy:
    return RetryPolicy(job.max_attempts, job.backoff_base_seconds, job.backoff_max_seconds)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, JobFailure) else f"{type(error).__name__}: {text}"


class Worker:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        registry: JobTypeRegistry,
        services: PlatformServices,
        *,
        logger: logging.Logger | Any = None,
        clock: Callable[[], float] = time.monotonic,
        deadline_margin_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.queue = queue
        self.registry = registry
        self.services = services
        self.logger = logger or logging.getLogger("taskmill.worker")
        self.clock = clock
        self.margin = deadline_margin_seconds
        self._pool: ThreadPoolExecutor | None = None

    def _threads(self) -> ThreadPoolExecutor:
        # Reused across batches: starting ten threads per batch costs more than a noop job.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=MAX_PARALLEL_BODIES, thread_name_prefix="job"
            )
        return self._pool

    def _abandon_threads(self) -> None:
        # A body that ignored its timeout keeps its thread; later batches get a fresh pool
        # instead of queueing behind it. The stuck thread ends with the container.
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=False)
            self._pool = None

    # ---- the batch --------------------------------------------------------------------

    def process(self, records: Sequence[dict[str, Any]], remaining_seconds: float) -> BatchReport:
        """Handle one SQS batch. Returns the message ids to report as `batchItemFailures`."""
        report = BatchReport()
        deadline = self.clock() + remaining_seconds - self.margin
        messages = self._parse(records, report)
        self._redrive_moved_back(messages)
        claimed = {job.id: job for job in self.store.claim_many([m.job_id for _, m in messages])}
        attempts = []
        for delivery, message in messages:
            job = claimed.pop(message.job_id, None)
            if job is None:
                # Running elsewhere, finished, cancelled or deleted: a duplicate or late
                # delivery. Acknowledge it so it is not delivered again.
                report.skipped.append(delivery.message_id)
                continue
            attempts.append(self._prepare(delivery, job, deadline))
        self._run(attempts, deadline)
        self._record(attempts, report)
        return report

    def _parse(
        self, records: Sequence[dict[str, Any]], report: BatchReport
    ) -> list[tuple[Delivery, JobMessage]]:
        parsed = []
        for record in records:
            delivery = Delivery.from_record(record)
            try:
                parsed.append((delivery, parse_message(delivery.body, delivery.message_attributes)))
            except MalformedMessage as exc:
                self.logger.error(
                    "malformed message sent to the DLQ",
                    extra={"message_id": delivery.message_id, "reason": str(exc)},
                )
                try:
                    self.queue.dead_letter_raw(
                        delivery.priority, delivery.body, f"malformed: {exc}"
                    )
                except sqs_errors():
                    # Leave it on the queue: SQS's maxReceiveCount moves it to the DLQ.
                    report.failed_message_ids.append(delivery.message_id)
                    continue
                report.malformed.append(delivery.message_id)
        return parsed

    def _redrive_moved_back(self, messages: Sequence[tuple[Delivery, JobMessage]]) -> None:
        """A message the platform dead-lettered is back on its source queue: someone moved
        it (the console's "Start DLQ redrive" changes nothing in Postgres). Give its job a
        fresh attempt budget; the expected redrive count makes a duplicate a no-op."""
        by_count: dict[int, list[UUID]] = {}
        for _, message in messages:
            if message.dead_lettered and message.redrive_count is not None:
                by_count.setdefault(message.redrive_count, []).append(message.job_id)
        for count, job_ids in by_count.items():
            redriven = self.store.redrive_many(
                job_ids, actor="dlq-redrive", resend=False, expected_redrive_count=count
            )
            for job in redriven:
                self.logger.info("job redriven from its DLQ", extra={"job_id": str(job.id)})

    # ---- running ------------------------------------------------------------------------

    def _prepare(self, delivery: Delivery, job: Job, deadline: float) -> Attempt:
        context = JobContext(
            job,
            self.store,
            self.services,
            deadline=min(deadline, self.clock() + job.timeout_seconds),
            logger=self.logger,
            clock=self.clock,
        )
        return Attempt(delivery, job, context)

    def _run(self, attempts: Sequence[Attempt], deadline: float) -> None:
        # Bodies run on pool threads so a slow one can be timed out and the batch still
        # finishes; the bodies of one batch run side by side (they are mostly I/O).
        pool = self._threads()
        for attempt in attempts:
            attempt.started = self.clock()
            attempt.future = pool.submit(self._run_body, attempt)
        abandoned = False
        for attempt in attempts:
            assert attempt.future is not None
            job_deadline = attempt.started + attempt.job.timeout_seconds
            try:
                attempt.future.result(max(0.0, min(job_deadline, deadline) - self.clock()))
            except FutureTimeout:
                abandoned = True
                # Python cannot kill a thread: the body is told to stop, its later reports
                # are dropped (its lease is gone) and it dies with the container.
                attempt.context.stop()
                if job_deadline <= deadline:
                    attempt.outcome = Outcome.FAILED
                    attempt.error = JobFailure(f"timed out after {attempt.job.timeout_seconds} s")
                else:
                    attempt.outcome = Outcome.RELEASED
        if abandoned:
            self._abandon_threads()

    def _run_body(self, attempt: Attempt) -> None:
        job = attempt.job
        try:
            job_type = self.registry.get(job.type)
            if job_type.function is None:
                raise PermanentJobFailure(f"job type {job.type!r} is not run by this worker")
            payload = job_type.parse_payload(job.payload)
            result = job_type.function(attempt.context, payload)
            json.dumps(result)  # the result is stored as JSON: refuse what cannot be
        except Exception as exc:  # noqa: BLE001 - a job body's error is the job's outcome
            if attempt.outcome is None:
                attempt.error = exc
                attempt.outcome = Outcome.FAILED
            return
        if attempt.outcome is not None:
            return  # timed out or released meanwhile; its late result is discarded
        if attempt.context.external_ref is not None:
            attempt.outcome = Outcome.ELSEWHERE
        elif attempt.context.cancel_observed:
            attempt.outcome = Outcome.CANCELLED
        else:
            attempt.result = result
            attempt.outcome = Outcome.SUCCEEDED

    # ---- recording ----------------------------------------------------------------------

    def _record(self, attempts: Sequence[Attempt], report: BatchReport) -> None:
        succeeded = [a for a in attempts if a.outcome is Outcome.SUCCEEDED]
        finished = self.store.succeed_many(
            [(a.job.id, a.job.lease_token, a.result) for a in succeeded if a.job.lease_token]
        )
        finished_ids = {job.id for job in finished}
        for attempt in attempts:
            outcome = attempt.outcome
            job = attempt.job
            assert job.lease_token is not None
            if outcome is Outcome.SUCCEEDED and job.id not in finished_ids:
                outcome = None  # its lease was recovered meanwhile: the recovery owns it
            elif outcome is Outcome.FAILED:
                self._record_failure(attempt, report)
            elif outcome is Outcome.CANCELLED:
                self.store.acknowledge_cancel(job.id, job.lease_token)
            elif outcome is Outcome.RELEASED:
                self.store.release(job.id, job.lease_token, "the worker reached its deadline")
                self._redeliver(attempt, 0, report)
            if outcome is not None:
                report.outcomes[job.id] = outcome
            self._measure(attempt, outcome, report.metrics)
        if finished_ids:
            released = self.store.release_waiting(
                limit=RELEASE_BATCH_LIMIT, job_ids=list(finished_ids)
            )
            send_pending(self.store, self.queue, released)
        send_pending(self.store, self.queue, self.store.take_followups())

    def _record_failure(self, attempt: Attempt, report: BatchReport) -> None:
        job = attempt.job
        assert job.lease_token is not None
        assert attempt.error is not None
        message = _describe(attempt.error)
        decision = decide_retry(attempt.error, job.attempts, _policy(job))
        updated = self.store.fail(job.id, job.lease_token, message, decision, resend=False)
        attempt.context.logger.warning(
            "job attempt failed",
            extra={
                "error": message,
                "retry": decision.retry,
                "delay_seconds": round(decision.delay_seconds, 3),
            },
        )
        if updated is None:
            return
        if updated.status is JobStatus.QUEUED:
            report.metrics.add("JobsRetried", job_type=job.type)
            self._redeliver(attempt, math.ceil(decision.delay_seconds), report)
        elif updated.status is JobStatus.FAILED:
            report.metrics.add("JobsFailed", job_type=job.type)
            try:
                self.queue.dead_letter(updated, decision.reason, error=message)
            except sqs_errors():
                # The job is `failed` in Postgres either way; the DLQ reconciliation
                # reports a failed job whose DLQ message is missing.
                self.logger.exception(
                    "could not send a failed job to its DLQ", extra={"job_id": str(job.id)}
                )

    def _redeliver(self, attempt: Attempt, delay: int, report: BatchReport) -> None:
        """Retry through SQS: the same message comes back after `delay` seconds."""
        report.failed_message_ids.append(attempt.delivery.message_id)
        try:
            self.queue.delay_redelivery(
                attempt.delivery.priority, attempt.delivery.receipt_handle, delay
            )
        except sqs_errors():
            # It still comes back, after the queue's visibility timeout.
            self.logger.exception("could not shorten a message's visibility")

    def _measure(self, attempt: Attempt, outcome: Outcome | None, metrics: MetricBatch) -> None:
        job = attempt.job
        if outcome is Outcome.SUCCEEDED:
            metrics.add("JobsSucceeded", job_type=job.type)
        metrics.maximum("JobDuration", self.clock() - attempt.started, job_type=job.type)
        if job.queued_at is not None and job.started_at is not None:
            wait = (job.started_at - job.queued_at).total_seconds()
            metrics.maximum("QueueWait", max(wait, 0.0), job_type=job.type)
