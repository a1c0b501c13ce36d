"""The recovery sweep's timings in the local stack: the user's values where set, else local
defaults that keep a held job from being sent a message every minute."""

from __future__ import annotations

from taskmill.flow.holds import MAX_NOT_DUE_HOLD_SECONDS, MAX_RATE_HOLD_SECONDS

from taskmill_local.stack import sweep_timings


def test_the_users_values_are_kept() -> None:
    mine = {"TASKMILL_SEND_GRACE_SECONDS": "45", "TASKMILL_REQUEUE_AFTER_SECONDS": "5"}
    assert sweep_timings(mine) == mine


def test_by_default_a_queued_jobs_message_is_replaced_only_after_every_hold() -> None:
    timings = sweep_timings({})
    assert timings["TASKMILL_SEND_GRACE_SECONDS"] == "10"
    requeue_after = float(timings["TASKMILL_REQUEUE_AFTER_SECONDS"])
    assert requeue_after > max(MAX_RATE_HOLD_SECONDS, MAX_NOT_DUE_HOLD_SECONDS)
