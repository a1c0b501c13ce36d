"""Recovery: the sweep every minute (nothing lost, stuck or forgotten), the asynchronous DLQ
redrive, and the ECS task-state-change rule that finishes `container.run` jobs.

The stack adds this construct under the id "Retry", its name before it said what it holds:
construct ids make CloudFormation logical ids, and a changed id would replace these
functions, their log groups, the rules and every alarm on them. The function names stay too
(`recovery`, `redrive`, `container-events`): they are physical names."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from taskmill_cdk.config import OTHER_DATABASE_CONCURRENCY, EnvironmentConfig
from taskmill_cdk.containers import Containers
from taskmill_cdk.database import Database
from taskmill_cdk.functions import FunctionFactory
from taskmill_cdk.queues import JobQueues

SWEEP_INTERVAL = Duration.minutes(1)


class Recovery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        functions: FunctionFactory,
        database: Database,
        queues: JobQueues,
        containers: Containers | None,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            **database.environment(),
            **queues.environment(),
            **functions.job_types,
        }

        self.sweep_function = functions.function(
            self,
            "Recovery",
            name="recovery",
            asset="retry",
            handler="sweep.handler",
            description="Recovery sweep: unsent, scheduled, stuck and waiting jobs; retention",
            environment={
                **environment,
                "TASKMILL_RETENTION_DAYS": str(config.retention_days),
                "TASKMILL_REQUEUE_AFTER_SECONDS": str(config.requeue_after_seconds),
                "TASKMILL_MAX_UNFINISHED_JOBS": str(config.max_unfinished_jobs),
                **(
                    {"TASKMILL_ECS_CLUSTER_ARN": containers.cluster.cluster_arn}
                    if containers is not None
                    else {}
                ),
            },
            reserved_concurrency=OTHER_DATABASE_CONCURRENCY["recovery"],
            # Shorter than the interval, so one sweep ends before the next begins.
            timeout=Duration.seconds(55),
            memory_mb=512,
        )
        database.grant_connect(self.sweep_function)
        queues.grant_send_jobs(self.sweep_function)
        queues.grant_dead_letter(self.sweep_function)
        if containers is not None:
            containers.grant_stop_tasks(self.sweep_function)
        self.schedule = events.Rule(
            self,
            "SweepSchedule",
            rule_name=f"{config.resource_prefix}-recovery-sweep",
            description="Runs the Taskmill recovery sweep",
            schedule=events.Schedule.rate(SWEEP_INTERVAL),
            targets=[targets.LambdaFunction(self.sweep_function, retry_attempts=0)],
        )

        self.redrive_function = functions.function(
            self,
            "Redrive",
            name="redrive",
            asset="retry",
            handler="redrive.handler",
            description="Large DLQ redrives started from the API, with progress in Postgres",
            environment=environment,
            reserved_concurrency=OTHER_DATABASE_CONCURRENCY["redrive"],
            timeout=Duration.minutes(15),
            memory_mb=512,
        )
        database.grant_connect(self.redrive_function)
        queues.grant_redrive(self.redrive_function)
        queues.grant_send_jobs(self.redrive_function)

        # container.run's jobs finish on their task's stop event, where there are containers.
        self.ecs_events_function: lambda_.Function | None = None
        self.ecs_events: events.Rule | None = None
        if containers is None:
            return
        self.ecs_events_function = functions.function(
            self,
            "ContainerEvents",
            name="container-events",
            asset="retry",
            handler="ecs_events.handler",
            description="Finishes container.run jobs when their ECS task stops",
            environment={**environment, **containers.environment()},
            reserved_concurrency=OTHER_DATABASE_CONCURRENCY["container-events"],
            timeout=Duration.seconds(30),
        )
        database.grant_connect(self.ecs_events_function)
        queues.grant_send_jobs(self.ecs_events_function)
        queues.grant_dead_letter(self.ecs_events_function)
        self.ecs_events = events.Rule(
            self,
            "ContainerStopped",
            rule_name=f"{config.resource_prefix}-container-stopped",
            description="container.run tasks that stopped",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={
                    "clusterArn": [containers.cluster.cluster_arn],
                    "lastStatus": ["STOPPED"],
                },
            ),
            targets=[targets.LambdaFunction(self.ecs_events_function, retry_attempts=10)],
        )
