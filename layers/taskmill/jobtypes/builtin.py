"""The demo job types every deployment has: noop, sleep, fail."""

from __future__ import annotations

import random
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taskmill.jobs.retry import JobFailure
from taskmill.jobtypes.registry import JobContextProtocol, JobTypeRegistry


class SleepPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=3600)


class FailPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    probability: float = Field(default=1.0, ge=0, le=1)
    message: str = Field(default="failed on purpose", max_length=1000)


def noop(context: JobContextProtocol, payload: Any) -> None:
    """Does nothing."""


def sleep(context: JobContextProtocol, payload: SleepPayload) -> dict[str, float]:
    """Sleeps for `seconds`, reporting progress and stopping early when cancelled."""
    deadline = time.monotonic() + payload.seconds
    step = min(1.0, payload.seconds / 10) if payload.seconds else 0
    while (left := deadline - time.monotonic()) > 0:
        if context.cancelled():
            break
        time.sleep(min(step, left))
        done = payload.seconds - max(deadline - time.monotonic(), 0)
        context.progress(int(100 * done / payload.seconds), f"slept {done:.1f}s")
    return {"slept": payload.seconds}


def fail(
    context: JobContextProtocol, payload: FailPayload, rand: Any = random.random
) -> dict[str, bool]:
    """Fails with `probability`, else succeeds."""
    if rand() < payload.probability:
        raise JobFailure(payload.message)
    return {"failed": False}


def register(registry: JobTypeRegistry) -> None:
    registry.register("noop", description="Does nothing.", max_attempts=1, timeout_seconds=10)(noop)
    registry.register(
        "sleep",
        payload=SleepPayload,
        description="Sleeps, reporting progress.",
        timeout_seconds=3600,
    )(sleep)
    registry.register(
        "fail",
        payload=FailPayload,
        description="Fails with a probability.",
        max_attempts=3,
        backoff_base_seconds=1.0,
        backoff_max_seconds=30.0,
    )(fail)
