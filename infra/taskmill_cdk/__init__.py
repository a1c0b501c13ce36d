"""Taskmill as a CDK construct library: `Taskmill(scope, id, config=TaskmillConfig(), vpc=...)`
adds the whole platform to your own stack (README, "Taskmill in your own CDK app").

`Taskmill` is imported on first use: the asset helpers (`taskmill_cdk.packaging`) work
without loading the CDK (whose jsii start-up costs seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskmill_cdk.config import (
    AlarmConfig,
    ApiConfig,
    DatabaseConfig,
    NetworkConfig,
    TaskmillConfig,
    WorkerConfig,
)

if TYPE_CHECKING:
    from taskmill_cdk.stack import Taskmill, TaskmillStack

__all__ = [
    "AlarmConfig",
    "ApiConfig",
    "DatabaseConfig",
    "NetworkConfig",
    "Taskmill",
    "TaskmillConfig",
    "TaskmillStack",
    "WorkerConfig",
]


def __getattr__(name: str) -> Any:
    if name in ("Taskmill", "TaskmillStack"):
        from taskmill_cdk import stack

        return getattr(stack, name)
    raise AttributeError(f"module 'taskmill_cdk' has no attribute {name!r}")
