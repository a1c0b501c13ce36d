"""Queue topology: the single source of truth for queue names and SQS settings.

The CDK stacks (infra/) and the local stack (local/) both build their queues from these
definitions, so the cloud and the laptop cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# The platform owns the attempt count in Postgres; SQS only dead-letters poison messages
# that keep failing before the worker can even record an attempt. It must stay above any
# allowed max_attempts (plus one receive per redrive/visibility-based retry).
MAX_ATTEMPTS_LIMIT = 25
MAX_RECEIVE_COUNT = MAX_ATTEMPTS_LIMIT + 5

# SQS caps DelaySeconds and visibility changes at 15 minutes; longer retry delays are held
# as `scheduled` in Postgres and released by the recovery sweep.
SQS_MAX_DELAY_SECONDS = 900

WORKER_TIMEOUT_SECONDS = 300
# AWS recommends a visibility timeout of at least 6x the function timeout for SQS sources.
VISIBILITY_TIMEOUT_SECONDS = 6 * WORKER_TIMEOUT_SECONDS
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600


@dataclass(frozen=True)
class QueueDefinition:
    priority: Priority
    batch_size: int
    max_batching_window_seconds: int
    # Lambda's MaximumConcurrency per event source mapping (minimum 2). More for `high`
    # so a flood of `low` work never starves it.
    max_concurrency: int

    def queue_name(self, prefix: str) -> str:
        return f"{prefix}-jobs-{self.priority.value}"

    def dlq_name(self, prefix: str) -> str:
        return f"{prefix}-jobs-{self.priority.value}-dlq"


QUEUES: tuple[QueueDefinition, ...] = (
    QueueDefinition(
        Priority.HIGH, batch_size=10, max_batching_window_seconds=0, max_concurrency=10
    ),
    QueueDefinition(
        Priority.NORMAL, batch_size=10, max_batching_window_seconds=1, max_concurrency=5
    ),
    QueueDefinition(Priority.LOW, batch_size=10, max_batching_window_seconds=5, max_concurrency=2),
)


def queue_definition(priority: Priority | str) -> QueueDefinition:
    wanted = Priority(priority)
    for definition in QUEUES:
        if definition.priority is wanted:
            return definition
    raise KeyError(wanted)  # pragma: no cover - every Priority has a definition
