"""Stopping the ECS task of a `container.run` job that no longer wants it: an attempt that
outlived its timeout (the sweep has already counted it), a job whose cancellation was asked
for while its task runs (the sweep), or an attempt that ended while its task was being
started (the job body itself). Left running, such a task would go on costing Fargate time
for nothing, and the retry's task would run beside it.

ECS then sends the task's stop event as for any task: for a cancelled job it ends the job
`cancelled` (`taskmill.lifecycle.ecs_events`); for a timed-out attempt it finds no job holding
that task any more (every claim clears `external_ref`) and changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from taskmill.aws import aws_errors, new_client

# What ECS shows as the task's stoppedReason (it keeps up to 255 characters).
TIMED_OUT = "taskmill: the job's timeout is over"
CANCELLED = "taskmill: the job was cancelled"
ATTEMPT_ENDED = "taskmill: the attempt ended before the task was recorded"


class ContainerTasks:
    """`stop` a task in the environment's cluster; without a cluster (locally, or with
    container jobs off) there is nothing to stop."""

    def __init__(
        self,
        cluster_arn: str | None,
        *,
        client_factory: Callable[[str], Any] = new_client,
        logger: logging.Logger | Any = None,
    ) -> None:
        self.cluster_arn = cluster_arn
        self._client_factory = client_factory
        self._client: Any = None
        self.logger = logger or logging.getLogger("taskmill.containers")

    @property
    def configured(self) -> bool:
        return bool(self.cluster_arn)

    def stop(self, task_arn: str, reason: str) -> bool:
        """Ask ECS to stop the task; True if it took the request. A task already stopped is
        no error to ECS. A failure (ECS unreachable, a task of another cluster) is logged
        and False: the caller's next run asks again where it still applies."""
        if not self.configured:
            return False
        if self._client is None:
            self._client = self._client_factory("ecs")
        try:
            self._client.stop_task(cluster=self.cluster_arn, task=task_arn, reason=reason[:255])
        except aws_errors() as exc:
            self.logger.warning(
                "could not stop a container task",
                extra={"task_arn": task_arn, "reason": reason, "error": str(exc)},
            )
            return False
        return True
