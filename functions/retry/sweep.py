"""The recovery sweep Lambda, run by an EventBridge schedule every minute: nothing lost,
stuck or forgotten (see `taskmill.recovery.sweep`). Traced by Lambda's active tracing, as
the worker is (no X-Ray SDK in the bundle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.db.credentials import database_from_settings
from taskmill.errors import DependencyUnavailable
from taskmill.event_sources import EventSources
from taskmill.flow.pauses import PauseStore
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.container_tasks import ContainerTasks
from taskmill.jobtypes.defaults import build_registry
from taskmill.lambda_support import PowertoolsMetrics
from taskmill.observability import MetricBatch, MetricsSink
from taskmill.queue.sqs import JobQueue
from taskmill.recovery.outage import SweepOutage
from taskmill.recovery.redrive_tasks import RedriveTaskStore
from taskmill.recovery.sweep import Sweeper, SweepLimits
from taskmill.schedules.store import ScheduleStore
from taskmill.settings import RecoverySettings, load_settings
from taskmill.users.store import RefreshTokenStore

logger = Logger(service="taskmill-recovery")
_sweeper: Sweeper | None = None
_outage = SweepOutage(logger)


def container_sweeper() -> Sweeper:
    global _sweeper
    if _sweeper is None:
        settings = load_settings(RecoverySettings)
        db = database_from_settings(settings, application_name="taskmill-recovery")
        _sweeper = Sweeper(
            JobStore(db),
            JobQueue(settings),
            build_registry(settings),
            SweepLimits(
                batch=settings.sweep_batch_limit,
                send_grace_seconds=settings.send_grace_seconds,
                requeue_after_seconds=settings.requeue_after_seconds,
                retention_days=settings.retention_days,
                max_unfinished_jobs=settings.max_unfinished_jobs,
            ),
            schedules=ScheduleStore(db),
            pauses=PauseStore(db),
            event_sources=EventSources(settings.event_source_ids(), logger=logger),
            redrive_tasks=RedriveTaskStore(db),
            containers=ContainerTasks(settings.ecs_cluster_arn, logger=logger),
            tokens=RefreshTokenStore(db),
            logger=logger,
        )
    return _sweeper


def sweep(
    sweeper: Callable[[], Sweeper] = container_sweeper,
    outage: SweepOutage = _outage,
    metrics_sink: MetricsSink | None = None,
) -> dict[str, Any]:
    """One run. A dependency that is down (the database, SQS, Secrets Manager at cold
    start) makes one warning line and the `Sweep_failed_runs` metric, which the recovery
    alarm watches, and the invocation ends normally: the next scheduled run retries. Any
    other error fails the invocation with its traceback (a bug: the function's error alarm)."""
    sink = metrics_sink or PowertoolsMetrics(service="taskmill-recovery")
    try:
        report, metrics = sweeper().run()
    except DependencyUnavailable as exc:
        outage.failed(exc)
        failed = MetricBatch()
        failed.add("Sweep_failed_runs")
        failed.flush(sink)
        return {"failed": exc.code, "message": exc.message}
    outage.succeeded()
    metrics.flush(sink)
    return report.as_dict()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sweep(container_sweeper, _outage)
