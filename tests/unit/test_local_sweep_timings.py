"""The recovery sweep's timings in the local stack: the user's values where set, else local
defaults that keep a held job from being sent a message every minute."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_stack_module_imports_only_the_standard_library_at_its_top() -> None:
    """So that `python3 -m taskmill_local.stack` with a Python older than 3.11 (whose `enum`
    has no StrEnum for `taskmill`) or without `taskmill` on its path reaches `main()` and its
    one-line message, instead of a traceback from an import."""
    code = (
        "import sys\n"
        "sys.modules['taskmill'] = None  # any import of it fails, as it would there\n"
        "import taskmill_local.stack\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
