"""The job types every deployment has: the demo types (noop, sleep, fail) and the platform
types (http.request, email.send, webhook.deliver, container.run)."""

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
    from taskmill.jobtypes.container_run import ContainerPayload, container_run
    from taskmill.jobtypes.email_send import EmailPayload, email_send
    from taskmill.jobtypes.http_request import HttpRequestPayload, http_request
    from taskmill.jobtypes.webhook_deliver import WEBHOOK_TYPE, WebhookPayload, webhook_deliver

    registry.register(
        "http.request",
        payload=HttpRequestPayload,
        description="Calls a URL.",
        max_attempts=5,
        timeout_seconds=60,
        backoff_base_seconds=5,
        backoff_max_seconds=600,
    )(http_request)
    registry.register(
        "email.send",
        payload=EmailPayload,
        description="Sends an e-mail through SES.",
        max_attempts=5,
        timeout_seconds=30,
        backoff_base_seconds=10,
        backoff_max_seconds=900,
    )(email_send)
    registry.register(
        WEBHOOK_TYPE,
        payload=WebhookPayload,
        description="Delivers a signed completion event to a job's webhook_url.",
        internal=True,  # the platform submits it; a user's would be signed by the platform
        max_attempts=5,
        timeout_seconds=30,
        backoff_base_seconds=5,
        backoff_max_seconds=600,
    )(webhook_deliver)
    registry.register(
        "container.run",
        payload=ContainerPayload,
        description="Runs a command in a container image on ECS Fargate.",
        max_attempts=2,
        timeout_seconds=3600,
        backoff_base_seconds=30,
        backoff_max_seconds=900,
    )(container_run)
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
