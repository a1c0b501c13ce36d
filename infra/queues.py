"""The job queues: one SQS queue per priority, each with its own DLQ, from `taskmill.topology`
(the same definitions the local stack creates its queues from)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
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

from infra.config import EnvironmentConfig


class JobQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        removal = (
            RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN
        )
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
