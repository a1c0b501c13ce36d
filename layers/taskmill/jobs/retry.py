"""Retry decisions: pure functions of (error, attempts, policy), tested directly."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from taskmill.topology import SQS_MAX_DELAY_SECONDS


class JobFailure(Exception):
    """Raised by a job body to fail the attempt with a message; `retryable` says whether
    another attempt could succeed (a malformed payload will not)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class PermanentJobFailure(JobFailure):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class AttemptEnded(JobFailure):
    """The attempt was ended meanwhile by someone else (its lease expired and the sweep took
    it, the worker's deadline released it): what the body started must not go on."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float
    reason: str

    @property
    def held_in_database(self) -> bool:
        """Delays SQS cannot hold (over 15 minutes) wait as `scheduled` in Postgres."""
        return self.retry and self.delay_seconds > SQS_MAX_DELAY_SECONDS


def is_retryable(error: BaseException) -> bool:
    """Whether another attempt could succeed. A `JobFailure` says so; a subclass of a body's
    own that broke it (no `super().__init__`, so no `retryable`, or a property that raises)
    is retryable, as a `JobFailure` is by default: the worker must record it either way."""
    if not isinstance(error, JobFailure):
        return True
    try:
        return bool(error.retryable)
    except BaseException:  # noqa: BLE001 - a body's broken error class is not the worker's
        return True


def backoff_cap(attempts: int, policy: RetryPolicy) -> float:
    """The exponential ceiling after `attempts` attempts: base * 2^(attempts-1), capped."""
    exponent = max(attempts - 1, 0)
    # 2**exponent overflows floats long after it passes any sensible cap.
    if exponent > 62:
        return policy.backoff_max_seconds
    return float(min(policy.backoff_max_seconds, policy.backoff_base_seconds * (2**exponent)))


def decide_retry(
    error: BaseException,
    attempts: int,
    policy: RetryPolicy,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """Whether to run the job again after its `attempts`-th attempt failed, and when.

    Full jitter (a uniform delay in [0, cap]) spreads retries of jobs that failed together,
    e.g. when a downstream service came back.
    """
    if not is_retryable(error):
        return RetryDecision(False, 0.0, "the error is not retryable")
    if attempts >= policy.max_attempts:
        return RetryDecision(False, 0.0, f"all {policy.max_attempts} attempts failed")
    delay = rand() * backoff_cap(attempts, policy)
    return RetryDecision(True, delay, f"attempt {attempts} of {policy.max_attempts} failed")
