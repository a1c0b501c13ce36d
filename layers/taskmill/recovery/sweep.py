"""One run of the recovery sweep. Every part is bounded per run and safe to run twice at
once: each selection is `FOR UPDATE SKIP LOCKED` or a conditional update, so two sweeps
(an overlapping schedule, an operator running one by hand) never act on the same job."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.retry import JobFailure, RetryPolicy, decide_retry
from taskmill.jobs.store import JobStore
from taskmill.jobs.submit import send_pending
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.observability import MetricBatch
from taskmill.queue.sender import JobQueue, sqs_errors
from taskmill.schedules.store import ScheduleStore, fire_due

LEASE_EXPIRED = "the lease expired: the worker crashed, timed out or lost its connection"


@dataclass
class SweepReport:
    released_scheduled: int = 0
    recovered_retried: int = 0
    recovered_failed: int = 0
    released_waiting: int = 0
    cancelled_waiting: int = 0
    resent: int = 0
    sent: int = 0
    deleted_finished: int = 0
    schedule_runs: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SweepLimits:
    batch: int = 500
    send_grace_seconds: float = 30.0
    retention_days: float = 30.0


class Sweeper:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        limits: SweepLimits,
        *,
        schedules: ScheduleStore | None = None,
        registry: JobTypeRegistry | None = None,
        logger: logging.Logger | Any = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.limits = limits
        self.schedules = schedules
        self.registry = registry
        self.logger = logger or logging.getLogger("taskmill.recovery")

    def run(self) -> tuple[SweepReport, MetricBatch]:
        report = SweepReport()
        batch = self.limits.batch
        if self.schedules is not None and self.registry is not None:
            report.schedule_runs = fire_due(
                self.schedules,
                self.store,
                self.queue,
                self.registry,
                limit=batch,
                logger=self.logger,
            )
        released = self.store.release_due_scheduled(limit=batch)
        report.released_scheduled = len(released)
        report.sent += len(send_pending(self.store, self.queue, released))
        self._recover_expired_leases(report)
        waiting = self.store.release_waiting(limit=batch)
        report.released_waiting = len(waiting)
        report.sent += len(send_pending(self.store, self.queue, waiting))
        report.cancelled_waiting = len(self.store.cancel_waiting_on_failed(limit=batch))
        # Last, so everything made `queued` above but not sent (SQS trouble) is retried at
        # the next run, after the grace period, like any other unsent job.
        stuck = self.store.pending_sends(
            older_than_seconds=self.limits.send_grace_seconds, limit=batch
        )
        report.resent = len(send_pending(self.store, self.queue, stuck))
        report.sent += report.resent
        report.sent += len(send_pending(self.store, self.queue, self.store.take_followups()))
        report.deleted_finished = self.store.delete_finished(
            older_than_days=self.limits.retention_days, limit=batch
        )
        metrics = MetricBatch()
        for name, value in report.as_dict().items():
            metrics.add(f"Sweep_{name}", value)
        self.logger.info("recovery sweep", extra={"sweep": report.as_dict()})
        return report, metrics

    def _recover_expired_leases(self, report: SweepReport) -> None:
        for job in self.store.expired_leases(limit=self.limits.batch):
            decision = decide_retry(
                JobFailure(LEASE_EXPIRED),
                job.attempts,
                RetryPolicy(job.max_attempts, job.backoff_base_seconds, job.backoff_max_seconds),
            )
            recovered = self.store.recover_expired(job, LEASE_EXPIRED, decision)
            if recovered is None:
                continue  # reported on meanwhile, or another sweep got it first
            if recovered.status is JobStatus.FAILED:
                report.recovered_failed += 1
                self._dead_letter(recovered, decision.reason)
            else:
                report.recovered_retried += 1
                report.sent += len(send_pending(self.store, self.queue, [recovered]))

    def _dead_letter(self, job: Job, reason: str) -> None:
        if job.external:
            return  # external jobs never had a message; `failed` in Postgres is their record
        try:
            self.queue.dead_letter(job, reason, error=LEASE_EXPIRED)
        except sqs_errors():
            self.logger.exception(
                "could not send a failed job to its DLQ", extra={"job_id": str(job.id)}
            )
