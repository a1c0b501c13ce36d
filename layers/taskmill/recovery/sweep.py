"""One run of the recovery sweep. Every part is bounded per run and safe to run twice at
once: each selection is `FOR UPDATE SKIP LOCKED` or a conditional update, so two sweeps
(an overlapping schedule, an operator running one by hand) never act on the same job."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from taskmill.event_sources import EventSources
from taskmill.flow.pauses import PauseKind, PauseStore
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.container_tasks import CANCELLED, TIMED_OUT, ContainerTasks
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.outcomes import Outcomes
from taskmill.lifecycle.schedules import fire_due
from taskmill.lifecycle.sending import send_pending
from taskmill.lifecycle.webhooks import create_completion_webhooks
from taskmill.observability import MetricBatch
from taskmill.queue.sqs import JobQueue
from taskmill.recovery.redrive_tasks import RedriveTaskStore
from taskmill.schedules.store import ScheduleStore
from taskmill.topology import Priority
from taskmill.users.store import RefreshTokenStore


@dataclass
class SweepReport:
    released_scheduled: int = 0
    recovered_retried: int = 0
    recovered_failed: int = 0
    released_waiting: int = 0
    cancelled_waiting: int = 0
    resent: int = 0
    requeued: int = 0
    sent: int = 0
    webhooks_created: int = 0
    deleted_finished: int = 0
    schedule_runs: int = 0
    # Schedules disabled because their stored expression no longer parses (each is logged
    # with its id and shows its `error` to its owner).
    schedules_disabled: int = 0
    # Event source mappings switched to match the pauses (a pause or resume whose own Lambda
    # call failed; the API answered 503 then).
    mappings_synced: int = 0
    # Background DLQ redrives whose function died, marked failed (each logged with its id).
    redrives_abandoned: int = 0
    # container.run tasks asked to stop: their attempt timed out, or their job was cancelled.
    containers_stopped: int = 0
    # Refresh tokens long past their expiry (RefreshTokenStore.delete_expired).
    deleted_refresh_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SweepLimits:
    batch: int = 500
    # How long a "to be sent" (or "webhook to be created") mark may stand before the sweep
    # takes it over: in-flight requests and workers finish their own sends first.
    send_grace_seconds: float = 30.0
    # How long a queued job may sit untouched (and past its due time) before the sweep gives
    # it a new message in case its own is gone. Above any backlog wait you expect: a job that
    # merely waits gets one duplicate message per period, which its claim skips.
    requeue_after_seconds: float = 1800.0
    retention_days: float = 30.0
    # How long past its expiry a refresh token is kept (a day: no clock skew matters).
    refresh_token_grace_seconds: float = 86_400.0
    # Each owner's quota of unfinished jobs, which schedule runs count against like creates.
    max_unfinished_jobs: int | None = None


class Sweeper:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        registry: JobTypeRegistry,
        limits: SweepLimits,
        *,
        schedules: ScheduleStore | None = None,
        pauses: PauseStore | None = None,
        event_sources: EventSources | None = None,
        redrive_tasks: RedriveTaskStore | None = None,
        containers: ContainerTasks | None = None,
        tokens: RefreshTokenStore | None = None,
        logger: logging.Logger | Any = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.registry = registry
        self.limits = limits
        self.schedules = schedules
        self.pauses = pauses
        self.event_sources = event_sources
        self.redrive_tasks = redrive_tasks
        # Without a cluster (locally, container jobs off) it stops nothing.
        self.containers = containers or ContainerTasks(None)
        self.tokens = tokens
        self.logger = logger or logging.getLogger("taskmill.recovery")
        self.outcomes = Outcomes(store, queue, registry, logger=self.logger)

    def run(self) -> tuple[SweepReport, MetricBatch]:
        report = SweepReport()
        batch = self.limits.batch
        report.mappings_synced = self._sync_event_sources()
        if self.schedules is not None:
            fired = fire_due(
                self.schedules,
                self.store,
                self.queue,
                self.registry,
                limit=batch,
                unfinished_limit=self.limits.max_unfinished_jobs,
                logger=self.logger,
            )
            report.schedule_runs = fired.created
            report.schedules_disabled = len(fired.disabled)
        released = self.store.release_due_scheduled(limit=batch)
        report.released_scheduled = len(released)
        report.sent += len(send_pending(self.store, self.queue, released))
        self._recover_expired_leases(report)
        self._stop_cancelled_containers(report)
        waiting = self.store.release_waiting(limit=batch)
        report.released_waiting = len(waiting)
        report.sent += len(send_pending(self.store, self.queue, waiting))
        report.cancelled_waiting = len(self.store.cancel_waiting_on_failed(limit=batch))
        grace = self.limits.send_grace_seconds
        report.webhooks_created = len(
            create_completion_webhooks(
                self.store,
                self.queue,
                self.registry,
                self.store.pending_webhooks(older_than_seconds=grace, limit=batch),
                logger=self.logger,
            )
        )
        # Last, so everything made `queued` above but not sent (SQS trouble) is retried at
        # the next run, after the grace period, like any other unsent job.
        stuck = self.store.pending_sends(older_than_seconds=grace, limit=batch)
        report.resent = len(send_pending(self.store, self.queue, stuck))
        report.sent += report.resent
        lost = self.store.requeue_stale(
            older_than_seconds=self.limits.requeue_after_seconds, limit=batch
        )
        report.requeued = len(lost)
        report.sent += len(send_pending(self.store, self.queue, lost))
        report.deleted_finished = self.store.delete_finished(
            older_than_days=self.limits.retention_days, limit=batch
        )
        if self.tokens is not None:
            report.deleted_refresh_tokens = self.tokens.delete_expired(
                older_than_seconds=self.limits.refresh_token_grace_seconds, limit=batch
            )
        report.redrives_abandoned = self._fail_abandoned_redrives()
        # A metric for what the run did only: CloudWatch bills a custom metric for each hour it
        # is published, so eleven zeros a minute would cost an idle environment ~$3.30 a month
        # (docs/PERFORMANCE.md, "Cost"). The log line below carries every count, zeros too.
        metrics = MetricBatch()
        for name, value in report.as_dict().items():
            if value:
                metrics.add(f"Sweep_{name}", value)
        self.logger.info("recovery sweep", extra={"sweep": report.as_dict()})
        return report, metrics

    def _stop_cancelled_containers(self, report: SweepReport) -> None:
        """A running container job asked to cancel has no body left to see it: its task is
        stopped, and the task's stop event ends the job `cancelled`. Asked again each run
        until that event comes (ECS takes a repeated stop request as it takes one)."""
        if not self.containers.configured:
            return
        for task_arn in self.store.cancelled_elsewhere(limit=self.limits.batch):
            report.containers_stopped += self.containers.stop(task_arn, CANCELLED)

    def _fail_abandoned_redrives(self) -> int:
        if self.redrive_tasks is None:
            return 0
        abandoned = self.redrive_tasks.fail_abandoned()
        if abandoned:
            self.logger.warning(
                "background DLQ redrives stopped without finishing; marked failed",
                extra={"task_ids": [str(task_id) for task_id in abandoned]},
            )
        return len(abandoned)

    def _sync_event_sources(self) -> int:
        """In AWS: each queue's mapping enabled unless the queue is paused."""
        if self.pauses is None or self.event_sources is None or not self.event_sources.configured:
            return 0
        paused = [Priority(name) for name in self.pauses.names(PauseKind.QUEUE)]
        changed = self.event_sources.sync(paused)
        if changed:
            self.logger.warning(
                "event source mappings did not match the pauses; switched",
                extra={"priorities": [p.value for p in changed]},
            )
        return len(changed)

    def _recover_expired_leases(self, report: SweepReport) -> None:
        for job in self.store.expired_leases(limit=self.limits.batch):
            failure = self.outcomes.lease_expired(job)
            if failure is None or failure.job is None:
                continue  # reported on meanwhile, or another sweep got it first
            if job.external_ref is not None and not job.external:
                # Its container task outlived the attempt, now counted as timed out: stopped
                # rather than left to run beside the retry's task (or for nothing).
                report.containers_stopped += self.containers.stop(job.external_ref, TIMED_OUT)
            if failure.job.status is JobStatus.FAILED:
                report.recovered_failed += 1
            elif failure.job.status is JobStatus.CANCELLED:
                continue  # it was asked to cancel, so it ended instead of being retried
            else:
                report.recovered_retried += 1
                report.sent += int(failure.sent)
