"""The per-environment configuration, read once from `cdk.json` context by `app.py`.

Constructs receive this object; they never read context or the environment themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EnvironmentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    account: str | None = None
    region: str | None = None
    resource_prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{2,40}$")
    alarm_email: str | None = None
    allow_signup: bool = False
    max_unfinished_jobs: int = Field(default=1000, ge=1)
    retention_days: int = Field(default=30, ge=1)
    log_retention_days: int = Field(default=30, ge=1)
    removal_policy: Literal["destroy", "retain"] = "retain"


def load_environment(context: dict[str, Any], name: str) -> EnvironmentConfig:
    environments = context.get("environments") or {}
    if name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise SystemExit(
            f"unknown environment {name!r} (cdk.json declares: {known}); use -c env=NAME"
        )
    return EnvironmentConfig(name=name, **environments[name])
