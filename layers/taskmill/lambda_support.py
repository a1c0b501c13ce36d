"""Glue every handler shares: Powertools metrics as a `MetricsSink`."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from taskmill.observability import Figure

NAMESPACE = "Taskmill"


class PowertoolsMetrics:
    """Emits one EMF record per set of dimensions (a job type) with all its figures, which
    the invocation-wide `Metrics` object cannot do for a batch of mixed types."""

    def __init__(self, namespace: str = NAMESPACE, service: str = "taskmill") -> None:
        self.namespace = namespace
        self.service = service

    def emit(self, dimensions: dict[str, str], figures: list[Figure]) -> None:
        metrics = Metrics(namespace=self.namespace, service=self.service)
        metrics.clear_metrics()
        for dimension, label in dimensions.items():
            metrics.add_dimension(name=dimension, value=label)
        for name, value, unit in figures:
            metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)
        metrics.flush_metrics()
