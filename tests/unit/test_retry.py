from __future__ import annotations

import pytest
from taskmill.jobs.retry import (
    JobFailure,
    PermanentJobFailure,
    RetryPolicy,
    backoff_cap,
    decide_retry,
)

POLICY = RetryPolicy(max_attempts=5, backoff_base_seconds=2.0, backoff_max_seconds=60.0)


@pytest.mark.parametrize(
    ("attempts", "cap"), [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (500, 60.0)]
)
def test_cap_doubles_per_attempt_up_to_the_maximum(attempts: int, cap: float) -> None:
    assert backoff_cap(attempts, POLICY) == cap


def test_full_jitter_spans_zero_to_the_cap() -> None:
    low = decide_retry(RuntimeError("x"), 3, POLICY, rand=lambda: 0.0)
    high = decide_retry(RuntimeError("x"), 3, POLICY, rand=lambda: 0.999999)
    mid = decide_retry(RuntimeError("x"), 3, POLICY, rand=lambda: 0.5)
    assert low.retry
    assert high.retry
    assert low.delay_seconds == 0.0
    assert high.delay_seconds == pytest.approx(8.0, rel=1e-5)
    assert mid.delay_seconds == 4.0


def test_random_delays_stay_within_bounds() -> None:
    delays = [decide_retry(RuntimeError("x"), 4, POLICY).delay_seconds for _ in range(500)]
    assert min(delays) >= 0
    assert max(delays) <= 16.0
    # Full jitter really spreads: not all retries land on the same second.
    assert len({round(d) for d in delays}) > 5


def test_no_retry_once_attempts_are_spent() -> None:
    decision = decide_retry(RuntimeError("x"), 5, POLICY)
    assert not decision.retry
    assert "5 attempts" in decision.reason


def test_permanent_failures_are_not_retried() -> None:
    assert not decide_retry(PermanentJobFailure("bad payload"), 1, POLICY).retry
    assert not decide_retry(JobFailure("nope", retryable=False), 1, POLICY).retry
    assert decide_retry(JobFailure("flaky"), 1, POLICY).retry


def test_long_delays_are_held_in_the_database() -> None:
    slow = RetryPolicy(max_attempts=10, backoff_base_seconds=600, backoff_max_seconds=7200)
    short = decide_retry(RuntimeError("x"), 1, slow, rand=lambda: 1.0)
    long = decide_retry(RuntimeError("x"), 3, slow, rand=lambda: 1.0)
    assert short.delay_seconds == 600
    assert not short.held_in_database
    assert long.delay_seconds == 2400
    assert long.held_in_database


def test_per_job_override_changes_the_arithmetic() -> None:
    override = RetryPolicy(max_attempts=2, backoff_base_seconds=0.5, backoff_max_seconds=1)
    assert decide_retry(RuntimeError("x"), 1, override, rand=lambda: 1.0).delay_seconds == 0.5
    assert not decide_retry(RuntimeError("x"), 2, override).retry
