"""The workers: one function consuming the three priority queues, one event source mapping
per queue with partial batch failures and the queue's concurrency cap.

The caps are the database budget: a container holds one connection, and the mappings'
MaximumConcurrency is what stops a flood of jobs from opening more than the proxy allows
(`EnvironmentConfig.database_clients` checks the sum at synth).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from constructs import Construct
from taskmill.topology import QUEUES, WORKER_TIMEOUT_SECONDS, Priority

from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.containers import Containers
from taskmill_cdk.database import Database
from taskmill_cdk.functions import FunctionFactory
from taskmill_cdk.queues import JobQueues
from taskmill_cdk.secrets import generated_secret


class Workers(Construct):
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
        settings = config.worker
        self.webhook_secret = generated_secret(
            self,
            "WebhookSigningKey",
            config,
            name="webhook-signing-key",
            description="HMAC key signing Taskmill's outgoing webhooks",
        )
        environment = {
            **database.environment(),
            **queues.environment(),
            **(containers.environment() if containers is not None else {}),
            **functions.job_types,
            **config.flow_environment(),
            "TASKMILL_WEBHOOK_SECRET_ARN": self.webhook_secret.secret_arn,
            # Child jobs submitted by job bodies count against the API's quota.
            "TASKMILL_MAX_UNFINISHED_JOBS": str(config.max_unfinished_jobs),
        }
        if settings.ses_sender:
            environment["TASKMILL_SES_SENDER"] = settings.ses_sender
        self.function = functions.function(
            self,
            "Worker",
            name="worker",
            asset="worker",
            handler="handler.handler",
            description="Runs jobs from the high, normal and low queues",
            environment=environment,
            # No reserved concurrency: the mappings' MaximumConcurrency caps it per queue.
            reserved_concurrency=None,
            timeout=Duration.seconds(WORKER_TIMEOUT_SECONDS),
            memory_mb=settings.memory_mb,
        )
        database.grant_connect(self.function)
        self.webhook_secret.grant_read(self.function)
        queues.grant_send_jobs(self.function)
        queues.grant_delay_redelivery(self.function)
        queues.grant_dead_letter(self.function)
        if containers is not None:
            containers.grant_run_tasks(self.function)
            # A task started by an attempt that ended meanwhile is stopped by the worker itself.
            containers.grant_stop_tasks(self.function)
        if settings.ses_sender:
            self._grant_send_email(settings.ses_sender)

        self.event_sources: dict[Priority, event_sources.SqsEventSource] = {}
        for definition in QUEUES:
            source = event_sources.SqsEventSource(
                queues.queues[definition.priority],
                batch_size=definition.batch_size,
                max_batching_window=(
                    Duration.seconds(definition.max_batching_window_seconds)
                    if definition.max_batching_window_seconds
                    else None
                ),
                max_concurrency=settings.queue_concurrency[definition.priority],
                report_batch_item_failures=True,
            )
            self.function.add_event_source(source)
            self.event_sources[definition.priority] = source

    def grant_pause(self, function: lambda_.Function) -> None:
        """Let `function` switch the queues' mappings on and off (pausing a queue disables its
        own, SPEC §6): their ids as `TASKMILL_WORKER_EVENT_SOURCE_<PRIORITY>`, and the two
        calls on exactly those three mappings. The worker never references `function`, so
        the dependency runs one way (mappings first) and makes no cycle."""
        for priority, source in self.event_sources.items():
            function.add_environment(
                f"TASKMILL_WORKER_EVENT_SOURCE_{priority.value.upper()}",
                source.event_source_mapping_id,
            )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
                resources=[s.event_source_mapping_arn for s in self.event_sources.values()],
            )
        )

    def _grant_send_email(self, sender: str) -> None:
        stack = Stack.of(self)
        domain = sender.rsplit("@", 1)[-1]
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail", "ses:SendRawEmail"],
                resources=[
                    stack.format_arn(service="ses", resource="identity", resource_name=identity)
                    for identity in sorted({sender, domain})
                ],
            )
        )
