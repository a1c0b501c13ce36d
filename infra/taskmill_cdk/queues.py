"""The job queues: one SQS queue per priority, each with its own DLQ, from `taskmill.topology`
(the same definitions the local stack creates its queues from)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from taskmill.topology import (
    DLQ_RETENTION_SECONDS,
    MAX_RECEIVE_COUNT,
    QUEUE_RETENTION_SECONDS,
    QUEUES,
    VISIBILITY_TIMEOUT_SECONDS,
    Priority,
)

from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.removal import data_removal_policy


class JobQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        removal = data_removal_policy(config)
        self.queues: dict[Priority, sqs.Queue] = {}
        self.dead_letter_queues: dict[Priority, sqs.Queue] = {}
        for definition in QUEUES:
            priority = definition.priority
            dlq = sqs.Queue(
                self,
                f"{priority.value.title()}Dlq",
                queue_name=definition.dlq_name(config.resource_prefix),
                retention_period=Duration.seconds(DLQ_RETENTION_SECONDS),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                removal_policy=removal,
            )
            queue = sqs.Queue(
                self,
                f"{priority.value.title()}Queue",
                queue_name=definition.queue_name(config.resource_prefix),
                visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_SECONDS),
                retention_period=Duration.seconds(QUEUE_RETENTION_SECONDS),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(
                    max_receive_count=MAX_RECEIVE_COUNT, queue=dlq
                ),
                removal_policy=removal,
            )
            self.queues[priority] = queue
            self.dead_letter_queues[priority] = dlq

    def environment(self) -> dict[str, str]:
        """The queue URLs every function that sends or inspects jobs is configured with."""
        variables: dict[str, str] = {}
        for priority in Priority:
            variables[f"TASKMILL_QUEUE_URL_{priority.value.upper()}"] = self.queues[
                priority
            ].queue_url
            variables[f"TASKMILL_DLQ_URL_{priority.value.upper()}"] = self.dead_letter_queues[
                priority
            ].queue_url
        return variables

    def grant_send_jobs(self, grantee: iam.IGrantable) -> None:
        for queue in self.queues.values():
            queue.grant_send_messages(grantee)

    def grant_dead_letter(self, grantee: iam.IGrantable) -> None:
        """Moving a job's message to its DLQ (exhausted retries, poison messages)."""
        for dlq in self.dead_letter_queues.values():
            dlq.grant_send_messages(grantee)

    def grant_delay_redelivery(self, grantee: iam.IGrantable) -> None:
        """A retry's backoff: the worker extends the received message's visibility."""
        for queue in self.queues.values():
            queue.grant(grantee, "sqs:ChangeMessageVisibility")

    def grant_redrive(self, grantee: iam.IGrantable) -> None:
        """Peeking at and moving messages out of the DLQs."""
        for dlq in self.dead_letter_queues.values():
            dlq.grant_consume_messages(grantee)

    def grant_read_depths(self, grantee: iam.IGrantable) -> None:
        for queue in [*self.queues.values(), *self.dead_letter_queues.values()]:
            queue.grant(grantee, "sqs:GetQueueAttributes")
