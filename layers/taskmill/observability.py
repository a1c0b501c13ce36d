"""Metrics as a collaborator: the package counts, the handler decides where counts go."""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

Figure = tuple[str, float, str]  # name, value, unit


class MetricsSink(Protocol):
    def emit(self, dimensions: dict[str, str], figures: list[Figure]) -> None: ...


class NullMetrics:
    def emit(self, dimensions: dict[str, str], figures: list[Figure]) -> None:
        return None


class MetricBatch:
    """Aggregates per (metric, dimensions) within one invocation, so a batch of ten jobs
    emits a handful of EMF records instead of thirty."""

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._maxes: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}

    def add(self, name: str, value: float = 1, *, unit: str = "Count", **dimensions: str) -> None:
        self._sums[(name, unit, tuple(sorted(dimensions.items())))] += value

    def maximum(self, name: str, value: float, *, unit: str = "Seconds", **dimensions: str) -> None:
        key = (name, unit, tuple(sorted(dimensions.items())))
        self._maxes[key] = max(self._maxes.get(key, value), value)

    def flush(self, sink: MetricsSink) -> None:
        """One emission per set of dimensions (per job type), carrying all its figures."""
        grouped: dict[tuple[tuple[str, str], ...], list[Figure]] = defaultdict(list)
        for (name, unit, dims), value in [*self._sums.items(), *self._maxes.items()]:
            grouped[dims].append((name, value, unit))
        for dims, figures in grouped.items():
            sink.emit(dict(dims), figures)
        self._sums.clear()
        self._maxes.clear()

    def value(self, name: str, **dimensions: str) -> float:
        for (metric, _, dims), value in [*self._sums.items(), *self._maxes.items()]:
            if metric == name and dict(dims) == dimensions:
                return value
        return 0.0
