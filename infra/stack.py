"""The Taskmill stack of one environment, composed of one construct per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.queues import JobQueues


class TaskmillStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "taskmill")
        Tags.of(self).add("environment", config.name)
        self.job_queues = JobQueues(self, "Queues", config=config)
        for priority, queue in self.job_queues.queues.items():
            CfnOutput(self, f"QueueUrl{priority.value.title()}", value=queue.queue_url)
