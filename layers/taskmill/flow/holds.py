"""How long a job held back by a pause or a limit waits before its next try: pure rules.

A held job keeps its attempt and stays `queued`; its message is sent again with this delay
(a new message, so holding never brings it nearer SQS's `maxReceiveCount` and the DLQ).
"""

from __future__ import annotations

import math

from taskmill.topology import SQS_MAX_DELAY_SECONDS

# A paused queue or type: resuming re-sends at once the oldest jobs whose held message is not
# back yet (`RESUME_RESEND_LIMIT`); the rest come back within this.
PAUSE_HOLD_SECONDS = 120
# A concurrency limit: a slot frees when a running job ends, which nothing predicts; wait a
# little per round of the limit the job is behind, so the first in line come back first.
SECONDS_PER_ROUND = 2.0
MAX_CONCURRENCY_HOLD_SECONDS = 60
MIN_HOLD_SECONDS = 1
# A rate: the token's time, at most this. Every hold is shorter than the recovery sweep's
# `requeue_after_seconds` (at least 900 s in the shipped configs): a held job's row is
# touched when its message is held, so the sweep never takes it for one whose message is lost.
MAX_RATE_HOLD_SECONDS = 600
# A job whose `run_at` is still ahead (moved later after its message was sent): until then.
# A queued job is due within SQS's longest delay; a later `run_at` makes it `scheduled`.
MAX_NOT_DUE_HOLD_SECONDS = SQS_MAX_DELAY_SECONDS


def hold_seconds(reason: str, ahead: float | None = None, period: float | None = None) -> int:
    """The delay for a job held back because of `reason`:

    - `paused`: `PAUSE_HOLD_SECONDS`;
    - `concurrency`: `ahead` rounds of the limit behind (jobs past the limit / the limit)
      times `SECONDS_PER_ROUND`, at most `MAX_CONCURRENCY_HOLD_SECONDS`;
    - `rate`: when its token will be there — `ahead` tokens missing times `period` seconds
      per token — at most `MAX_RATE_HOLD_SECONDS` (a later try waits again);
    - `not_due`: `ahead` seconds, until its `run_at`, at most `MAX_NOT_DUE_HOLD_SECONDS`.
    Always at least `MIN_HOLD_SECONDS`."""
    if reason == "paused":
        seconds = float(PAUSE_HOLD_SECONDS)
    elif reason == "concurrency":
        seconds = min(MAX_CONCURRENCY_HOLD_SECONDS, SECONDS_PER_ROUND * (ahead or 1.0))
    elif reason == "rate":
        seconds = min(MAX_RATE_HOLD_SECONDS, (ahead or 1.0) * (period or 1.0))
    elif reason == "not_due":
        seconds = min(MAX_NOT_DUE_HOLD_SECONDS, ahead or 1.0)
    else:
        raise ValueError(f"no hold rule for {reason!r}")
    return max(MIN_HOLD_SECONDS, math.ceil(seconds))
